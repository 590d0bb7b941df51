"""04 - LeNet (phase 05, week 6)

Goal: build LeNet-5 (LeCun et al., 1998) from scratch, trace every layer's shape, count its
      61,706 parameters by formula, and train it on scikit-learn's handwritten digits.
Run:  python phase05-cnn/04-lenet.py            (12 epochs; about 5 s on a 2-core CPU)
      python phase05-cnn/04-lenet.py --quick    (seconds, offline, used by the tests)
Expect: "[check] parameters: model vs formula: 61706"; validation accuracy 0.90 after the first
        epoch, ~0.97 after 12; the test set, measured once at the end: 0.964 after 12 epochs
        (0.944 after the 2 quick epochs; seed 0) against a 0.1 chance level; lenet.png shows
        the loss curves and test digits with their predictions.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

EPOCHS = 12          # full run
QUICK_EPOCHS = 2     # --quick


def parse_args(argv=None):
    return cli.parser(__doc__, epochs=(EPOCHS, QUICK_EPOCHS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, TensorDataset

from dlcourse import check, data, plot, train
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

LR = 2e-3            # Adam learning rate
BATCH = 32           # images per step: 1149 training digits -> 36 steps per epoch
TEST_SHARE = 0.2     # held-out test share of the 1797 digits, stratified by class: used once
VAL_SHARE = 0.2      # share of the remaining digits held out to watch training (validation)
CHANCE = 0.1         # ten balanced classes

# LeNet-5 as a table: ("conv", in, out, kernel) / ("pool", size) / ("fc", in, out).
# The 1998 paper's C3 used a hand-made sparse connection table (1,516 weights) and its
# pooling layers had one trainable scale and bias per map; we use the common modern
# simplification: full C3 and plain average pooling (no parameters).
LENET5 = [("conv", 1, 6, 5), ("pool", 2), ("conv", 6, 16, 5), ("pool", 2),
          ("conv", 16, 120, 5), ("fc", 120, 84), ("fc", 84, 10)]


class LeNet5(nn.Module):
    """C1-S2-C3-S4-C5-F6-output, tanh activations as in the paper (ReLU came later)."""

    def __init__(self, n_classes=10):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5)       # 32x32 -> 28x28
        self.s2 = nn.AvgPool2d(2)          # -> 14x14
        self.c3 = nn.Conv2d(6, 16, 5)      # -> 10x10
        self.s4 = nn.AvgPool2d(2)          # -> 5x5
        self.c5 = nn.Conv2d(16, 120, 5)    # -> 1x1: a conv that sees the whole 5x5 map
        self.f6 = nn.Linear(120, 84)
        self.out = nn.Linear(84, n_classes)

    def forward(self, x, trace=None):
        """x: (B, 1, 32, 32) -> logits (B, n_classes). `trace`, a list, collects shapes."""
        for name in ("c1", "s2", "c3", "s4", "c5"):
            layer = getattr(self, name)
            x = layer(x)
            x = torch.tanh(x) if isinstance(layer, nn.Conv2d) else x
            if trace is not None:
                trace.append((name, tuple(x.shape)))
        x = x.flatten(1)                   # (B, 120, 1, 1) -> (B, 120)
        x = torch.tanh(self.f6(x))         # (B, 84)
        return self.out(x)                 # (B, n_classes)


def formula_params(table):
    """conv: (k*k*c_in + 1) * c_out (one bias per filter); fc: (in + 1) * out; pool: 0."""
    # EXERCISE formula_params: sum over the table: a conv adds (k*k*c_in + 1) * c_out, an fc (in + 1) * out, a pool nothing
    total = 0
    for layer in table:
        if layer[0] == "conv":
            _, c_in, c_out, k = layer
            total += (k * k * c_in + 1) * c_out
        elif layer[0] == "fc":
            _, n_in, n_out = layer
            total += (n_in + 1) * n_out
    return total
    # END EXERCISE


def formula_shapes(table, size=32):
    """Spatial size after each conv/pool layer: valid conv n - k + 1, pool n // s."""
    # EXERCISE formula_shapes: walk the table; a conv makes (c_out, n - k + 1, n - k + 1), a pool keeps the channels and makes n // size; one (C, H, W) per conv or pool
    shapes = []
    for layer in table:
        if layer[0] == "conv":
            size = size - layer[3] + 1
            shapes.append((layer[2], size, size))
        elif layer[0] == "pool":
            size = size // layer[1]
            shapes.append((shapes[-1][0], size, size))
    return shapes
    # END EXERCISE


def load(run):
    """8x8 digits (0..16) scaled to [0, 1], upsampled to 28x28, padded to LeNet's 32x32 the way
    MNIST's 28x28 digits were centred in a 32x32 field."""
    d = load_digits()
    data.announce("scikit-learn digits (1797 8x8 scans, upsampled to 32x32)", kind="bundled")
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0            # (N, 1, 8, 8)
    x = F.pad(F.interpolate(x, size=28, mode="bilinear", align_corners=False), (2, 2, 2, 2))
    y = torch.tensor(d.target)
    i_rest, i_test = train_test_split(torch.arange(len(y)).numpy(), test_size=TEST_SHARE,
                                      stratify=d.target, random_state=run.seed)
    i_train, i_val = train_test_split(i_rest, test_size=VAL_SHARE, stratify=d.target[i_rest],
                                      random_state=run.seed)
    mean, std = x[i_train].mean(), x[i_train].std()      # statistics of the training part only
    x = (x - mean) / std                                                        # (N, 1, 32, 32)
    return [(x[i], y[i]) for i in (i_train, i_val, i_test)]


