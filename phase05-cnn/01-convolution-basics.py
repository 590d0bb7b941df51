"""01 - Convolution from loops to im2col (phase 05, week 6)

Goal: write conv2d twice, as plain nested loops and as im2col + one matrix multiply, prove
      both equal F.conv2d across stride, padding, dilation and groups (with a non-square 3x2
      kernel and 4 -> 8 channels), and see what a few hand-made kernels do to a photo.
Run:  python phase05-cnn/01-convolution-basics.py            (more configurations; about 2 s on a 2-core CPU)
      python phase05-cnn/01-convolution-basics.py --quick    (seconds, offline, used by the tests)
Expect: "[check] im2col conv vs F.conv2d  s=(2, 1) p=(1, 0) d=(1, 2) g=1: max |diff| ~4e-15";
        the output-size formula matches F.conv2d's shape for every one of a few hundred
        settings; im2col runs several times slower than F.conv2d and thousands of times faster
        than the loops; figures kernels.png (edges, blur, stride, dilation) and im2col.png.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import time

import torch
import torch.nn.functional as F
from sklearn.datasets import load_sample_image

from dlcourse import check, data, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

# Settings compared with F.conv2d: (stride, padding, dilation, groups), ints or (h, w) pairs.
CONFIGS = [
    (1, 0, 1, 1),                  # the plain "valid" convolution
    (2, 1, 1, 1),                  # stride 2 with padding 1: the usual down-sampling conv
    (1, 2, 2, 1),                  # dilation 2: a 3x3 kernel that spans 5x5 pixels
    ((2, 1), (1, 0), (1, 2), 1),   # different settings for height and width catch H/W mix-ups
    (1, 1, 1, 2),                  # two groups: each filter sees half the input channels
    (1, 1, 1, 4),                  # groups == channels: a depthwise convolution (lesson 09)
]
MORE_CONFIGS = [(3, 2, 1, 1), ((1, 2), (2, 1), (2, 1), 2), (2, 1, 3, 4)]  # full run only
C_IN, C_OUT = 4, 8                 # channels of the comparison tensors: in != out, so a
                                   # transposed weight or a swapped channel axis cannot pass
KH, KW = 3, 2                      # a non-square kernel: a kernel-height/width mix-up fails
K = 3                              # the square 3x3 kernel of the speed comparison
LOOP_HW = (6, 7)                   # the loops are slow: tiny, non-square images only
IM2COL_HW = (13, 11)               # im2col is fast: a larger, odd, non-square image
TOL = 1e-10                        # float64 on both sides: only rounding differs
TIME_SHAPE = (8, 16, 32, 32)       # (B, C, H, W) for the speed comparison, 32 output channels


def pair(v):
    """An int means the same value for height and width, as in torch."""
    return (v, v) if isinstance(v, int) else tuple(v)


def out_size(n, k, stride=1, padding=0, dilation=1):
    """Output length along one axis.

    A dilated kernel spans d*(k-1)+1 input pixels; it slides over n+2p padded pixels in steps
    of s, so it fits floor((n + 2p - d(k-1) - 1) / s) + 1 times.
    """
    return (n + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def conv2d_loops(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Convolution (really cross-correlation, as in every DL library) by seven loops.

    y[n, o, i, j] = b[o] + sum_{c, ki, kj} x_pad[n, g*Cg + c, i*s + ki*d, j*s + kj*d] * w[o, c, ki, kj]
    where g = o // (O / groups) is the group of output channel o.
    """
    # EXERCISE conv2d_loops: pad x, then y[n, o, i, j] = b[o] + sum over (c, ki, kj) of x_pad[n, g*Cg + c, i*s + ki*d, j*s + kj*d] * w[o, c, ki, kj], g = o // (O / groups)
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    B, C, H, W = x.shape
    O, Cg, KH, KW = w.shape                     # Cg: input channels each filter sees
    assert C == Cg * groups and O % groups == 0, "channels must split evenly into groups"
    OH, OW = out_size(H, KH, sh, ph, dh), out_size(W, KW, sw, pw, dw)
    xp = F.pad(x, (pw, pw, ph, ph)).tolist()    # zero padding; plain Python floats from here
    wl, bl = w.tolist(), (b.tolist() if b is not None else [0.0] * O)
    per_group = O // groups
    y = [[[[0.0] * OW for _ in range(OH)] for _ in range(O)] for _ in range(B)]
    for n in range(B):
        for o in range(O):
            g = o // per_group
            for i in range(OH):
                for j in range(OW):
                    acc = bl[o]
                    for c in range(Cg):
                        for ki in range(KH):
                            for kj in range(KW):
                                acc += (xp[n][g * Cg + c][i * sh + ki * dh][j * sw + kj * dw]
                                        * wl[o][c][ki][kj])
                    y[n][o][i][j] = acc
    return torch.tensor(y, dtype=x.dtype)
    # END EXERCISE


