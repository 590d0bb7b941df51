"""03 - Receptive fields, analytic and measured (phase 05, week 6)

Goal: compute the receptive field of a conv stack with the layer-by-layer recurrence,
      measure its size, jump and centre with input gradients, and see that the *effective*
      receptive field of a random network is a blob much smaller than the theoretical box.
Run:  python phase05-cnn/03-receptive-field.py            (more random inputs and depths for the blob; about 7 s on a 2-core CPU)
      python phase05-cnn/03-receptive-field.py --quick    (seconds, offline, used by the tests)
Expect: "[check] analytic vs measured RF size, every depth: ..." equal for all five stacks
        (ResNet stem + layer1 sees 43x43 pixels, five stride-2 or dilated 3x3 layers 63x63),
        and likewise the jump (measured as the shift between two neighbouring units' fields)
        and the centre; growth.png: linear growth for plain 3x3 stacks, exponential with stride
        or dilation; erf.png: the gradient blob holds 90% of the gradient in ~84% of a 2-layer
        field but only ~13% of a 32-layer one (quick: ~24% of an 18-layer one).
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import torch
import torch.nn as nn

from dlcourse import check, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

# Stacks of (kind, kernel, stride, padding, dilation). Channels do not change a receptive field.
STACKS = {
    "plain 3x3": [("conv", 3, 1, 1, 1)] * 8,
    "VGG-style 3x3 + pool": [("conv", 3, 1, 1, 1)] * 2 + [("pool", 2, 2, 0, 1)]
                            + [("conv", 3, 1, 1, 1)] * 2 + [("pool", 2, 2, 0, 1)]
                            + [("conv", 3, 1, 1, 1)] * 3,
    "ResNet stem + layer1": [("conv", 7, 2, 3, 1), ("pool", 3, 2, 1, 1)] + [("conv", 3, 1, 1, 1)] * 4,
    "3x3 stride 2": [("conv", 3, 2, 1, 1)] * 5,
    "3x3 dilation 1,2,4,8,16": [("conv", 3, 1, d, d) for d in (1, 2, 4, 8, 16)],
}
ERF_DEPTHS = (2, 6, 18)             # plain 3x3 stacks whose effective field we measure
ERF_DEPTHS_FULL = (2, 4, 8, 16, 32)
ERF_CHANNELS = 16                   # width of the random networks for the effective field
ERF_INPUTS = 4                      # random inputs averaged for the blob (full run: x4)


def analytic_rf(layers):
    """Per layer: (rf size r, jump j, centre c of output unit 0's field, in input pixels).

    A dilated kernel spans k_eff = d(k-1)+1 inputs of the previous layer, which sit j apart
    in input pixels, so
        r_l = r_{l-1} + (k_eff - 1) * j_{l-1}     j_l = j_{l-1} * s_l
        c_l = c_{l-1} + ((k_eff - 1)/2 - p_l) * j_{l-1}
    starting from a single pixel: r_0 = 1, j_0 = 1, c_0 = 0.
    """
    # EXERCISE analytic_rf: start at r = 1, j = 1, c = 0; per layer k_eff = d(k-1)+1, then update r and c with the OLD jump j, then j *= s; append (r, j, c)
    r, j, c, out = 1, 1, 0.0, []
    for _, k, s, p, d in layers:
        k_eff = d * (k - 1) + 1
        r, c, j = r + (k_eff - 1) * j, c + ((k_eff - 1) / 2 - p) * j, j * s
        out.append((r, j, c))
    return out
    # END EXERCISE


def build(layers, channels=1, measure=True):
    """The stack as nn layers. measure=True: all-positive linear layers (conv weights 1/(k*k),
    avg pools), so every pixel that can reach the unit gets a positive gradient; no ReLU
    dead zones and no max-pool routing hide part of the field. measure=False: a random
    ReLU network with max pools, the kind we actually train."""
    mods = []
    for kind, k, s, p, d in layers:
        if kind == "pool":
            mods.append(nn.AvgPool2d(k, s, p) if measure else nn.MaxPool2d(k, s, p, dilation=d))
            continue
        conv = nn.Conv2d(channels, channels, k, s, p, dilation=d, bias=not measure)
        if measure:
            nn.init.constant_(conv.weight, 1.0 / (k * k))
            mods.append(conv)
        else:
            mods += [conv, nn.ReLU()]
    return nn.Sequential(*mods)


def input_gradient(net, size, channels, device, n_inputs=1, shift=0):
    """|d out[unit] / d input|, summed over channels and averaged over random inputs, for the
    unit `shift` rows and columns below-right of the map's centre."""
    x = torch.randn(n_inputs, channels, size, size, device=device, requires_grad=True)
    y = net(x)                                            # (N, C, OH, OW)
    i, jj = y.shape[-2] // 2 + shift, y.shape[-1] // 2 + shift   # far from every border
    y[:, :, i, jj].sum().backward()
    return x.grad.abs().sum(dim=1).mean(dim=0), (i, jj)  # (size, size)


def measured_rf(layers, device):
    """(size rows, size cols, jump rows, jump cols, centre offset rows, cols) of the region with
    non-zero gradient, measured for the centre unit and its lower-right neighbour: the jump is
    how far the field moves from one to the other, the centre offset where unit 0's would be."""
    r, j, _ = analytic_rf(layers)[-1]
    size = 3 * r + 4 * j                                 # room on every side: nothing is clipped
    net = build(layers).to(device)   # float32 is plenty: the smallest gradient here is ~(1/9)^11
    fields = []
    for shift in (0, 1):
        g, (i, jj) = input_gradient(net, size, 1, device, shift=shift)
        rows = torch.nonzero(g.sum(dim=1) > 0).flatten().cpu()
        cols = torch.nonzero(g.sum(dim=0) > 0).flatten().cpu()
        fields.append((int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1),
                       float(rows[0] + rows[-1]) / 2, float(cols[0] + cols[-1]) / 2, i, jj))
    (h, w, cy, cx, i, jj), (_, _, cy1, cx1, _, _) = fields
    jump_y, jump_x = cy1 - cy, cx1 - cx                  # measured, not taken from the recurrence
    return h, w, jump_y, jump_x, cy - i * jump_y, cx - jj * jump_x


