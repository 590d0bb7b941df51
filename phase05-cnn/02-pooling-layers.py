"""02 - Pooling layers (phase 05, week 6)

Goal: write max, average, global and adaptive pooling from scratch (loops first, then
      unfold), check each against torch, including max-pool's indices and gradient, and see
      what pooling keeps of a photo.
Run:  python phase05-cnn/02-pooling-layers.py            (more settings; about 2 s on a 2-core CPU)
      python phase05-cnn/02-pooling-layers.py --quick    (seconds, offline, used by the tests)
Expect: every "[check] ... vs F.max_pool2d/avg_pool2d/adaptive_*" line shows max |diff| 0 or
        ~1e-16; pooled.png shows max pooling keeping bright details that averaging blurs, and
        adaptive.png shows the overlapping bins adaptive pooling uses for 7x10 -> 3x4.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import math

import torch
import torch.nn.functional as F
from sklearn.datasets import load_sample_image

from dlcourse import check, data, lessons, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

# Window settings compared with torch: (kernel, stride, padding, ceil_mode).
CONFIGS = [
    (2, 2, 0, False),      # the classic 2x2 / stride 2 halving
    (3, 2, 1, False),      # overlapping windows with padding (ResNet's stem max-pool)
    (3, 2, 0, True),       # ceil_mode keeps a last, partial window (GoogLeNet's pools)
    (2, 3, 1, True),       # ceil_mode where torch drops a window that would start in the
                           # right padding: W = 11 gives 4 outputs, not 5 (out_size's rule)
]
MORE_CONFIGS = [(3, 1, 1, False), (4, 3, 2, True), (5, 2, 2, False)]  # full run only
ADAPTIVE = [((7, 10), (3, 4)), ((5, 5), (3, 3)), ((4, 6), (6, 4))]  # (input HW, output HW)
SHAPE = (2, 3, 9, 11)      # (B, C, H, W): odd, non-square, so H/W mix-ups show
TOL = 1e-12                # float64: averaging only reorders additions

conv = lessons.load("05.01")   # lesson 01: the output-size formula, im2col


def out_size(n, k, s, p, ceil_mode=False):
    """Pooling output length: lesson 01's convolution formula (a window is a kernel without
    weights). ceil_mode rounds up instead, but a window may not start in the right padding."""
    if not ceil_mode:
        return conv.out_size(n, k, s, p)
    out = math.ceil((n + 2 * p - k) / s) + 1
    if (out - 1) * s >= n + p:
        out -= 1                       # torch's rule: the last window must start inside the input
    return out


def pool2d_loops(x, k, s, p, mode):
    """Max or average pooling by plain loops over every output pixel (tiny inputs only).

    Padding never wins a max (it counts as -inf) and, as torch's default
    count_include_pad=True does, counts as zeros in the average.
    """
    # EXERCISE pool2d_loops: output pixel (i, j) pools the real pixels of rows i*s - p .. i*s - p + k - 1 (same for columns): their max, or their sum / (k*k)
    B, C, H, W = x.shape
    OH, OW = out_size(H, k, s, p), out_size(W, k, s, p)
    xl = x.tolist()
    y = torch.empty(B, C, OH, OW, dtype=x.dtype)
    for n in range(B):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    window = [xl[n][c][r][q]
                              for r in range(i * s - p, i * s - p + k) if 0 <= r < H
                              for q in range(j * s - p, j * s - p + k) if 0 <= q < W]
                    y[n, c, i, j] = max(window) if mode == "max" else sum(window) / (k * k)
    return y
    # END EXERCISE


def windows(x, k, s, p, ceil_mode, fill):
    """Every pooling window as a row of k*k values: (B, C, H, W) -> (B, C, k*k, OH, OW).

    F.unfold is lesson 01's im2col. ceil_mode may need extra padding on the bottom/right so
    that the last partial window exists; it is filled with `fill` like the normal padding.
    """
    B, C, H, W = x.shape
    OH, OW = out_size(H, k, s, p, ceil_mode), out_size(W, k, s, p, ceil_mode)
    extra_h = max(0, (OH - 1) * s + k - (H + 2 * p))
    extra_w = max(0, (OW - 1) * s + k - (W + 2 * p))
    xp = F.pad(x, (p, p + extra_w, p, p + extra_h), value=fill)
    cols = F.unfold(xp.reshape(B * C, 1, *xp.shape[-2:]), k, stride=s)   # (B*C, k*k, OH*OW)
    return cols.reshape(B, C, k * k, OH, OW)


def max_pool2d(x, k, s, p=0, ceil_mode=False):
    """Max over each window, plus torch-style indices: the flat position h*W + w in the input."""
    # EXERCISE max_pool2d: max over windows(..., fill=-inf) along dim 2; the winner's cell a gives (a // k, a % k), so its input row is i*s - p + a // k; index = row * W + col
    B, C, H, W = x.shape
    win = windows(x, k, s, p, ceil_mode, fill=float("-inf"))      # (B, C, k*k, OH, OW)
    y, arg = win.max(dim=2)                                        # arg: which of the k*k cells
    OH, OW = y.shape[-2:]
    ki, kj = arg // k, arg % k                                     # offset inside the window
    rows = torch.arange(OH, device=x.device).view(OH, 1) * s - p + ki               # (B, C, OH, OW) input row
    cols = torch.arange(OW, device=x.device).view(1, OW) * s - p + kj               # (B, C, OH, OW) input col
    return y, rows * W + cols
    # END EXERCISE


def avg_pool2d(x, k, s, p=0, count_include_pad=True):
    """Mean over each window. count_include_pad=False divides by the real pixels only,
    which we count by pooling a tensor of ones padded with zeros."""
    total = windows(x, k, s, p, False, fill=0.0).sum(dim=2)       # (B, C, OH, OW)
    if count_include_pad:
        return total / (k * k)
    ones = torch.ones(1, 1, *x.shape[-2:], dtype=x.dtype, device=x.device)
    return total / windows(ones, k, s, p, False, fill=0.0).sum(dim=2)


def adaptive_bins(n_in, n_out):
    """Bin i covers [floor(i*n_in/n_out), ceil((i+1)*n_in/n_out)): bins may overlap or differ in size."""
    # EXERCISE adaptive_bins: a list of n_out (start, end) pairs, start = floor(i n_in / n_out), end = ceil((i + 1) n_in / n_out), in integer arithmetic
    return [(i * n_in // n_out, -(-(i + 1) * n_in // n_out)) for i in range(n_out)]
    # END EXERCISE


def adaptive_pool2d(x, out_hw, mode):
    """Adaptive pooling: you choose the output size, the bins follow. One loop per output cell."""
    (OH, OW), (H, W) = out_hw, x.shape[-2:]
    reduce = (lambda t: t.amax(dim=(-2, -1))) if mode == "max" else (lambda t: t.mean(dim=(-2, -1)))
    rows = [torch.stack([reduce(x[..., r0:r1, c0:c1]) for c0, c1 in adaptive_bins(W, OW)], -1)
            for r0, r1 in adaptive_bins(H, OH)]                   # OH tensors of (B, C, OW)
    return torch.stack(rows, dim=-2)                               # (B, C, OH, OW)


def compare_with_torch(configs):
    x = torch.randn(*SHAPE, dtype=torch.float64)
    tiny = x[:1, :2, :6, :7]
    for k, s, p, ceil_mode in configs:
        tag = f" k={k} s={s} p={p}" + (" ceil" if ceil_mode else "")
        if not ceil_mode:                                          # the loops skip ceil_mode
            check.close("loops max vs F.max_pool2d" + tag, pool2d_loops(tiny, k, s, p, "max"),
                        F.max_pool2d(tiny, k, s, p), atol=0)
            check.close("loops avg vs F.avg_pool2d" + tag, pool2d_loops(tiny, k, s, p, "avg"),
                        F.avg_pool2d(tiny, k, s, p), atol=TOL)
        ours, idx = max_pool2d(x, k, s, p, ceil_mode)
        ref, ref_idx = F.max_pool2d(x, k, s, p, ceil_mode=ceil_mode, return_indices=True)
        check.close("max_pool2d vs F.max_pool2d" + tag, ours, ref, atol=0)
        check.equal("max_pool2d indices vs torch's" + tag, idx, ref_idx)
        if not ceil_mode:
            for include in (True, False):
                check.close(f"avg_pool2d vs F.avg_pool2d count_include_pad={include}" + tag,
                            avg_pool2d(x, k, s, p, include),
                            F.avg_pool2d(x, k, s, p, count_include_pad=include), atol=TOL)


def figure_pooled(run, photo):
    fig, axes = plt.subplots(2, 4, figsize=(14, 5.4))
    img = photo[None, None].to(run.device)                        # (1, 1, H, W)
    for col, k in enumerate((1, 4, 8, 16)):
        for row, (name, pooled) in enumerate([("max", max_pool2d(img.cpu(), k, k)[0]),
                                              ("avg", avg_pool2d(img.cpu(), k, k))]):
            ax = axes[row, col]
            ax.imshow(pooled[0, 0].cpu(), cmap="gray", vmin=0, vmax=1)
            ax.set_title("input" if k == 1 else f"{name} pool {k}x{k} -> {tuple(pooled.shape[-2:])}",
                         fontsize=9)
            ax.axis("off")
    fig.suptitle("max pooling keeps each window's brightest pixel, so bright regions grow; "
                 "average pooling blurs")
    plot.save(fig, run, "pooled.png")


def figure_adaptive(run):
    (H, W), (OH, OW) = ADAPTIVE[0]
    x = torch.arange(H * W, dtype=torch.float64).view(1, 1, H, W)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    axes[0].imshow(torch.zeros(H, W), cmap="Greys", vmin=0, vmax=1)
    for i in range(H):
        for j in range(W):
            axes[0].text(j, i, int(x[0, 0, i, j]), ha="center", va="center", fontsize=8)
    rows, cols = adaptive_bins(H, OH), adaptive_bins(W, OW)
    for (i, j), color in zip([(0, 0), (0, 1), (1, 1)], ["tab:red", "tab:blue", "tab:green"]):
        (r0, r1), (c0, c1) = rows[i], cols[j]                     # overlaps mix the colours
        axes[0].add_patch(plt.Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, color=color,
                                        alpha=0.3, label=f"bin ({i},{j}): rows {r0}:{r1}, cols {c0}:{c1}"))
    axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.05), fontsize=8, ncol=1)
    axes[0].set(title=f"three of the {OH}x{OW} adaptive bins on a {H}x{W} input: they overlap",
                xticks=[], yticks=[])
    out = adaptive_pool2d(x, (OH, OW), "avg")[0, 0]
    axes[1].imshow(out, cmap="viridis")
    for i in range(OH):
        for j in range(OW):
            axes[1].text(j, i, f"{out[i, j]:.1f}", ha="center", va="center", color="w")
    axes[1].set(title="adaptive avg of x = arange(70).view(7, 10)", xticks=[], yticks=[])
    plot.save(fig, run, "adaptive.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    configs = CONFIGS + ([] if run.quick else MORE_CONFIGS)

    print(f"--- 1. windowed pooling vs torch over {len(configs)} settings (float64, CPU)")
    compare_with_torch(configs)

    print("--- 2. the gradient of max pooling goes only to each window's winner")
    x = torch.randn(*SHAPE, dtype=torch.float64, requires_grad=True)
    g = torch.randn(SHAPE[0], SHAPE[1], 5, 6, dtype=torch.float64)   # output shape for k=3 s=2 p=1
    ours, = torch.autograd.grad(max_pool2d(x, 3, 2, 1)[0], x, g)
    ref, = torch.autograd.grad(F.max_pool2d(x, 3, 2, 1), x, g)
    check.close("d(max_pool2d)/dx vs torch's (k=3 s=2 p=1)", ours, ref, atol=TOL)
    frac = float((ours != 0).double().mean())
    print(f"    only {frac:.0%} of the input pixels get any gradient")

    print("--- 3. global and adaptive pooling")
    x = torch.randn(*SHAPE, dtype=torch.float64)
    check.close("global avg (mean over H, W) vs F.adaptive_avg_pool2d(x, 1)",
                x.mean(dim=(2, 3), keepdim=True), F.adaptive_avg_pool2d(x, 1), atol=TOL)
    check.close("global max vs F.adaptive_max_pool2d(x, 1)", x.amax(dim=(2, 3), keepdim=True),
                F.adaptive_max_pool2d(x, 1), atol=0)
    for hw, out_hw in ADAPTIVE if not run.quick else ADAPTIVE[:2]:
        xa = torch.randn(2, 3, *hw, dtype=torch.float64)
        check.close(f"adaptive avg {hw} -> {out_hw} vs torch", adaptive_pool2d(xa, out_hw, "avg"),
                    F.adaptive_avg_pool2d(xa, out_hw), atol=TOL)
        check.close(f"adaptive max {hw} -> {out_hw} vs torch", adaptive_pool2d(xa, out_hw, "max"),
                    F.adaptive_max_pool2d(xa, out_hw), atol=0)

    photo = torch.tensor(load_sample_image("flower.jpg"), dtype=torch.float32).mean(-1) / 255
    data.announce("scikit-learn's sample photo flower.jpg (427x640, grayscale)", kind="bundled")
    figure_pooled(run, photo[::2, ::2])                            # (214, 320)
    figure_adaptive(run)
    bins = adaptive_bins(10, 4)
    shared = [(a, b) for a, b in zip(bins, bins[1:]) if b[0] < a[1]]
    return cli.finish(run, {"configs_compared": len(configs)}, answers={
        "grad_fraction": ("under 34%" if frac < 0.34 else "34% to 67%" if frac < 0.67 else "over 67%",
                          f"{frac:.0%} of the {SHAPE[2]}x{SHAPE[3]} input pixels get a gradient: "
                          "one winner per 3x3 window, 5x6 windows (section 2 of the output)"),
        "adaptive_overlap": ("yes" if shared else "no",
                             f"adaptive_bins(10, 4) = {bins}: {len(shared)} neighbouring pair(s) "
                             "share a column (adaptive.png shows the same on 7x10 -> 3x4)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 05.02`) before running it;
# `python -m dlcourse check 05.02` compares your answers with what the run measures.
# PREDICT grad_fraction (under 34% / 34% to 67% / over 67%): max pooling 3x3, stride 2, padding 1 on a random 9x11 input: what fraction of the input pixels get a nonzero gradient?
# ANSWER grad_fraction:
# PREDICT adaptive_overlap (yes / no): adaptive pooling of 10 columns into 4 bins: do any two neighbouring bins share a column?
# ANSWER adaptive_overlap:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