def im2col(x, kh, kw, stride=1, padding=0, dilation=1):
    """Copy every receptive-field patch into a column: (B, C, H, W) -> (B, C*kh*kw, OH*OW).

    Loop over the kh*kw kernel offsets, not over the image: offset (ki, kj) sees the strided
    sub-image starting at (ki*d, kj*d). Row order (c, ki, kj) is the layout F.unfold uses.
    """
    # EXERCISE im2col: for each offset (ki, kj) slice the padded input from (ki*d, kj*d) with step s to (OH, OW); stack to (B, C, kh*kw, OH, OW), then flatten
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    B, C, H, W = x.shape
    OH, OW = out_size(H, kh, sh, ph, dh), out_size(W, kw, sw, pw, dw)
    xp = F.pad(x, (pw, pw, ph, ph))
    cols = []
    for ki in range(kh):
        for kj in range(kw):
            r, c = ki * dh, kj * dw
            cols.append(xp[:, :, r:r + sh * (OH - 1) + 1:sh, c:c + sw * (OW - 1) + 1:sw])  # (B, C, OH, OW)
    cols = torch.stack(cols, dim=2)              # (B, C, kh*kw, OH, OW)
    return cols.reshape(B, C * kh * kw, OH * OW)  # (B, C*kh*kw, L)
    # END EXERCISE


