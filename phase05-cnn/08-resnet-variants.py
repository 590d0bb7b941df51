"""08 - ResNet-34/50/101: BasicBlock and Bottleneck (phase 05, week 7)

Goal: one builder for every ResNet depth (BasicBlock for 18/34, Bottleneck for 50/101/152,
      plus ResNeXt and Wide ResNet through groups and width), checked against torchvision's
      parameter counts and outputs, and a picture of what depth buys per multiply-add.
Run:  python phase05-cnn/08-resnet-variants.py            (adds ResNet-152 and a 224x224 comparison; about 20 s on a 2-core CPU shared with other jobs)
      python phase05-cnn/08-resnet-variants.py --quick    (seconds, offline, used by the tests)
Expect: "[check] parameters: scratch vs torchvision resnet50: 25557032" (and 18, 34, 101);
        scratch ResNet-50 with torchvision's weights gives its logits exactly, in eval and in
        train mode (BN buffers and gradients too, lesson 07's comparison), while the
        same weights in a 2015-style block (stride on the 1x1) do not; variants.png plots
        torchvision's reported ImageNet accuracy against our multiply-add counts.
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
SIZE = 224           # input size for the multiply-add counts
# name: (block, blocks per stage, groups, width per group) - He et al. 2015, Table 1;
# ResNeXt (Xie et al. 2017) and Wide ResNet (Zagoruyko & Komodakis 2016) only change the 3x3.
VARIANTS = {
    "resnet18": ("basic", [2, 2, 2, 2], 1, 64),
    "resnet34": ("basic", [3, 4, 6, 3], 1, 64),
    "resnet50": ("bottleneck", [3, 4, 6, 3], 1, 64),
    "resnet101": ("bottleneck", [3, 4, 23, 3], 1, 64),
    "resnet152": ("bottleneck", [3, 8, 36, 3], 1, 64),
    "resnext50_32x4d": ("bottleneck", [3, 4, 6, 3], 32, 4),
    "wide_resnet50_2": ("bottleneck", [3, 4, 6, 3], 1, 128),
}
QUICK = ["resnet18", "resnet34", "resnet50", "resnet101", "resnext50_32x4d", "wide_resnet50_2"]

alexnet = lessons.load("05.05")   # the model-size tools: count, gmacs
resnet = lessons.load("05.07")    # BasicBlock, and the comparison with torchvision's weights
count, gmacs = alexnet.count, alexnet.gmacs


def shortcut(c_in, c_out, stride):
    """Identity when shapes match, else a strided 1x1 conv + BN ('projection shortcut')."""
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class BasicBlock(resnet.BasicBlock):
    """Lesson 07's 3x3 -> 3x3 block, with the builder's signature. Output channels = `planes`."""
    expansion = 1                                            # output channels / planes

    def __init__(self, c_in, planes, stride=1, groups=1, base_width=64):
        assert groups == 1 and base_width == 64, "BasicBlock has no groups or width option"
        super().__init__(c_in, planes, stride)


class Bottleneck(nn.Module):
    """1x1 squeeze -> 3x3 -> 1x1 expand (x4). The 3x3, the expensive part, runs on 1/4 of the
    channels. `stride_on_3x3=True` is torchvision's "ResNet v1.5"; the 2015 paper put the
    stride on the first 1x1, which throws away 3/4 of the positions before looking at them."""
    expansion = 4

    def __init__(self, c_in, planes, stride=1, groups=1, base_width=64, stride_on_3x3=True):
        super().__init__()
        # EXERCISE bottleneck_layers: width = planes * base_width / 64 * groups; 1x1 c_in -> width, 3x3 width -> width (groups, padding 1), 1x1 width -> 4 * planes, a BN after each; the stride on the 3x3 (v1.5) or the first 1x1; shortcut(c_in, c_out, stride)
        width = int(planes * base_width / 64) * groups      # channels of the 3x3 conv
        c_out = planes * self.expansion
        s1, s3 = (1, stride) if stride_on_3x3 else (stride, 1)
        self.conv1 = nn.Conv2d(c_in, width, 1, s1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, s3, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut(c_in, c_out, stride)
        # END EXERCISE

    def forward(self, x):
        # EXERCISE bottleneck_forward: relu(bn1(conv1)), relu(bn2(conv2)), bn3(conv3), add the shortcut (x or downsample(x)), then the last relu
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))             # (B, width, H, W)
        out = self.relu(self.bn2(self.conv2(out)))           # (B, width, H/s, W/s)
        return self.relu(self.bn3(self.conv3(out)) + identity)  # (B, 4*planes, H/s, W/s)
        # END EXERCISE


class ResNet(nn.Module):
    """Stem -> 4 stages (planes 64, 128, 256, 512; stages 2-4 start with stride 2) -> pool -> FC."""

    def __init__(self, block, layers, groups=1, width_per_group=64, n_classes=N_CLASSES, **block_kw):
        super().__init__()
        block = {"basic": BasicBlock, "bottleneck": Bottleneck}[block]
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers), start=1):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 1 and j == 0) else 1
                blocks.append(block(c, planes, stride, groups, width_per_group, **block_kw))
                c = planes * block.expansion
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, n_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))           # (B, C) -> (B, n_classes)


def build(name, **block_kw):
    block, layers, groups, width = VARIANTS[name]
    return ResNet(block, layers, groups, width, **block_kw)


def torchvision_metrics(name):
    """ImageNet top-1 (%) and G ops torchvision lists for its first ImageNet weights (the
    2015 recipe for ResNets): metadata, no download. Lesson 10 loads this function."""
    enum = torchvision.models.get_model_weights(name)
    return enum.IMAGENET1K_V1.meta["_metrics"]["ImageNet-1K"]["acc@1"], enum.IMAGENET1K_V1.meta["_ops"]


def figure(run, table):
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for name, (params, macs, acc) in table.items():
        ax.scatter(macs, acc, s=params * 8, alpha=0.6)
        ax.annotate(f"{name}\n{params:.1f} M", (macs, acc), textcoords="offset points", xytext=(8, -4),
                    fontsize=8)
    ax.set(xlabel="multiply-adds per 224x224 image (G), counted here",
           ylabel="ImageNet top-1 (%), torchvision's V1 weights",
           title="what depth buys (bubble area ~ parameters)")
    ax.margins(x=0.25, y=0.15)
    plot.save(fig, run, "variants.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    names = QUICK if run.quick else list(VARIANTS)

    print("--- 1. parameter counts and multiply-adds (meta device: shapes only, no memory)")
    table, metrics = {}, {}
    with torch.device("meta"):
        for name in names:
            ours, theirs = build(name), getattr(torchvision.models, name)(weights=None)
            check.equal(f"parameters: scratch vs torchvision {name}", count(ours), count(theirs))
            acc, their_ops = torchvision_metrics(name)
            table[name] = (count(ours) / 1e6, gmacs(ours, SIZE), acc)
            print(f"    {name:16s} {count(ours) / 1e6:6.1f} M params  {table[name][1]:5.2f} G MACs "
                  f"(torchvision lists {their_ops})  top-1 {acc}%")
            metrics[f"params_{name}"] = count(ours)
    check.close("resnet50 multiply-adds: FlopCounterMode / 2 vs torchvision's listed _ops (G)",
                table["resnet50"][1], torchvision_metrics("resnet50")[1], atol=0.01)

    print("--- 2. why the bottleneck: a block at 256 channels")
    c = 256
    basic = BasicBlock(c, c)
    bottleneck = Bottleneck(c, c // 4)
    # basic: two 3x3 convs C->C (+2 BNs of 2C); bottleneck: 1x1 C->C/4, 3x3 C/4->C/4, 1x1 C/4->C
    check.equal("BasicBlock(256) params = 2*9*C^2 + 2*2C",
                count(basic), 2 * 9 * c * c + 2 * 2 * c)
    check.equal("Bottleneck(256 -> 64 -> 256) params = C*C/4 + 9*(C/4)^2 + C/4*C + BN",
                count(bottleneck), c * c // 4 + 9 * (c // 4) ** 2 + c // 4 * c + 2 * 2 * (c // 4) + 2 * c)
    print(f"    the bottleneck needs {count(basic) / count(bottleneck):.0f}x fewer weights at 256 channels")

    print("--- 3. same weights, same outputs (ResNet-50), and where the stride goes")
    tv = torchvision.models.resnet50(weights=None).to(run.device).eval()
    resnet.randomise_batchnorm(tv)                           # non-trivial BN (lesson 07)
    size = 64 if run.quick else SIZE
    x = torch.randn(2, 3, size, size, device=run.device)
    with torch.device("meta"):
        model = build("resnet50")
    resnet.compare_with_reference(f"scratch ResNet-50 (v1.5), {size}x{size}",
                                  resnet.load_weights(model, tv), tv, x)
    with torch.device("meta"):
        model = build("resnet50", stride_on_3x3=False)
    resnet.load_weights(model, tv)
    with torch.no_grad():
        diff = (model.eval()(x) - tv.eval()(x)).abs().max().item()
    print("    same weights, stride on the first 1x1 (2015 paper): the state_dict still "
          "loads, the parameter count is the same, the outputs are not")
    check.greater("max |logit diff|: 2015-style block vs torchvision v1.5", diff, 1e-2)
    figure(run, table)
    saving = count(basic) / count(bottleneck)
    options = ("2x", "4x", "17x", "64x")
    return cli.finish(run, metrics, answers={
        "bottleneck_saving": (min(options, key=lambda o: abs(math.log(float(o[:-1]) / saving))),
                              f"BasicBlock(256) {count(basic):,} weights, Bottleneck(256 -> 64 -> 256) "
                              f"{count(bottleneck):,}: {saving:.1f}x fewer (section 2 of the output)"),
        "stride_swap_same": ("yes" if diff < 1e-4 else "no",
                             f"same weights, stride moved to the first 1x1: max |logit diff| = "
                             f"{diff:.3g} (section 3 of the output)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 05.08`) before running it;
# `python -m dlcourse check 05.08` compares your answers with what the run measures.
# PREDICT bottleneck_saving (2x / 4x / 17x / 64x): at 256 channels, how many times fewer weights does a bottleneck block (256 -> 64 -> 256) have than a basic block of two 3x3 convs?
# ANSWER bottleneck_saving:
# PREDICT stride_swap_same (yes / no): load ResNet-50 v1.5 weights into a net that puts each stride on the first 1x1 instead of the 3x3: are the logits the same?
# ANSWER stride_swap_same:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
