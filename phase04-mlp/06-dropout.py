"""06 - Dropout from scratch (phase 04, week 5)

Goal: write inverted dropout, prove it keeps each activation's expectation, is the identity
      in eval mode and scales like nn.Dropout, then watch it shrink the train/validation gap.
Run:  python phase04-mlp/06-dropout.py            (11 s on a busy 2-core CPU)
      python phase04-mlp/06-dropout.py --quick    (seconds, offline, used by the tests)
Expect: zero fraction within 0.0003 of p = 0.3 for both scratch and nn.Dropout; after 60 epochs
        on 640 MNIST-1D training signals (seed 0, full, CPU) the gap val loss - train loss is
        3.00 without dropout and 1.22 with p = 0.5 (val loss 3.02 -> 1.74); validation picks
        p = 0.5, whose test loss, measured once, is 1.47 (acc 0.445); dropout.png shows both.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

EPOCHS = 60          # full run; --quick uses fewer
QUICK_EPOCHS = 20    # --quick


def parse_args(argv=None):
    return cli.parser(__doc__, epochs=(EPOCHS, QUICK_EPOCHS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcourse import check, lessons, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks a headless backend

mnist1d = lessons.load("04.05")   # lesson 05: the MNIST-1D loader and the epoch loop

P = 0.5              # drop probability in the experiments
WIDTH = 256          # hidden units: wide enough to memorise a small training set
LR = 1e-3            # Adam learning rate
BATCH = 64           # examples per step
P_CHECK = 0.3        # p for the semantics checks: not 0.5, where keep and drop probabilities
                     # coincide and a mask drawn with p in place of 1 - p would pass
SIGMAS = 5           # statistical checks allow 5 standard errors (fails ~1 in 1.7 million)
MNIST1D_SIZE = 1000  # signals made by mnist1d: a small training set, so that an MLP overfits
QUICK_MNIST1D_SIZE = 500  # --quick


class Dropout(nn.Module):
    """Inverted dropout. Training: zero each element with probability p and multiply the
    survivors by 1/(1-p), so E[out] = (1-p) * x/(1-p) + p * 0 = x. Eval: return x unchanged.
    Scaling at training time (not at test time, as in the original paper) means the
    deployed model needs no dropout-specific code at all."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        # EXERCISE dropout_forward: identity in eval mode or for p = 0; else keep each element with probability 1 - p and scale the kept ones by 1 / (1 - p)
        if not self.training or self.p == 0:
            return x
        keep = 1 - self.p
        mask = (torch.rand_like(x) < keep).to(x.dtype)  # 1 with probability keep
        return x * mask / keep
        # END EXERCISE


class MLP(nn.Module):
    def __init__(self, p, n_in=40, n_out=10):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(n_in, WIDTH), nn.Linear(WIDTH, WIDTH)
        self.head = nn.Linear(WIDTH, n_out)
        self.drop1, self.drop2 = Dropout(p), Dropout(p)

    def forward(self, x):                                 # x: (B, 40)
        h = self.drop1(F.relu(self.fc1(x)))               # (B, WIDTH)
        h = self.drop2(F.relu(self.fc2(h)))               # (B, WIDTH)
        return self.head(h)                               # (B, 10)


def check_semantics(run):
    """Scratch dropout vs nn.Dropout: same expectation, scale, zero rate, eval behaviour."""
    P = P_CHECK  # noqa: N806  (the formulas below read as written in the docstring)
    ours, ref = Dropout(P).to(run.device), nn.Dropout(P).to(run.device)
    x = torch.randn(1000, 1000, device=run.device).abs() + 0.1   # nonzero, so zeros = drops
    n = x.numel()
    for name, layer in (("scratch", ours), ("nn.Dropout", ref)):
        demo = layer is ref  # nn.Dropout against the statistics: shown, not counted
        layer.train()
        out = layer(x)
        kept = out != 0
        # each element is dropped independently: the zero fraction has std sqrt(p(1-p)/n)
        check.close(f"{name}: fraction zeroed vs p", 1 - kept.float().mean(), P,
                    atol=SIGMAS * math.sqrt(P * (1 - P) / n), demo=demo)
        check.close(f"{name}: survivors scaled by 1/(1-p)", out[kept] / x[kept],
                    torch.full((int(kept.sum()),), 1 / (1 - P), device=run.device), atol=1e-5,
                    demo=demo)
        layer.eval()
        check.equal(f"{name}: eval mode returns the input unchanged", layer(x), x, demo=demo)

    # E[dropout(x)] = x, element by element: average R independent masks over a fixed x.
    # Each draw is x/(1-p) or 0, so its std is |x| sqrt(p/(1-p)), and the mean's is that / sqrt(R).
    ours.train()
    R = 20_000
    x = torch.randn(8, device=run.device)
    mean = ours(x.repeat(R, 1)).mean(dim=0)               # (R, 8) -> (8,): a mask per row
    tol = SIGMAS * x.abs() * math.sqrt(P / (1 - P) / R)
    worst = ((mean - x).abs() / tol).max().item()
    check.less(f"scratch: E[dropout(x)] = x over {R} masks (|diff| / {SIGMAS} std errors)",
               worst, 1.0)