def figure_growth(run, results):
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for (name, (analytic, measured)), style in zip(results.items(), ["-", "-", "-", "-", ":"]):
        depth = range(1, len(analytic) + 1)
        line, = ax.plot(depth, analytic, style, lw=2, label=f"{name} (line: analytic)")
        ax.plot(depth, measured, "o", color=line.get_color(), mfc="none", ms=8)
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(plt.ScalarFormatter())
    ax.set(xlabel="layers", ylabel="receptive field (pixels)",
           title="receptive-field growth; circles: measured from input gradients\n"
                 "(the stride-2 and the dilated stacks grow identically)")
    ax.legend(fontsize=8)
    plot.save(fig, run, "growth.png")


def effective_rf(depth, n_inputs, device):
    """Gradient blob of a random ReLU net of `depth` 3x3 convs, and the share of the analytic
    field that holds 90 % of the gradient (smallest set of pixels)."""
    layers = [("conv", 3, 1, 1, 1)] * depth
    r, j, c = analytic_rf(layers)[-1]
    net = build(layers, ERF_CHANNELS, measure=False).to(device)
    g, (i, _) = input_gradient(net, 2 * r + 1, ERF_CHANNELS, device, n_inputs)
    lo = int(c + i * j - (r - 1) / 2)                    # the analytic box of the centre unit
    outside = g.clone()
    outside[lo:lo + r, lo:lo + r] = 0
    flat = g.flatten().sort(descending=True).values
    k90 = int((flat.cumsum(0) < 0.9 * flat.sum()).sum()) + 1
    return g.cpu(), lo, r, float(outside.sum()), k90 / (r * r)