def figure(run, hist, model, x_test, y_test):
    with torch.no_grad():
        model.eval()
        pred = model(x_test[:24].to(run.device)).argmax(1).cpu()
    fig = plt.figure(figsize=(13, 4.2))
    ax = fig.add_subplot(1, 3, 1)
    ax.plot(hist["epoch"], hist["train_loss"], "o-", label="train loss")
    ax.plot(hist["epoch"], hist["val_loss"], "o-", label="validation loss")
    ax.plot(hist["epoch"], hist["val_acc"], "o-", label="validation accuracy")
    ax.axhline(CHANCE, ls=":", c="gray", label="chance")
    ax.set(xlabel="epoch", title="LeNet-5 on 32x32 digits")
    ax.legend(fontsize=8)
    for i in range(24):
        a = fig.add_subplot(3, 12, (i // 8) * 12 + 5 + i % 8)
        a.imshow(x_test[i, 0].cpu(), cmap="gray_r")
        ok = int(pred[i]) == int(y_test[i])
        a.set_title(f"{int(pred[i])}" if ok else f"{int(pred[i])} (is {int(y_test[i])})",
                    fontsize=9, color="k" if ok else "r")
        a.axis("off")
    fig.text(0.66, 0.96, "test digits with predicted label (red = wrong)", ha="center")
    plot.save(fig, run, "lenet.png")


def main(args) -> dict:
    run = cli.start(args, __file__)

    print("--- 1. architecture: shapes and parameters")
    model = LeNet5().to(run.device)
    trace = []
    logits = model(torch.zeros(2, 1, 32, 32, device=run.device), trace=trace)
    for (name, shape), layer in zip(trace, [t for t in LENET5 if t[0] != "fc"]):
        print(f"    {name:3s} {str(layer):22s} -> {shape}")
    check.equal("layer output shapes vs formula (C, H, W)", [s[1:] for _, s in trace],
                formula_shapes(LENET5))
    check.equal("logits shape", tuple(logits.shape), (2, 10))
    n_params = sum(p.numel() for p in model.parameters())
    check.equal("parameters: model vs formula", n_params, formula_params(LENET5))
    biggest = max(model.named_parameters(), key=lambda kv: kv[1].numel())
    print(f"    largest tensor: {biggest[0]} {tuple(biggest[1].shape)} = "
          f"{biggest[1].numel() / n_params:.0%} of all parameters")

    print("--- 2. train on handwritten digits (the shared loop, dlcourse.train.fit)")
    (x, y), (x_val, y_val), (x_test, y_test) = load(run)
    gen = torch.Generator().manual_seed(run.seed)        # the same shuffles on every device
    train_loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True, generator=gen)
    val_loader = DataLoader(TensorDataset(x_val, y_val), batch_size=256)
    metrics = {"acc": train.accuracy}
    before = train.evaluate(model, val_loader, F.cross_entropy, run.device, metrics)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    hist = train.fit(model, train_loader, F.cross_entropy, opt, device=run.device,
                     epochs=run.epochs, val_loader=val_loader, metrics=metrics)
    check.less("validation loss: after training < before", hist["val_loss"][-1], before["loss"])
    # the test set, once: nothing above looked at it
    test = train.evaluate(model, DataLoader(TensorDataset(x_test, y_test), batch_size=256),
                          F.cross_entropy, run.device, metrics)
    print(f"test accuracy {test['acc']:.4f} (validation {hist['val_acc'][-1]:.4f}, "
          f"{before['acc']:.2f} before training)")
    check.greater(f"test accuracy beats chance ({CHANCE}) by 0.5", test["acc"], CHANCE + 0.5)
    figure(run, hist, model, x_test, y_test)
    n_conv = sum(p.numel() for m in model.modules() if isinstance(m, nn.Conv2d)
                 for p in m.parameters())
    share = n_conv / n_params
    return cli.finish(run, {"params": n_params, "val_acc_before": before["acc"],
                            "val_acc": hist["val_acc"][-1], "test_acc": test["acc"],
                            "final_train_loss": hist["train_loss"][-1],
                            "epochs": len(hist["epoch"])}, answers={
        "biggest_layer": (biggest[0].split(".")[0], f"{biggest[0]} {tuple(biggest[1].shape)} holds "
                          f"{biggest[1].numel() / n_params:.0%} of the {n_params:,} parameters "
                          "(section 1 of the output)"),
        "conv_share": ("under 25%" if share < 0.25 else "25% to 75%" if share < 0.75 else "over 75%",
                       f"the three conv layers hold {n_conv:,} of {n_params:,} parameters = "
                       f"{share:.0%} (section 1 of the output)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 05.04`) before running it;
# `python -m dlcourse check 05.04` compares your answers with what the run measures.
# PREDICT biggest_layer (c1 / c3 / c5 / f6 / out): which layer of LeNet-5 has the largest weight tensor?
# ANSWER biggest_layer:
# PREDICT conv_share (under 25% / 25% to 75% / over 75%): what share of LeNet-5's parameters sit in its convolution layers?
# ANSWER conv_share:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