def conv2d_im2col(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Convolution as one batched matrix multiply: Y = W_flat @ im2col(X), per group."""
    # EXERCISE conv2d_im2col: view the columns as (B, G, Cg*KH*KW, L) and the weights as (G, O/G, Cg*KH*KW); multiply, reshape to (B, O, OH, OW), add the bias
    B, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    assert C == Cg * groups and O % groups == 0, "channels must split evenly into groups"
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    OH, OW = out_size(H, KH, sh, ph, dh), out_size(W, KW, sw, pw, dw)
    cols = im2col(x, KH, KW, stride, padding, dilation)       # (B, C*KH*KW, L)
    cols = cols.view(B, groups, Cg * KH * KW, OH * OW)        # rows are grouped by channel
    wg = w.reshape(groups, O // groups, Cg * KH * KW)         # (G, O/G, Cg*KH*KW)
    y = wg.unsqueeze(0) @ cols                                # (B, G, O/G, L)
    y = y.reshape(B, O, OH, OW)                               # (B, O, OH, OW)
    return y if b is None else y + b.view(1, O, 1, 1)
    # END EXERCISE


def compare_with_torch(configs):
    """Loops (tiny input) and im2col (larger input) against F.conv2d, in float64 on the CPU."""
    for stride, padding, dilation, groups in configs:
        tag = f" s={pair(stride)} p={pair(padding)} d={pair(dilation)} g={groups}"
        w = torch.randn(C_OUT, C_IN // groups, KH, KW, dtype=torch.float64)
        b = torch.randn(C_OUT, dtype=torch.float64)
        for name, fn, hw in [("loops", conv2d_loops, LOOP_HW), ("im2col", conv2d_im2col, IM2COL_HW)]:
            x = torch.randn(2, C_IN, *hw, dtype=torch.float64)
            ref = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
            check.close(f"{name} conv vs F.conv2d " + tag, fn(x, w, b, stride, padding, dilation, groups),
                        ref, atol=TOL)


def sweep_output_sizes(sizes):
    """The formula against the shapes F.conv2d produces, on the meta device (shapes, no maths)."""
    ours, theirs = [], []
    x_by_n = {n: torch.empty(1, 1, n, n, device="meta") for n in sizes}
    for n, x in x_by_n.items():
        for k in (1, 2, 3, 5):
            for s in (1, 2, 3):
                for p in (0, 1, 2):
                    for d in (1, 2, 3):
                        if d * (k - 1) + 1 > n + 2 * p:
                            continue                  # the kernel does not fit: torch raises
                        w = torch.empty(1, 1, k, k, device="meta")
                        ours.append(out_size(n, k, s, p, d))
                        theirs.append(F.conv2d(x, w, stride=s, padding=p, dilation=d).shape[-1])
    check.equal(f"output-size formula vs F.conv2d shapes ({len(ours)} settings)",
                torch.tensor(ours), torch.tensor(theirs))


def timed(fn, repeat=3):
    """Best of `repeat` runs, in milliseconds (the minimum is least disturbed by other work)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def speed(run):
    """Loops vs im2col vs F.conv2d; the loops are timed on a tiny input and scaled per output."""
    from dlcourse import device as devices
    B, C, H, W = TIME_SHAPE
    x = torch.randn(B, C, H, W, device=run.device)
    w = torch.randn(32, C, K, K, device=run.device)
    sync = lambda: devices.synchronize(run.device)  # noqa: E731 - GPU work is asynchronous
    t_im2col = timed(lambda: (conv2d_im2col(x, w, padding=1), sync()))
    t_torch = timed(lambda: (F.conv2d(x, w, padding=1), sync()))
    # The loops cost the same per multiply-add whatever the size: time a small case, scale up.
    xs, ws = x[:1, :4, :8, :8].cpu(), w[:4, :4].cpu()         # 1*4*8*8 outputs, 4*3*3 MACs each
    t_per_mac = timed(lambda: conv2d_loops(xs, ws, padding=1), repeat=1) / (4 * 8 * 8 * 4 * K * K)
    t_loops = t_per_mac * B * 32 * H * W * C * K * K           # MACs of the big convolution
    print(f"conv {TIME_SHAPE} -> 32 channels, 3x3: loops ~{t_loops:,.0f} ms (extrapolated), "
          f"im2col {t_im2col:.2f} ms, F.conv2d {t_torch:.2f} ms")
    # No check on timings: other programs on the machine make them noisy. Read them as sizes.
    return {"ms_loops_extrapolated": t_loops, "ms_im2col": t_im2col, "ms_torch": t_torch}


def figure_kernels(run):
    """Hand-made kernels applied to a photo with our im2col convolution."""
    photo = torch.tensor(load_sample_image("china.jpg"), dtype=torch.float32).mean(-1) / 255
    data.announce("scikit-learn's sample photo china.jpg (427x640, grayscale)", kind="bundled")
    img = photo[::3, ::3][None, None].to(run.device)            # (1, 1, 143, 214)
    sobel_x = torch.tensor([[-1., 0., 1.], [-2., 0., 2.], [-1., 0., 1.]])
    kernels = {"Sobel x (vertical edges)": sobel_x, "Sobel y (horizontal edges)": sobel_x.T,
               "box blur 7x7": torch.full((7, 7), 1 / 49),
               "Laplacian": torch.tensor([[0., 1., 0.], [1., -4., 1.], [0., 1., 0.]])}
    panels = [("input", img)]
    for name, k in kernels.items():
        panels.append((name, conv2d_im2col(img, k[None, None].to(run.device), padding=k.shape[-1] // 2)))
    sx = sobel_x[None, None].to(run.device)                     # (1, 1, 3, 3)
    panels.append(("Sobel x, stride 4", conv2d_im2col(img, sx, stride=4)))
    panels.append(("Sobel x, dilation 4", conv2d_im2col(img, sx, padding=4, dilation=4)))
    fig, axes = plt.subplots(2, 4, figsize=(14, 5.6))
    last = axes.flat[-1]                                        # the kernel itself, with numbers
    last.imshow(sobel_x, cmap="RdBu_r", vmin=-2, vmax=2)
    for (i, j), v in zip([(i, j) for i in range(3) for j in range(3)], sobel_x.flatten().tolist()):
        last.text(j, i, f"{v:+.0f}", ha="center", va="center")
    last.set_title("the Sobel x kernel", fontsize=9)
    last.axis("off")
    for ax, (name, y) in zip(axes.flat, panels):
        y = y[0, 0].cpu()
        signed = name != "input" and not name.startswith("box")
        lim = float(y.abs().quantile(0.99)) if signed else None
        ax.imshow(y, cmap="RdBu_r" if signed else "gray", vmin=-lim if signed else None, vmax=lim)
        ax.set_title(f"{name}\n{tuple(y.shape)}", fontsize=9)
        ax.axis("off")
    fig.suptitle("conv2d_im2col with hand-made kernels (red +, blue -; output shape under each title).\n"
                 "The lines along the borders are zero padding meeting a bright image: an edge.")
    plot.save(fig, run, "kernels.png")
    return {name: tuple(y.shape[-2:]) for name, y in panels}


def figure_im2col(run):
    """The im2col matrix of a numbered 4x5 image: every column is one flattened 3x3 patch."""
    x = torch.arange(1, 21, dtype=torch.float32).view(1, 1, 4, 5)
    cols = im2col(x, 3, 3, padding=1)[0]                      # (9, 20): zero padding shows as 0
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(13, 3.6), gridspec_kw={"width_ratios": [1, 3.6]})
    a0.imshow(x[0, 0] * 0, cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in zip([(i, j) for i in range(4) for j in range(5)], x.flatten().tolist()):
        a0.text(j, i, int(v), ha="center", va="center")
    a0.set(title="input 4x5 (pixel numbers)", xticks=[], yticks=[])
    a1.imshow(cols > 0, cmap="Blues", vmin=0, vmax=2.5, aspect="auto")
    for i in range(cols.shape[0]):
        for j in range(cols.shape[1]):
            a1.text(j, i, int(cols[i, j]), ha="center", va="center", fontsize=8)
    a1.set(title="im2col, 3x3 kernel, padding 1: one column per output pixel (0 = padding)",
           xlabel="output position (row-major)", ylabel="kernel offset (ki, kj)", xticks=range(20),
           yticks=range(9), yticklabels=[f"({i},{j})" for i in range(3) for j in range(3)])
    plot.save(fig, run, "im2col.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    configs = CONFIGS + ([] if run.quick else MORE_CONFIGS)

    print("--- 1. the output-size formula: floor((n + 2p - d(k-1) - 1) / s) + 1")
    sweep_output_sizes((5, 8) if run.quick else range(4, 12))

    print("--- 2. im2col is F.unfold, written out")
    x = torch.randn(2, C_IN, *IM2COL_HW, dtype=torch.float64)
    check.equal(f"our im2col vs F.unfold ({KH}x{KW} kernel, s=(2, 1), p=(1, 0), d=(2, 1))",
                im2col(x, KH, KW, (2, 1), (1, 0), (2, 1)),
                F.unfold(x, (KH, KW), dilation=(2, 1), padding=(1, 0), stride=(2, 1)))

    print(f"--- 3. loops and im2col vs F.conv2d over {len(configs)} settings (float64, CPU)")
    compare_with_torch(configs)

    print("--- 4. autograd through im2col gives torch's input gradient (the 'transposed conv')")
    x = torch.randn(2, C_IN, *IM2COL_HW, dtype=torch.float64, requires_grad=True)
    w = torch.randn(C_OUT, C_IN // 2, KH, KW, dtype=torch.float64)
    g_out = torch.randn(2, C_OUT, 7, 6, dtype=torch.float64)      # the shape for s=2, p=1, d=1
    ours, = torch.autograd.grad(conv2d_im2col(x, w, stride=2, padding=1, groups=2), x, g_out)
    ref, = torch.autograd.grad(F.conv2d(x, w, stride=2, padding=1, groups=2), x, g_out)
    check.close(f"d(conv)/dx: im2col vs F.conv2d ({KH}x{KW} kernel, s=2, p=1, g=2)", ours, ref,
                atol=TOL)

    print("--- 5. speed")
    metrics = speed(run)
    shapes = figure_kernels(run)
    figure_im2col(run)
    metrics["configs_compared"] = len(configs)
    rows_in, rows_s4 = shapes["input"][0], shapes["Sobel x, stride 4"][0]
    rows_d4 = shapes["Sobel x, dilation 4"][0]
    return cli.finish(run, metrics, answers={
        "stride4_rows": (str(rows_s4), f"the {rows_in}-row photo through Sobel x with stride 4, no "
                         f"padding: {rows_s4} rows = floor(({rows_in} - 3) / 4) + 1 (kernels.png)"),
        "dilation4_rows": (str(rows_d4), f"dilation 4 spreads the 3x3 kernel over 4 * 2 + 1 = 9 "
                           f"pixels, padding 4 adds 8: {rows_in} rows in, {rows_d4} out (kernels.png)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 05.01`) before running it;
# `python -m dlcourse check 05.01` compares your answers with what the run measures.
# PREDICT stride4_rows (35 / 36 / 143): a 3x3 Sobel kernel, stride 4, no padding, on the 143-row photo: how many output rows?
# ANSWER stride4_rows:
# PREDICT dilation4_rows (135 / 143 / 151): the same kernel with dilation 4 and padding 4 (stride 1): how many output rows?
# ANSWER dilation4_rows:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
