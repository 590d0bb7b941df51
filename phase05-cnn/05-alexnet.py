"""05 - AlexNet (phase 05, week 6)

Goal: build AlexNet from scratch (the torchvision single-GPU variant and the 2012 two-GPU
      original with grouped convolutions and LRN), match torchvision's parameter count and
      outputs, and see that convolutions hold the compute while the FC layers hold the weights.
Run:  python phase05-cnn/05-alexnet.py            (batch of 8 at 224x224; about 2 s on a 2-core CPU)
      python phase05-cnn/05-alexnet.py --quick    (seconds, offline, used by the tests)
Expect: "[check] parameters: scratch vs torchvision alexnet: 61100840"; the grouped 2012
        original has 60,965,224 (62,378,344 without groups); scratch and torchvision logits
        agree exactly with the same weights; layers.png shows the FC layers holding 96% of
        the parameters but 8% of the 0.71 G multiply-adds.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import torch
import torch.nn as nn
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from dlcourse import check, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

N_CLASSES = 1000     # ImageNet's classes, so the counts match torchvision's
DROPOUT = 0.5        # on the two hidden FC layers, as in the paper
SIZE = 224           # input height and width (the 2012 original needs 227, see below)

# Feature extractors as tables: ("conv", out, kernel, stride, padding, groups) / ("pool",) /
# ("lrn",). "pool" is 3x3 stride 2 *overlapping* max pooling, one of the paper's tricks.
TORCHVISION = [("conv", 64, 11, 4, 2, 1), ("pool",), ("conv", 192, 5, 1, 2, 1), ("pool",),
               ("conv", 384, 3, 1, 1, 1), ("conv", 256, 3, 1, 1, 1), ("conv", 256, 3, 1, 1, 1),
               ("pool",)]
# Krizhevsky et al. 2012 split the net over two 3 GB GPUs: conv2, conv4 and conv5 only see
# the half of the channels on their own GPU, which is exactly groups=2 (lesson 01).
ORIGINAL_2012 = [("conv", 96, 11, 4, 0, 1), ("lrn",), ("pool",), ("conv", 256, 5, 1, 2, 2),
                 ("lrn",), ("pool",), ("conv", 384, 3, 1, 1, 1), ("conv", 384, 3, 1, 1, 2),
                 ("conv", 256, 3, 1, 1, 2), ("pool",)]


class AlexNet(nn.Module):
    """features -> 6x6 adaptive pool -> 3 FC layers. Attribute and index names follow
    torchvision's, so its state_dict loads into this model unchanged."""

    def __init__(self, table=TORCHVISION, n_classes=N_CLASSES):
        super().__init__()
        layers, c = [], 3
        for kind, *cfg in table:
            if kind == "conv":
                out, k, s, p, g = cfg
                layers += [nn.Conv2d(c, out, k, s, p, groups=g), nn.ReLU(inplace=True)]
                c = out
            elif kind == "lrn":        # local response norm: parameter-free, later dropped
                layers.append(nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0))
            else:
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))      # any input >= 63 px gives 6x6
        self.classifier = nn.Sequential(
            nn.Dropout(DROPOUT), nn.Linear(c * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(DROPOUT), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, n_classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))     # (B, 256, 6, 6)
        return self.classifier(x.flatten(1))   # (B, 256*6*6) -> (B, n_classes)


