"""09 - MobileNet: depthwise separable convolution (phase 05, week 7)

Goal: write a depthwise separable convolution from scratch (depthwise on lesson 01's im2col,
      then a 1x1), prove it is a standard convolution whose kernel factorises, derive its cost
      (1/C_out + 1/k^2 of a standard one), build MobileNetV2's inverted residual blocks and the
      whole network from scratch, match torchvision, and see why its bottlenecks are linear.
Run:  python phase05-cnn/09-mobilenet.py            (more width multipliers, 224x224 comparison in eval and train mode; about 15 s on a 2-core CPU shared with other jobs)
      python phase05-cnn/09-mobilenet.py --quick    (seconds, offline, used by the tests)
Expect: "[check] separable conv vs F.conv2d with the factorised kernel ..." ~1e-14 (float64);
        "[check] params ratio separable/standard (C_in=32, C_out=64, k=3) vs 1/C_out + 1/k^2"
        exact, FLOPs ratio the same; "[check] parameters: scratch vs torchvision mobilenet_v2:
        3504872"; identical logits with the same weights in eval and train mode (lesson 07's
        comparison: BN buffers and gradients too); 1x1 convolutions do 89% of the
        multiply-adds; relu_manifold.png shows ReLU destroying a 2-D spiral in 2 dimensions
        (relative error ~0.66) but not in 30 (~0.001).
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from dlcourse import check, lessons, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

N_CLASSES = 1000         # ImageNet's classes, so the counts match torchvision's
DROPOUT = 0.2            # before the classifier, as in torchvision
# MobileNetV2 (Sandler et al. 2018), Table 2: expansion t, output channels c, repeats n, stride s.
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1)]
RATIO_CASES = [(32, 64, 3), (128, 128, 3), (256, 512, 5)]   # (C_in, C_out, k) for the cost formula
WIDTHS = (1.0, 0.5)                                         # width multipliers checked; full run adds more
MORE_WIDTHS = (0.75, 1.4)
MANIFOLD_DIMS = (2, 3, 5, 15, 30)                           # dimensions of the ReLU experiment
# The scratch separable conv against references: C_in != C_out, a non-square kernel, image,
# stride and padding, so that no transposed axis or swapped height/width can pass.
SEP_C_IN, SEP_C_OUT, SEP_K = 6, 10, (3, 5)
SEP_STRIDE, SEP_PADDING, SEP_HW = (2, 1), (1, 2), (13, 11)
TOL = 1e-10                # float64: sums of ~90 products differ by rounding (~1e-14) only

conv = lessons.load("05.01")      # im2col, pair, out_size
alexnet = lessons.load("05.05")   # the model-size tools: count, flops, layer_table
resnet = lessons.load("05.07")    # BN randomiser and the comparison with torchvision's weights
count, flops = alexnet.count, alexnet.flops


def divisible(v, d=8):
    """Round a channel count to the nearest multiple of d (hardware likes multiples of 8),
    but never more than 10 % down."""
    out = max(d, int(v + d / 2) // d * d)
    return out + d if out < 0.9 * v else out


def conv_bn_relu6(c_in, c_out, k=3, stride=1, groups=1):
    """Conv (no bias: BN shifts) + BN + ReLU6. ReLU6 = min(max(x, 0), 6) keeps activations in a
    range that low-precision mobile arithmetic represents well."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """1x1 expand (t x channels) -> 3x3 depthwise -> 1x1 *linear* projection.

    'Inverted': ResNet's bottleneck is wide-narrow-wide; here the skip joins the narrow ends
    and the cheap depthwise conv runs in the wide middle. No ReLU after the projection: in a
    low-dimensional space ReLU destroys information (see relu_manifold.png).
    """

    def __init__(self, c_in, c_out, stride, t):
        super().__init__()
        # EXERCISE ir_layers: hidden = round(c_in * t); a skip only at stride 1 with c_in == c_out; [1x1 conv_bn_relu6 to hidden, unless t == 1] + 3x3 depthwise conv_bn_relu6 (groups=hidden, the stride) + a 1x1 conv to c_out with BN and NO activation, in self.conv
        hidden = int(round(c_in * t))
        self.use_skip = stride == 1 and c_in == c_out
        layers = [conv_bn_relu6(c_in, hidden, k=1)] if t != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),   # depthwise
                   nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.conv = nn.Sequential(*layers)
        # END EXERCISE

    def forward(self, x):
        # EXERCISE ir_forward: x + conv(x) when the block has a skip, else conv(x)
        return x + self.conv(x) if self.use_skip else self.conv(x)
        # END EXERCISE


class MobileNetV2(nn.Module):
    """Names and indices follow torchvision's, so its state_dict loads unchanged."""

    def __init__(self, width=1.0, n_classes=N_CLASSES):
        super().__init__()
        c = divisible(32 * width)
        last = divisible(1280 * max(1.0, width))   # the last layer never shrinks
        layers = [conv_bn_relu6(3, c, 3, stride=2)]
        for t, c_out, n, s in SETTINGS:
            c_out = divisible(c_out * width)
            for i in range(n):
                layers.append(InvertedResidual(c, c_out, s if i == 0 else 1, t))
                c = c_out
        layers.append(conv_bn_relu6(c, last, k=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(DROPOUT), nn.Linear(last, n_classes))

    def forward(self, x):
        x = self.features(x).mean(dim=(2, 3))     # global average pool: (B, 1280)
        return self.classifier(x)                 # (B, n_classes)


def depthwise_conv2d(x, w, stride=1, padding=0):
    """Each channel convolved with its own kernel: x (B, C, H, W), w (C, 1, kh, kw).
    Lesson 01's im2col lays out the patches with rows ordered (c, ki, kj); where a standard
    convolution multiplies them by a (C_out, C*kh*kw) matrix, a depthwise one only takes, per
    channel, the dot product of that channel's kh*kw rows with that channel's kernel."""
    # EXERCISE depthwise_conv2d: im2col viewed as (B, C, kh*kw, L), times each channel's flattened kernel, summed over the kh*kw axis, then reshaped to (B, C, OH, OW)
    B, C, H, W = x.shape
    _, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = conv.pair(stride), conv.pair(padding)
    cols = conv.im2col(x, kh, kw, stride, padding).view(B, C, kh * kw, -1)   # (B, C, kh*kw, L)
    y = (cols * w.reshape(1, C, kh * kw, 1)).sum(dim=2)                     # (B, C, L)
    return y.view(B, C, conv.out_size(H, kh, sh, ph), conv.out_size(W, kw, sw, pw))
    # END EXERCISE


def pointwise_conv2d(x, w):
    """A 1x1 convolution is a matrix multiply over channels at every pixel: w (C_out, C_in, 1, 1)."""
    return torch.einsum("oc,bchw->bohw", w[:, :, 0, 0], x)                 # (B, C_out, H, W)


def separable_conv2d(x, w_depth, w_point, stride=1, padding=0):
    """Depthwise (spatial filtering, per channel) then pointwise (mixing channels)."""
    return pointwise_conv2d(depthwise_conv2d(x, w_depth, stride, padding), w_point)


def separable_vs_reference():
    """The scratch pieces against torch, and the separable conv against the standard conv it
    equals: out[o] = sum_c P[o, c] (D[c] * x[c]) = sum_c (P[o, c] D[c]) * x[c], so its kernel
    is W[o, c, i, j] = P[o, c] D[c, i, j], a rank-one factorisation per (o, c) pair of maps."""
    x = torch.randn(2, SEP_C_IN, *SEP_HW, dtype=torch.float64)
    w_depth = torch.randn(SEP_C_IN, 1, *SEP_K, dtype=torch.float64)
    w_point = torch.randn(SEP_C_OUT, SEP_C_IN, 1, 1, dtype=torch.float64)
    tag = f"(C={SEP_C_IN}, {SEP_K[0]}x{SEP_K[1]} kernel, s={SEP_STRIDE}, p={SEP_PADDING})"
    depth = depthwise_conv2d(x, w_depth, SEP_STRIDE, SEP_PADDING)
    check.close(f"depthwise conv {tag} vs F.conv2d(groups=C)", depth,
                F.conv2d(x, w_depth, stride=SEP_STRIDE, padding=SEP_PADDING, groups=SEP_C_IN),
                atol=TOL)
    check.close(f"pointwise conv ({SEP_C_IN} -> {SEP_C_OUT} channels) vs F.conv2d 1x1",
                pointwise_conv2d(depth, w_point), F.conv2d(depth, w_point), atol=TOL)
    full = w_point[:, :, 0, 0, None, None] * w_depth[None, :, 0]       # (C_out, C_in, kh, kw)
    check.close(f"separable conv {tag} vs F.conv2d with the factorised kernel P[o,c] D[c]",
                separable_conv2d(x, w_depth, w_point, SEP_STRIDE, SEP_PADDING),
                F.conv2d(x, full, stride=SEP_STRIDE, padding=SEP_PADDING), atol=TOL)


def separable_cost():
    """Standard conv: k^2 C_in C_out weights. Depthwise (k^2 C_in) + pointwise (C_in C_out):
    ratio (k^2 C_in + C_in C_out) / (k^2 C_in C_out) = 1/C_out + 1/k^2. Each weight is used
    once per output pixel, so the multiply-adds have the same ratio."""
    for c_in, c_out, k in RATIO_CASES:
        standard = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)
        separable = nn.Sequential(nn.Conv2d(c_in, c_in, k, padding=k // 2, groups=c_in, bias=False),
                                  nn.Conv2d(c_in, c_out, 1, bias=False))
        formula = 1 / c_out + 1 / k ** 2
        tag = f"(C_in={c_in}, C_out={c_out}, k={k})"
        check.close(f"params ratio separable/standard {tag} vs 1/C_out + 1/k^2",
                    count(separable) / count(standard), formula, atol=1e-12)
        ratio = (flops(separable.to("meta"), 28, channels=c_in)
                 / flops(standard.to("meta"), 28, channels=c_in))
        check.close(f"FLOPs ratio (FlopCounterMode) {tag} vs formula", ratio, formula, atol=1e-12)


def wall_time(run):
    """FLOPs are not time: a depthwise conv does little work per byte it reads."""
    from dlcourse import device as devices
    x = torch.randn(2, 128, 56, 56, device=run.device)
    convs = {"standard 3x3": nn.Conv2d(128, 128, 3, padding=1, bias=False),
             "depthwise 3x3": nn.Conv2d(128, 128, 3, padding=1, groups=128, bias=False),
             "pointwise 1x1": nn.Conv2d(128, 128, 1, bias=False)}
    times = {}
    with torch.no_grad():
        for name, conv in convs.items():
            conv.to(run.device)(x)                            # warm-up
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                conv(x)
                devices.synchronize(run.device)
                best = min(best, time.perf_counter() - start)
            times[name] = best * 1e3
    sep = times["depthwise 3x3"] + times["pointwise 1x1"]
    print(f"    2x128x56x56 on {run.device}: standard {times['standard 3x3']:.1f} ms, depthwise "
          f"{times['depthwise 3x3']:.1f} + pointwise {times['pointwise 1x1']:.1f} ms: "
          f"{sep / times['standard 3x3']:.2f} of the time for {1 / 128 + 1 / 9:.2f} of the FLOPs")


def mac_shares(model, size=224):
    """Multiply-adds of pointwise (1x1), depthwise and other layers (lesson 05's layer table)."""
    shares = {"1x1 (pointwise)": 0, "3x3 depthwise": 0, "other (stem conv, classifier)": 0}
    modules = dict(model.named_modules())
    for name, _, _, macs in alexnet.layer_table(model, size):
        m = modules[name]
        key = ("other (stem conv, classifier)" if isinstance(m, nn.Linear) else
               "1x1 (pointwise)" if m.kernel_size == (1, 1) else
               "3x3 depthwise" if m.groups == m.in_channels > 1 else "other (stem conv, classifier)")
        shares[key] += macs
    return shares


def relu_manifold(run, seed):
    """After Sandler et al.'s Figure 1: a 2-D spiral embedded by a random matrix T into n dims,
    ReLU, then the best linear map back (least squares). In few dims ReLU zeroes whole
    directions and the spiral is lost; in many dims enough coordinates survive for every
    point and it comes back."""
    g = torch.Generator().manual_seed(seed)
    angle = torch.linspace(0, 4 * torch.pi, 400, dtype=torch.float64)
    spiral = torch.stack([angle * angle.cos(), angle * angle.sin()], 1) / 6     # (400, 2)
    fig, axes = plt.subplots(1, len(MANIFOLD_DIMS) + 1, figsize=(3 * (len(MANIFOLD_DIMS) + 1), 3))
    axes[0].scatter(*spiral.T, c=angle, s=3, cmap="viridis")
    axes[0].set_title("input (2-D)")
    errors = []
    for ax, n in zip(axes[1:], MANIFOLD_DIMS):
        T = torch.randn(2, n, generator=g, dtype=torch.float64)                  # embed
        h = torch.relu(spiral @ T)                                               # (400, n)
        h = torch.cat([h, torch.ones(len(h), 1, dtype=h.dtype)], 1)              # allow a shift
        back = h @ torch.linalg.lstsq(h, spiral).solution                        # (400, 2)
        errors.append(float((back - spiral).norm() / spiral.norm()))
        ax.scatter(*back.T, c=angle, s=3, cmap="viridis")
        ax.set_title(f"n = {n}: rel. error {errors[-1]:.2f}")
    for ax in axes:
        ax.set(xticks=[], yticks=[], aspect="equal")
    fig.suptitle("x -> ReLU(x T) -> best linear map back: ReLU in few dimensions loses the manifold", y=1.06)
    plot.save(fig, run, "relu_manifold.png")
    return errors


def figure_shares(run, shares):
    fig, ax = plt.subplots(figsize=(8, 1.8))
    left, total = 0, sum(shares.values())
    for (name, v), color in zip(shares.items(), ["tab:blue", "tab:orange", "tab:gray"]):
        ax.barh(0, v / total, left=left, color=color, label=f"{name}: {v / total:.1%}")
        left += v / total
    ax.set(xlim=(0, 1), yticks=[], title=f"MobileNetV2 multiply-adds at 224x224 ({total / 1e6:.0f} M in all)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, fontsize=8)
    plot.save(fig, run, "mac_shares.png")


def main(args) -> dict:
    run = cli.start(args, __file__)

    print("--- 1. a depthwise separable convolution from scratch, and its cost")
    separable_vs_reference()
    separable_cost()
    wall_time(run)

    print("--- 2. MobileNetV2 vs torchvision (meta device for the counts)")
    metrics = {}
    with torch.device("meta"):
        for width in WIDTHS + (() if run.quick else MORE_WIDTHS):
            ours, theirs = MobileNetV2(width), torchvision.models.mobilenet_v2(weights=None, width_mult=width)
            check.equal(f"parameters: scratch vs torchvision mobilenet_v2 (width {width})",
                        count(ours), count(theirs))
            metrics[f"params_width_{width}"] = count(ours)
    shares = mac_shares(MobileNetV2().to("meta"))
    print("    " + ", ".join(f"{k}: {v / sum(shares.values()):.1%}" for k, v in shares.items()))
    figure_shares(run, shares)

    tv = torchvision.models.mobilenet_v2(weights=None).to(run.device).eval()
    resnet.randomise_batchnorm(tv)                         # non-trivial BN (lesson 07)
    with torch.device("meta"):
        model = MobileNetV2()
    size = 96 if run.quick else 224
    x = torch.randn(2, 3, size, size, device=run.device)
    resnet.compare_with_reference(f"scratch MobileNetV2, {size}x{size} (same weights)",
                                  resnet.load_weights(model, tv), tv, x)

    print("--- 3. why the bottleneck is linear")
    errors = relu_manifold(run, run.seed)
    print("    relative reconstruction error by dimension: "
          + ", ".join(f"n={n}: {e:.2f}" for n, e in zip(MANIFOLD_DIMS, errors)))
    check.greater(f"relative error after ReLU in {MANIFOLD_DIMS[0]} dims (lost)", errors[0], 0.3)
    check.less(f"relative error after ReLU in {MANIFOLD_DIMS[-1]} dims (kept)", errors[-1], 0.05)
    metrics.update(pointwise_mac_share=shares["1x1 (pointwise)"] / sum(shares.values()),
                   relu_error_2d=errors[0], relu_error_30d=errors[-1])
    top = max(shares, key=shares.get)
    return cli.finish(run, metrics, answers={
        "most_macs": (top.split(" (")[0], ", ".join(f"{k}: {v / sum(shares.values()):.1%}"
                                                  for k, v in shares.items()) + " (mac_shares.png)"),
        "relu_survives": ({(True, True): "both", (True, False): "2 only", (False, True): "30 only",
                           (False, False): "neither"}[errors[0] < 0.05, errors[-1] < 0.05],
                              f"relative reconstruction error after ReLU: {errors[0]:.2f} in "
                              f"{MANIFOLD_DIMS[0]} dims, {errors[-1]:.2f} in {MANIFOLD_DIMS[-1]} "
                              "(relu_manifold.png)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 05.09`) before running it;
# `python -m dlcourse check 05.09` compares your answers with what the run measures.
# PREDICT most_macs (1x1 / 3x3 depthwise / other): which kind of layer does most of MobileNetV2's multiply-adds?
# ANSWER most_macs:
# PREDICT relu_survives (2 only / 30 only / both / neither): a 2-D spiral, embedded by a random matrix into n dims, through ReLU: for which n (2 or 30) can the best linear map bring it back (relative error under 0.05)?
# ANSWER relu_survives:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