@torch.no_grad()
def evaluate(model, x, y):
    model.eval()                                          # dropout off: the deployed model
    logits = model(x)
    return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def train(run, p, epochs, x, y, x_val, y_val):
    """Train from the seed's initial weights; return the model and per-epoch history."""
    torch.manual_seed(run.seed)                           # same initial weights for each p
    model = MLP(p).to(run.device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    order_gen = torch.Generator().manual_seed(run.seed)
    hist = {"train_loss": [], "val_loss": [], "val_acc": []}
    modes = []  # dropout's mode in each forward that builds a graph: the training steps
    model.drop1.register_forward_pre_hook(
        lambda module, inputs: modes.append(module.training) if torch.is_grad_enabled() else None)
    for _ in range(epochs):
        mnist1d.train_epoch(model, opt, x, y, BATCH, order_gen)  # train mode: dropout on
        train_loss, _ = evaluate(model, x, y)             # both measured without dropout
        val_loss, val_acc = evaluate(model, x_val, y_val)
        for k, v in zip(hist, (train_loss, val_loss, val_acc)):
            hist[k].append(v)
    hist["steps_with_dropout_on"] = (sum(modes), len(modes))
    return model, hist


def main(args) -> dict:
    run = cli.start(args, __file__)
    torch.set_num_threads(1)  # same numbers whatever the core count (see lesson 05)
    epochs = run.epochs
    check_semantics(run)

    (x, y), (x_val, y_val), test_set = mnist1d.load_mnist1d(
        run, QUICK_MNIST1D_SIZE if run.quick else MNIST1D_SIZE,
        note="; a deliberately small training set, so that an MLP overfits")
    models, results = {}, {}
    for p in (0.0, P):
        models[p], results[p] = train(run, p, epochs, x, y, x_val, y_val)
    gaps = {}
    for p, h in results.items():
        gaps[p] = h["val_loss"][-1] - h["train_loss"][-1]
        print(f"p = {p}: train loss {h['train_loss'][-1]:.3f}  val loss {h['val_loss'][-1]:.3f}"
              f"  gap {gaps[p]:.3f}  val acc {h['val_acc'][-1]:.3f}")
    # evaluate() leaves the model in eval mode, so a loop that forgets model.train() trains
    # every epoch after the first without dropout; the gap check alone can miss that
    on, steps = results[P]["steps_with_dropout_on"]
    check.equal("training steps with dropout in train mode (of all steps)", (on, steps),
                (steps, steps))
    check.less(f"generalisation gap (val - train loss) with p = {P} vs without dropout",
               gaps[P], gaps[0.0])
    # Choose with or without dropout on validation loss; the test split is scored once, for it.
    chosen = min(results, key=lambda p: results[p]["val_loss"][-1])
    test_loss, test_acc = evaluate(models[chosen], *test_set)
    print(f"chosen on validation: p = {chosen}; its test loss {test_loss:.3f}, "
          f"test acc {test_acc:.3f} (measured once)")

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [1, 1.6]})
    demo = Dropout(P).train()
    acts = torch.rand(12, 24) + 0.5                       # (12 examples, 24 units), all > 0
    shown = axes[0].imshow(demo(acts), cmap="viridis", vmin=0)
    fig.colorbar(shown, ax=axes[0], fraction=0.03)
    axes[0].set(title=f"activations after dropout (p = {P}):\nzeros, survivors x 1/(1-p)",
                xlabel="unit", ylabel="example")
    for p, colour in zip(results, ("tab:red", "tab:blue")):
        label = "no dropout" if p == 0 else f"dropout p = {p}"
        axes[1].plot(results[p]["train_loss"], "--", color=colour, label=f"{label}: train")
        axes[1].plot(results[p]["val_loss"], "-", color=colour, label=f"{label}: validation")
    axes[1].set(xlabel="epoch", ylabel="cross-entropy (eval mode)",
                title="dropout trades train loss for a smaller train/validation gap")
    axes[1].legend()
    plot.save(fig, run, "dropout.png")
    return cli.finish(run, {"epochs": len(results[P]["train_loss"]),
                            "gap_no_dropout": gaps[0.0], "gap_dropout": gaps[P],
                            "val_loss_no_dropout": results[0.0]["val_loss"][-1],
                            "val_loss_dropout": results[P]["val_loss"][-1],
                            "val_acc_no_dropout": results[0.0]["val_acc"][-1],
                            "val_acc_dropout": results[P]["val_acc"][-1],
                            "chosen_p": chosen, "test_loss": test_loss, "test_acc": test_acc},
                      answers={
        "smaller_gap": ("yes" if gaps[P] < gaps[0.0] else "no", f"validation - train loss after "
                        f"{epochs} epochs: {gaps[0.0]:.3f} without dropout, {gaps[P]:.3f} with p = {P} "
                        "(dropout.png, right)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 04.06`) before running it;
# `python -m dlcourse check 04.06` compares your answers with what the run measures.
# PREDICT smaller_gap (yes / no): on a small training set, does dropout p = 0.5 shrink the gap between validation and training loss?
# ANSWER smaller_gap:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
