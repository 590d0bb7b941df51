"""10 - EfficientNet: MBConv, squeeze-excitation, compound scaling (phase 05, week 7)

Goal: build EfficientNet from its parts (MBConv = MobileNetV2's inverted residual +
      squeeze-excitation + SiLU + stochastic depth) and scale B0 up to B7 by width, depth
      and resolution; match torchvision's parameter counts, multiply-adds and outputs.
Run:  python phase05-cnn/10-efficientnet.py            (B0-B7 and the other families in the plot, 224x224 comparison; about 40 s on a 2-core CPU shared with other jobs)
      python phase05-cnn/10-efficientnet.py --quick    (seconds, offline, used by the tests)
Expect: "[check] parameters: scratch vs torchvision efficientnet_b0: 5288548"; B0's logits equal
        torchvision's with the same weights, in eval mode and in train mode, where stochastic
        depth and dropout draw the same random numbers (lesson 07's comparison: BN buffers and
        gradients too); 0.386 G multiply-adds for B0 at 224x224 as
        torchvision lists; families.png shows EfficientNet reaching a given ImageNet accuracy
        with several times fewer multiply-adds than ResNet.
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

N_CLASSES = 1000             # ImageNet's classes, so the counts match torchvision's
SURVIVAL_DROP = 0.2          # stochastic depth: drop probability of the last block (linear ramp)
# B0's stages (Tan & Le 2019, Table 1): expansion t, kernel k, stride s, in, out, repeats n.
B0 = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
      (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]
# (width multiplier, depth multiplier, resolution, dropout) of B0..B7, as torchvision uses them.
SCALES = {0: (1.0, 1.0, 224, 0.2), 1: (1.0, 1.1, 240, 0.2), 2: (1.1, 1.2, 288, 0.3),
          3: (1.2, 1.4, 300, 0.3), 4: (1.4, 1.8, 380, 0.4), 5: (1.6, 2.2, 456, 0.4),
          6: (1.8, 2.6, 528, 0.5), 7: (2.0, 3.1, 600, 0.5)}
ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15   # the paper's grid-searched depth, width, resolution bases
QUICK_B = (0, 1)                      # --quick checks these against torchvision

alexnet = lessons.load("05.05")   # the model-size tools: count, gmacs
resnet = lessons.load("05.07")    # BN randomiser and the comparison with torchvision's weights
variants = lessons.load("05.08")   # torchvision_metrics: listed top-1 and G ops, no download
mobilenet = lessons.load("05.09")  # divisible: channel counts rounded to multiples of 8
count, gmacs, divisible = alexnet.count, alexnet.gmacs, mobilenet.divisible
listed = variants.torchvision_metrics


def conv_bn_act(c_in, c_out, k=1, stride=1, groups=1, act=True, bn_eps=1e-5):
    layers = [nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(c_out, eps=bn_eps)]
    return nn.Sequential(*layers, nn.SiLU(inplace=True)) if act else nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Channel attention (Hu et al. 2018): squeeze each channel to its mean, pass the vector
    through a small bottleneck MLP (1x1 convs), and rescale the channels by a sigmoid gate:
    y = x * sigmoid(W2 silu(W1 mean_hw(x) + b1) + b2)."""

    def __init__(self, channels, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.SiLU(inplace=True)
        self.scale_activation = nn.Sigmoid()

    def forward(self, x):
        # EXERCISE se_forward: per channel, mean over H and W, fc1, SiLU, fc2, sigmoid: a (B, C, 1, 1) gate that multiplies x
        s = self.fc2(self.activation(self.fc1(self.avgpool(x))))   # (B, C, 1, 1)
        return x * self.scale_activation(s)
        # END EXERCISE


class StochasticDepth(nn.Module):
    """In training, skip a residual branch for a random subset of the batch ("row" mode) and
    scale the survivors by 1/(1-p) so the expectation is unchanged; identity at eval time."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        # EXERCISE stochastic_depth: identity in eval mode or when p = 0; else one Bernoulli(1 - p) keep per sample, shape (B, 1, 1, 1), drawn with Tensor.bernoulli_, and x * keep / (1 - p)
        if not self.training or self.p == 0.0:
            return x
        keep = torch.empty(x.shape[0], 1, 1, 1, device=x.device).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)
        # END EXERCISE


class MBConv(nn.Module):
    """expand 1x1 -> depthwise kxk -> squeeze-excitation -> project 1x1 (linear), + skip."""

    def __init__(self, t, k, stride, c_in, c_out, drop, bn_eps=1e-5):
        super().__init__()
        # EXERCISE mbconv_layers: hidden = divisible(c_in * t); a skip only at stride 1 with c_in == c_out; [1x1 expand unless t == 1] + kxk depthwise (stride) + squeeze-excitation (its bottleneck a quarter of the INPUT width c_in) + 1x1 projection without activation, in self.block; StochasticDepth(drop)
        hidden = divisible(c_in * t)
        self.use_res_connect = stride == 1 and c_in == c_out
        layers = [conv_bn_act(c_in, hidden, bn_eps=bn_eps)] if t != 1 else []
        layers += [conv_bn_act(hidden, hidden, k, stride, groups=hidden, bn_eps=bn_eps),
                   SqueezeExcitation(hidden, max(1, c_in // 4)),    # squeeze relative to the input width
                   conv_bn_act(hidden, c_out, act=False, bn_eps=bn_eps)]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(drop)
        # END EXERCISE

    def forward(self, x):
        out = self.block(x)
        return x + self.stochastic_depth(out) if self.use_res_connect else out


class EfficientNet(nn.Module):
    """Stem -> 7 MBConv stages -> 1x1 head conv -> pool -> dropout + FC. Torchvision's names."""

    def __init__(self, width=1.0, depth=1.0, dropout=0.2, bn_eps=1e-5, n_classes=N_CLASSES):
        super().__init__()
        stages = [(t, k, s, divisible(ci * width), divisible(co * width), math.ceil(n * depth))
                  for t, k, s, ci, co, n in B0]
        total, done = sum(st[-1] for st in stages), 0
        layers = [conv_bn_act(3, stages[0][3], 3, stride=2, bn_eps=bn_eps)]
        for t, k, s, c_in, c_out, n in stages:
            blocks = []
            for i in range(n):
                drop = SURVIVAL_DROP * done / total                  # deeper blocks drop more often
                first = i == 0                                       # only the first block strides
                blocks.append(MBConv(t, k, s if first else 1, c_in if first else c_out, c_out, drop, bn_eps))
                done += 1
            layers.append(nn.Sequential(*blocks))
        head = 4 * stages[-1][4]
        layers.append(conv_bn_act(stages[-1][4], head, bn_eps=bn_eps))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout, inplace=True), nn.Linear(head, n_classes))

    def forward(self, x):
        x = self.avgpool(self.features(x)).flatten(1)    # (B, head)
        return self.classifier(x)                        # (B, n_classes)


