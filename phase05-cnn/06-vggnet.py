"""06 - VGG (phase 05, week 6)

Goal: build VGG-11/13/16/19 (with and without batch norm) from one configuration table,
      match torchvision's parameter counts and outputs, and see why stacked 3x3 convolutions
      won and where VGG's memory goes.
Run:  python phase05-cnn/06-vggnet.py            (all eight variants, VGG-16 and VGG-16-BN at 224x224; about 6 s on a 2-core CPU)
      python phase05-cnn/06-vggnet.py --quick    (seconds, offline, used by the tests)
Expect: "[check] parameters: scratch vs torchvision vgg16: 138357544"; two 3x3 convs see 5x5
        with 18C^2 instead of 25C^2 weights; scratch and torchvision outputs agree exactly with
        the same weights, for the BN variant in train mode too (and its running statistics);
        memory.png shows activations peaking in the first block and parameters in the first
        FC layer.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import math

import torch
import torch.nn as nn
import torchvision

from dlcourse import check, lessons, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

N_CLASSES = 1000     # ImageNet's classes, so the counts match torchvision's
DROPOUT = 0.5        # on the two hidden FC layers
SIZE = 224           # VGG's input size; 5 poolings bring it to 7x7

# Simonyan & Zisserman 2014, Table 1: output channels of each 3x3 conv, "M" a 2x2 max pool.
CONFIGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],                     # A
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],            # B
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],  # D
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],                                                            # E
}
QUICK_VARIANTS = ["vgg11", "vgg16", "vgg11_bn"]   # --quick compares these with torchvision

alexnet = lessons.load("05.05")   # lesson 05's model-size tools: count, gmacs, layer_table
count = alexnet.count


class VGG(nn.Module):
    """features (3x3 convs + max pools) -> 7x7 adaptive pool -> 3 FC layers.
    Names follow torchvision's, so its state_dict loads into this model unchanged."""

    def __init__(self, cfg, batch_norm=False, n_classes=N_CLASSES):
        super().__init__()
        # EXERCISE vgg_features: walk cfg from c = 3 channels: "M" adds a 2x2 stride-2 max pool; a number v adds a 3x3 conv c -> v with padding 1, BatchNorm2d(v) if batch_norm, then ReLU; set self.features (and leave c, read below)
        layers, c = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            # padding 1 keeps H and W: only the pools shrink the map, so depth is free to choose
            layers.append(nn.Conv2d(c, v, kernel_size=3, padding=1))
            layers += [nn.BatchNorm2d(v), nn.ReLU(inplace=True)] if batch_norm else [nn.ReLU(inplace=True)]
            c = v
        self.features = nn.Sequential(*layers)
        # END EXERCISE
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))    # 224 / 2^5 = 7: a no-op at 224x224
        self.classifier = nn.Sequential(
            nn.Linear(c * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(DROPOUT),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(DROPOUT),
            nn.Linear(4096, n_classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))     # (B, 512, 7, 7)
        return self.classifier(x.flatten(1))   # (B, 25088) -> (B, n_classes)


def vgg(name):
    """'vgg16' or 'vgg16_bn' -> model."""
    return VGG(CONFIGS[name.removesuffix("_bn")], batch_norm=name.endswith("_bn"))


def per_layer(model):
    """(name, activations per image, parameters) for every conv/linear layer (lesson 05's hooks)."""
    return [(n, math.prod(shape), p) for n, shape, p, _ in alexnet.layer_table(model, SIZE)]


def stacking_argument(c=64):
    """n stacked 3x3 convs see (2n+1)x(2n+1) pixels (lesson 03) with n*9*C^2 weights, against
    (2n+1)^2*C^2 for one big kernel, and they add n-1 extra non-linearities."""
    shares = {}
    for n in (2, 3):
        k = 2 * n + 1
        stack = nn.Sequential(*[nn.Conv2d(c, c, 3, padding=1) for _ in range(n)])
        big = nn.Conv2d(c, c, k, padding=n)
        check.equal(f"{n} stacked 3x3 ({k}x{k} field) vs one {k}x{k}: params {n}*(9C^2+C), k^2 C^2+C",
                    (count(stack), count(big)), (n * (9 * c * c + c), k * k * c * c + c))
        print(f"    {n} x 3x3 uses {count(stack) / count(big):.0%} of the weights of one {k}x{k}")
        shares[n] = count(stack) / count(big)
    return shares


def compare_features(run, name, size):
    """torchvision's `features` (random init) loaded into ours: the same outputs in eval mode
    and, with batch norm, in train mode, where BN normalises by the batch's own statistics and
    updates its running ones. Those are compared too: a wrong momentum shows only there."""
    with torch.device("meta"):
        ours, tv = vgg(name), getattr(torchvision.models, name)(weights=None)
    tv.features.to_empty(device=run.device)
    for m in tv.features.modules():
        if isinstance(m, (nn.Conv2d, nn.BatchNorm2d)):
            m.reset_parameters()                             # real random init, features only
    # clone: with assign=True both models would otherwise share the running-statistics buffers
    state = {k: v.clone() for k, v in tv.features.state_dict().items()}
    ours.features.load_state_dict(state, strict=True, assign=True)
    x = torch.randn(2, 3, size, size, device=run.device)
    bn = name.endswith("_bn")
    for mode in ("eval", "train") if bn else ("eval",):
        ours.train(mode == "train")
        tv.train(mode == "train")
        with torch.no_grad():
            out, ref = ours.features(x), tv.features(x)
        check.close(f"{name} features on 2x3x{size}x{size}, {mode} mode: scratch vs torchvision "
                    "(same weights, float32)", out, ref, atol=1e-5, rtol=1e-5)
    if bn:
        mine, theirs = ours.features.state_dict(), tv.features.state_dict()
        keys = [k for k in theirs if "running" in k]
        check.close(f"{name} BN running mean and var after the train-mode pass ({len(keys)} buffers)",
                    torch.cat([mine[k] for k in keys]), torch.cat([theirs[k] for k in keys]),
                    atol=1e-6, rtol=1e-5)


def figure(run, rows):
    names = [n.replace("features.", "conv ").replace("classifier.", "fc ") for n, _, _ in rows]
    acts = [a for _, a, _ in rows]
    params = [p for _, _, p in rows]
    fig, ax = plt.subplots(figsize=(12, 4))
    x = torch.arange(len(rows)).float()
    ax.bar(x - 0.2, acts, 0.4, label="activations per image (values)")
    ax.bar(x + 0.2, params, 0.4, label="parameters")
    ax.set_yscale("log")
    ax.set_xticks(x, names, rotation=60, fontsize=8)
    total_a, total_p = sum(acts), sum(params)
    ax.set_title(f"VGG-16 at 224x224: {total_a / 1e6:.1f} M conv/FC output values per image "
                 f"({total_a * 4 / 2**20:.0f} MiB in float32, forward only), "
                 f"{total_p / 1e6:.0f} M parameters")
    ax.legend()
    plot.save(fig, run, "memory.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    variants = QUICK_VARIANTS if run.quick else [f"{n}{bn}" for n in CONFIGS for bn in ("", "_bn")]

    print("--- 1. parameter counts against torchvision (meta device: shapes only, no memory)")
    metrics = {}
    with torch.device("meta"):
        for name in variants:
            ours, theirs = vgg(name), getattr(torchvision.models, name)(weights=None)
            check.equal(f"parameters: scratch vs torchvision {name}", count(ours), count(theirs))
            metrics[f"params_{name}"] = count(ours)
            print(f"    {name}: {count(ours) / 1e6:.1f} M parameters, "
                  f"{alexnet.gmacs(ours, SIZE):.1f} G multiply-adds")
        ours = vgg("vgg16")
        check.equal("vgg16 output shape at 224x224", tuple(ours(torch.empty(2, 3, SIZE, SIZE)).shape),
                    (2, N_CLASSES))

    print("--- 2. why 3x3: same field, fewer weights, more non-linearities")
    shares = stacking_argument()

    print("--- 3. where the memory goes (VGG-16, one 224x224 image)")
    rows = per_layer(ours)
    figure(run, rows)
    fc1 = max(rows, key=lambda r: r[2])
    print(f"    largest layer: {fc1[0]} with {fc1[2] / count(ours):.0%} of all parameters")

    print("--- 4. same weights, same outputs: torchvision's state_dict in the scratch model")
    if run.quick:
        # 133 M random weights take seconds to initialise on a CPU; the convolutions (9 M) are
        # where a wiring mistake would hide, so --quick compares `features` on a 64x64 input.
        for name in ("vgg11", "vgg11_bn"):
            compare_features(run, name, 64)
    else:
        tv = torchvision.models.vgg16(weights=None).to(run.device).eval()
        with torch.device("meta"):
            ours = vgg("vgg16")
        ours.load_state_dict(tv.state_dict(), strict=True, assign=True)
        ours.eval()
        x = torch.randn(2, 3, SIZE, SIZE, device=run.device)
        with torch.no_grad():
            out, ref = ours(x), tv(x)
        check.close("vgg16 logits on 2x3x224x224: scratch vs torchvision (same weights, float32)",
                    out, ref, atol=1e-5, rtol=1e-5)
        compare_features(run, "vgg16_bn", SIZE)
    options = ("33%", "55%", "100%", "300%")
    return cli.finish(run, metrics, answers={
        "largest_layer": ({"features.0": "first conv", "features.28": "last conv",
                           "classifier.0": "first fc", "classifier.6": "last fc"}.get(fc1[0], fc1[0]),
                          f"{fc1[0]} holds {fc1[2] / count(ours):.0%} of VGG-16's "
                          f"{count(ours):,} parameters (section 3 of the output; memory.png)"),
        "stack3_share": (min(options, key=lambda o: abs(float(o[:-1]) / 100 - shares[3])),
                         f"3 x 3x3 uses {shares[3]:.0%} of the weights of one 7x7: 27 C^2 vs "
                         "49 C^2 (section 2 of the output)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 05.06`) before running it;
# `python -m dlcourse check 05.06` compares your answers with what the run measures.
# PREDICT largest_layer (first conv / last conv / first fc / last fc): which layer of VGG-16 has the most parameters?
# ANSWER largest_layer:
# PREDICT stack3_share (33% / 55% / 100% / 300%): three stacked 3x3 convolutions see a 7x7 field; what share of the weights of one 7x7 convolution (same channels) do they use?
# ANSWER stack3_share:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