def figure_erf(run, erfs):
    fig, axes = plt.subplots(1, len(erfs), figsize=(3.4 * len(erfs), 3.6))
    for ax, (depth, (g, lo, r, _, share)) in zip(axes, erfs.items()):
        ax.imshow(g / g.max(), cmap="magma")
        ax.add_patch(plt.Rectangle((lo - 0.5, lo - 0.5), r, r, fill=False, color="c", lw=1.5))
        ax.set_title(f"{depth} layers: field {r}x{r} (cyan)\n90% of gradient in {share:.0%} of it",
                     fontsize=9)
        ax.axis("off")
    fig.suptitle("effective receptive field of random 3x3 ReLU stacks: |d centre unit / d input|")
    plot.save(fig, run, "erf.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    results, metrics = {}, {}

    print("--- 1. analytic (recurrence) vs measured (non-zero input gradient), after every layer")
    for name, layers in STACKS.items():
        analytic = analytic_rf(layers)
        measured = [measured_rf(layers[:n], run.device) for n in range(1, len(layers) + 1)]
        sizes_a = [r for r, _, _ in analytic]
        check.equal(f"analytic vs measured RF size, every depth: {name}",
                    torch.tensor([[r, r] for r in sizes_a]), torch.tensor([m[:2] for m in measured]))
        check.equal(f"analytic vs measured jump (field shift per output unit): {name}",
                    torch.tensor([[j, j] for _, j, _ in analytic], dtype=torch.float64),
                    torch.tensor([m[2:4] for m in measured], dtype=torch.float64))
        check.close(f"analytic vs measured RF centre offset: {name}",
                    torch.tensor([[c, c] for _, _, c in analytic]),
                    torch.tensor([m[4:] for m in measured]), atol=0)
        r, j, _ = analytic[-1]
        print(f"    {name}: {len(layers)} layers, field {r}x{r} pixels, jump {j}")
        results[name] = (sizes_a, [m[0] for m in measured])
        metrics[f"rf_{name.split()[0].lower()}_{name.split()[1].lower()}"] = r
    figure_growth(run, results)

    print("--- 2. the effective receptive field of random ReLU stacks (Luo et al., 2016)")
    depths = ERF_DEPTHS if run.quick else ERF_DEPTHS_FULL
    n_inputs = ERF_INPUTS if run.quick else 4 * ERF_INPUTS
    erfs = {d: effective_rf(d, n_inputs, run.device) for d in depths}
    for d, (_, _, r, outside, share) in erfs.items():
        check.equal(f"gradient outside the analytic {r}x{r} field ({d} layers)", outside, 0.0)
        print(f"    {d:2d} layers: 90% of the gradient sits in {share:.0%} of the field")
        metrics[f"erf_share_{d}"] = share
    # The field grows like depth, the gradient blob only like sqrt(depth): its share shrinks.
    check.less(f"ERF share at {depths[-1]} layers < at {depths[0]} layers",
               erfs[depths[-1]][-1], erfs[depths[0]][-1])
    figure_erf(run, erfs)
    dil = "3x3 dilation 1,2,4,8,16"
    r_dil = results[dil][1][-1]                                   # measured, last layer
    first, last = erfs[depths[0]][-1], erfs[depths[-1]][-1]
    trend = "grows" if last > 1.1 * first else "shrinks" if last < first / 1.1 else "stays the same"
    return cli.finish(run, metrics, answers={
        "dilated_rf": (str(r_dil), f"measured field of the {dil} stack: {r_dil}x{r_dil} = "
                       "1 + 2 (1 + 2 + 4 + 8 + 16) (growth.png)"),
        "erf_share": (trend, f"90% of the gradient in {first:.0%} of the field at {depths[0]} "
                      f"layers, {last:.0%} at {depths[-1]} (erf.png)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 05.03`) before running it;
# `python -m dlcourse check 05.03` compares your answers with what the run measures.
# PREDICT dilated_rf (11 / 63 / 121): five 3x3 convolutions with dilations 1, 2, 4, 8, 16 (stride 1): how many input pixels wide is the last layer's receptive field?
# ANSWER dilated_rf:
# PREDICT erf_share (grows / shrinks / stays the same): in random 3x3 ReLU stacks, as depth grows, what happens to the share of the receptive field that holds 90% of the gradient?
# ANSWER erf_share:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