def efficientnet(b):
    width, depth, _, dropout = SCALES[b]
    return EfficientNet(width, depth, dropout, bn_eps=1e-5 if b < 5 else 1e-3)  # B5-B7: TF's eps


def figure(run, points):
    fig, ax = plt.subplots(figsize=(8, 4.8))
    families = {}
    for name, (macs, acc) in points.items():
        family = name.rstrip("0123456789").removesuffix("_b").removesuffix("_v")
        families.setdefault(family, []).append((macs, acc, name))
    for family, pts in families.items():
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=family)
        for macs, acc, name in pts:
            ax.annotate(name.replace("efficientnet_", ""), (macs, acc), textcoords="offset points",
                        xytext=(4, -10), fontsize=7)
    ax.set(xscale="log", xlabel="multiply-adds per image at the native resolution (G), counted here",
           ylabel="ImageNet top-1 (%), torchvision's V1 weights",
           title="accuracy per multiply-add across the phase's architectures")
    ax.legend()
    plot.save(fig, run, "families.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    bs = QUICK_B if run.quick else tuple(SCALES)

    print("--- 1. compound scaling: depth alpha^phi, width beta^phi, resolution gamma^phi")
    print(f"    FLOPs grow like depth * width^2 * resolution^2: alpha*beta^2*gamma^2 = "
          f"{ALPHA * BETA ** 2 * GAMMA ** 2:.2f} ~ 2 per step of phi. The released B1-B7 use")
    print("    hand-rounded multipliers near these (SCALES), and rounding channels to multiples of 8")
    print("    and blocks up to whole numbers moves the real cost further; we count it below.")

    print("--- 2. parameters and multiply-adds vs torchvision (meta device)")
    metrics, points = {}, {}
    for b in bs:
        with torch.device("meta"):
            ours, theirs = efficientnet(b), getattr(torchvision.models, f"efficientnet_b{b}")(weights=None)
        check.equal(f"parameters: scratch vs torchvision efficientnet_b{b}", count(ours), count(theirs))
        acc, ops = listed(f"efficientnet_b{b}")
        macs = gmacs(ours, SCALES[b][2])
        check.close(f"B{b} multiply-adds at {SCALES[b][2]}px vs torchvision's listed {ops} G", macs, ops,
                    atol=0.001)
        points[f"efficientnet_b{b}"] = (macs, acc)
        w, d, r, _ = SCALES[b]
        print(f"    B{b}: width x{w}, depth x{d}, {r}px -> {count(ours) / 1e6:.1f} M params, "
              f"{macs:.3f} G MACs ({macs / points['efficientnet_b0'][0]:.1f}x B0), top-1 {acc}%")
        metrics[f"params_b{b}"] = count(ours)
    others = ["resnet50", "mobilenet_v2"] if run.quick else \
        ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "mobilenet_v2", "vgg16"]
    for name in others:
        with torch.device("meta"):
            model = getattr(torchvision.models, name)(weights=None)
        points[name] = (gmacs(model, 224), listed(name)[0])
    figure(run, points)

    print("--- 3. same weights, same outputs (B0)")
    tv = torchvision.models.efficientnet_b0(weights=None).to(run.device).eval()
    resnet.randomise_batchnorm(tv)                         # non-trivial BN (lesson 07)
    with torch.device("meta"):
        model = efficientnet(0)
    size = 96 if run.quick else 224
    x = torch.randn(2, 3, size, size, device=run.device)
    # train mode runs stochastic depth and dropout: after the same seed, both models must drop
    # the same residual branches and units, so a wrong keep probability or scale shows
    resnet.compare_with_reference(f"scratch EfficientNet-B0, {size}x{size} (same weights)",
                                  resnet.load_weights(model, tv), tv, x)
    sd = [m.p for m in model.modules() if isinstance(m, StochasticDepth)]
    print(f"    stochastic depth: {len(sd)} blocks, drop probability {sd[0]:.2f} ... {sd[-1]:.3f}")
    ratio = points["efficientnet_b1"][0] / points["efficientnet_b0"][0]
    options = ("1x", "2x", "4x")
    return cli.finish(run, metrics, answers={
        "b1_cost": (min(options, key=lambda o: abs(math.log(float(o[:-1]) / ratio))),
                    f"B0 {points['efficientnet_b0'][0]:.3f} G MACs, B1 {points['efficientnet_b1'][0]:.3f} "
                    f"G: {ratio:.2f}x (section 2 of the output; families.png)"),
        "first_block_dropped": ("yes" if sd[0] > 0 else "no",
                                f"drop probabilities ramp from {sd[0]:.2f} (first block) to "
                                f"{sd[-1]:.3f} (last of {len(sd)}) (section 3 of the output)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 05.10`) before running it;
# `python -m dlcourse check 05.10` compares your answers with what the run measures.
# PREDICT b1_cost (1x / 2x / 4x): one step of compound scaling, B0 -> B1 (depth x1.1, 240 px): how many times B0's multiply-adds does B1 need?
# ANSWER b1_cost:
# PREDICT first_block_dropped (yes / no): in training, can stochastic depth skip the first MBConv block?
# ANSWER first_block_dropped:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