def formula_params(table, n_classes=N_CLASSES):
    """conv: (k*k*c_in/groups + 1) * c_out; fc: (in + 1) * out. Pool and LRN: none."""
    # EXERCISE formula_params: track the channels c (3 at the input); each conv adds (k*k*c/groups + 1) * out; then the three FC layers (c*6*6 -> 4096 -> 4096 -> n_classes) add (in + 1) * out each
    total, c = 0, 3
    for kind, *cfg in table:
        if kind == "conv":
            out, k, _, _, g = cfg
            total += (k * k * c // g + 1) * out
            c = out
    for n_in, n_out in [(c * 36, 4096), (4096, 4096), (4096, n_classes)]:
        total += (n_in + 1) * n_out
    return total
    # END EXERCISE


# count, layer_table, flops and gmacs are the phase's model-size tools: lessons 06-10 load them.

def count(model):
    """Trainable numbers in the model (weights and biases; BN's running statistics are buffers)."""
    return sum(p.numel() for p in model.parameters())


def layer_table(model, size, channels=3):
    """Per conv/linear layer: name, output shape, parameters, multiply-adds for one image.
    A forward hook sees each layer's output; MACs = outputs * (inputs each output reads).
    The forward runs two images, so the per-image count must take one of them."""
    rows = []

    def hook(module, inputs, output, name):
        # EXERCISE layer_macs: MACs for one image = that image's outputs x the inputs each output reads (conv: in_channels / groups * kh * kw; linear: in_features)
        if isinstance(module, nn.Conv2d):
            per_out = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        else:
            per_out = module.in_features
        macs = output[0].numel() * per_out                 # output[0]: one image
        rows.append((name, tuple(output.shape[1:]), count(module), macs))
        # END EXERCISE

    handles = [m.register_forward_hook(lambda mod, i, o, n=name: hook(mod, i, o, n))
               for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    device = next(model.parameters()).device
    with torch.no_grad():
        model.eval()(torch.zeros(2, channels, size, size, device=device))   # (2, C, size, size)
    for h in handles:
        h.remove()
    return rows


def flops(model, size, channels=3):
    """FLOPs of one forward pass of one image as torch counts them (2 per multiply-add in conv
    and matmul), in eval mode: train-mode batch norm would add its own arithmetic."""
    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(torch.zeros(1, channels, size, size, device=device))
    return counter.get_total_flops()


def gmacs(model, size):
    """Billions of multiply-adds per size x size image, by torch's counter."""
    return flops(model, size) / 2e9


def figure(run, rows):
    names = [f"{n} {s}" for n, s, _, _ in rows]
    params = torch.tensor([p for _, _, p, _ in rows], dtype=torch.float64)
    macs = torch.tensor([m for _, _, _, m in rows], dtype=torch.float64)
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
    for ax, values, what in [(axes[0], params, "parameters"), (axes[1], macs, "multiply-adds")]:
        share = values / values.sum()
        ax.barh(names, values / 1e6, color=["tab:blue" if "features" in n else "tab:orange"
                                            for n in names])
        for i, (v, sh) in enumerate(zip(values / 1e6, share)):
            ax.text(v, i, f" {sh:.0%}", va="center", fontsize=8)
        ax.set(xlabel=f"{what} (millions)", title=f"AlexNet {what} per layer (224x224 image)")
    axes[0].invert_yaxis()
    fig.suptitle("blue: convolutions (features), orange: fully connected (classifier)", y=1.02)
    plot.save(fig, run, "layers.png")


def main(args) -> dict:
    run = cli.start(args, __file__)

    print("--- 1. parameter counts (models built on the meta device: shapes only, no memory)")
    with torch.device("meta"):
        ours, theirs = AlexNet(), torchvision.models.alexnet(weights=None)
        original = AlexNet(ORIGINAL_2012)
    check.equal("parameters: scratch vs torchvision alexnet", count(ours), count(theirs))
    check.equal("parameters: scratch vs formula", count(ours), formula_params(TORCHVISION))
    check.equal("parameters: 2012 two-GPU original vs formula", count(original),
                formula_params(ORIGINAL_2012))
    ungrouped = [(k, c[0], *c[1:4], 1) if k == "conv" else (k,) for k, *c in ORIGINAL_2012]
    print(f"    2012 original: {count(original):,} parameters; without groups it would have "
          f"{formula_params(ungrouped):,}")

    print("--- 2. shapes, parameters and multiply-adds per layer")
    rows = layer_table(ours, SIZE)
    for name, shape, p, m in rows:
        print(f"    {name:14s} -> {str(shape):16s} params {p:>11,}  MACs {m:>12,}")
    total_macs = sum(m for *_, m in rows)
    check.equal("FLOPs: 2 x our per-layer MACs vs torch's FlopCounterMode", 2 * total_macs,
                flops(ours, SIZE))
    # torchvision's AlexNet has no groups; the 2012 original's grouped convs test that part
    macs_2012 = sum(m for *_, m in layer_table(original, 227))
    check.equal("FLOPs of the grouped 2012 original at 227x227: 2 x our MACs vs FlopCounterMode",
                2 * macs_2012, flops(original, 227))
    fc_params = sum(p for n, _, p, _ in rows if n.startswith("classifier")) / count(ours)
    fc_macs = sum(m for n, _, _, m in rows if n.startswith("classifier")) / total_macs
    print(f"    FC layers: {fc_params:.0%} of the parameters, {fc_macs:.0%} of the multiply-adds")
    check.equal("2012 original on 227x227 reaches the 6x6x256 map",
                tuple(original.features(torch.empty(1, 3, 227, 227, device="meta")).shape),
                (1, 256, 6, 6))

    print("--- 3. same weights, same outputs: torchvision's state_dict in the scratch model")
    tv = torchvision.models.alexnet(weights=None).to(run.device).eval()
    with torch.device("meta"):
        model = AlexNet()
    # assign=True adopts torchvision's tensors instead of copying into freshly initialised
    # ones: building on meta skipped the (slow) random init of 61 M weights.
    model.load_state_dict(tv.state_dict(), strict=True, assign=True)
    model.eval()                                           # eval: dropout off in both
    x = torch.randn(2 if run.quick else 8, 3, SIZE, SIZE, device=run.device)
    with torch.no_grad():
        out, ref = model(x), tv(x)
    check.equal("logits shape", tuple(out.shape), (x.shape[0], N_CLASSES))
    check.close("logits: scratch vs torchvision alexnet (same weights, float32)", out, ref,
                atol=1e-5, rtol=1e-5)
    figure(run, rows)
    bands = lambda v: "under 10%" if v < 0.1 else "10% to 50%" if v < 0.5 else "over 50%"  # noqa: E731
    evidence = (f"FC layers: {fc_params:.0%} of the {count(ours):,} parameters, {fc_macs:.0%} of "
                f"the {total_macs / 1e9:.2f} G multiply-adds (section 2 of the output; layers.png)")
    return cli.finish(run, {"params": count(ours), "params_2012": count(original),
                            "gmacs_224": total_macs / 1e9, "fc_param_share": fc_params,
                            "fc_mac_share": fc_macs}, answers={
        "fc_param_share": (bands(fc_params), evidence),
        "fc_mac_share": (bands(fc_macs), evidence)})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 05.05`) before running it;
# `python -m dlcourse check 05.05` compares your answers with what the run measures.
# PREDICT fc_param_share (under 10% / 10% to 50% / over 50%): what share of AlexNet's parameters sit in its three fully connected layers?
# ANSWER fc_param_share:
# PREDICT fc_mac_share (under 10% / 10% to 50% / over 50%): and what share of its multiply-adds for one 224x224 image?
# ANSWER fc_mac_share:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
