"""06 - Matplotlib basics: the four plots and saving headless (phase 01, week 1)

Goal: draw the four everyday plots (line, scatter, histogram, bar) with the object-oriented
      API, label them properly, save PNGs without a display, and read the files back.
Run:  python phase01-python-ds/06-matplotlib-basics.py            (about 6 s on a 2-core CPU)
      python phase01-python-ds/06-matplotlib-basics.py --quick    (seconds, offline, used by the tests)
Expect: four_plots.png (loss curves, two clusters, a histogram with its density, HTTP status
        counts); "[check] drawn histogram counts == a manual recount ... OK"; size_*.png exactly
        figsize x dpi pixels.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import math

import matplotlib
import numpy as np

from dlcourse import check, data, plot

import matplotlib.image as mpimg  # after dlcourse.plot, which selects the headless backend
import matplotlib.pyplot as plt

EPOCHS = 40                         # points on the line plot
N_QUICK, N_FULL = 500, 20_000       # samples for scatter/histogram
BINS = 30                           # histogram bins
MU, SIGMA = 170.0, 8.0              # heights in the histogram (cm): mean and standard deviation
DPI_QUICK, DPI_FULL = 80, 150       # resolution of four_plots.png (pixels per inch)
SIZE_DEMO = (4.0, 3.0)              # inches; saved at two dpi values to show pixels = inches x dpi
STATUS_CODES = [200, 201, 204, 301, 304, 400, 401, 404, 500, 503]
STATUS_P = [0.62, 0.05, 0.03, 0.04, 0.1, 0.04, 0.03, 0.06, 0.02, 0.01]


def line_plot(ax, rng):
    """Two curves sharing an x axis, a legend, and a log y scale for a decaying loss."""
    epochs = np.arange(1, EPOCHS + 1)
    train = 2.0 * np.exp(-epochs / 8) + 0.05 + rng.normal(0, 0.01, EPOCHS).cumsum() * 0.1
    val = train + 0.02 * np.maximum(epochs - 15, 0) ** 1.2 / 10 + 0.03  # starts to overfit
    ax.plot(epochs, train, label="train", lw=2)
    ax.plot(epochs, val, label="validation", lw=2, ls="--")
    best = int(np.argmin(val))
    ax.axvline(epochs[best], color="gray", lw=1, ls=":", label=f"best val (epoch {epochs[best]})")
    ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="Line: loss curves")
    ax.legend()
    return epochs[best]


def scatter_plot(ax, rng, n):
    """Two classes, coloured, semi-transparent so that overlaps stay visible."""
    a = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], n // 2)   # (n/2, 2)
    b = rng.multivariate_normal([2.5, 1], [[1, -0.3], [-0.3, 0.7]], n // 2)
    for pts, label in [(a, "class A"), (b, "class B")]:
        ax.scatter(pts[:, 0], pts[:, 1], s=8, alpha=0.4, label=label)
    ax.set(xlabel="feature 1", ylabel="feature 2", title="Scatter: two clusters")
    ax.set_aspect("equal", adjustable="datalim")   # 1 unit looks the same on both axes
    ax.legend(markerscale=2)


def expected_counts(x, n, width):
    """The N(MU, SIGMA) density as expected counts per bin: a bin of width w around x holds
    a share ~ w * pdf(x) of the n samples, so the curve to draw over the bars is n * w * pdf."""
    pdf = np.exp(-0.5 * ((x - MU) / SIGMA) ** 2) / (SIGMA * np.sqrt(2 * np.pi))
    return n * width * pdf


def hist_plot(ax, rng, n):
    """Bar heights are counts; the density curve must be scaled to counts to sit on them.
    (density=True would instead rescale the bars so that their area sums to 1, like a pdf.)"""
    x = rng.normal(MU, SIGMA, n)                    # e.g. heights in cm
    counts, edges, _ = ax.hist(x, bins=BINS, color="tab:green", alpha=0.7, edgecolor="white")
    grid = np.linspace(edges[0], edges[-1], 200)
    width = edges[1] - edges[0]
    ax.plot(grid, expected_counts(grid, n, width), color="black", lw=1.5,
            label=f"N({MU:g}, {SIGMA:g}) scaled to counts")
    ax.set(xlabel="height (cm)", ylabel="count", title=f"Histogram: {n:,} samples, {BINS} bins")
    ax.legend(fontsize=8)
    # The curve's expected counts over all bins must add up to n times the normal mass
    # between the first and last edge (from the erf, exactly). Summing the curve at the bin
    # centres is the midpoint rule, off by at most n (hi - lo) w^2 / 24 max|pdf''|, and
    # max|pdf''| = pdf(MU) / SIGMA^2.
    lo, hi = x.min(), x.max()
    centres = (edges[:-1] + edges[1:]) / 2
    cdf = [0.5 * (1 + math.erf((v - MU) / (SIGMA * math.sqrt(2)))) for v in (lo, hi)]
    max_curvature = 1 / (SIGMA ** 3 * math.sqrt(2 * math.pi))
    check.close("curve: expected counts summed over the bins == n x normal mass in [min, max]",
                expected_counts(centres, n, width).sum(), n * (cdf[1] - cdf[0]),
                atol=n * (hi - lo) * width ** 2 / 24 * max_curvature + 1e-9 * n)
    check.close(f"bin edges: {BINS + 1} evenly spaced from min to max", edges,
                np.linspace(lo, hi, BINS + 1), atol=1e-9, demo=True)   # matplotlib's rule
    # Recount by hand: bin i holds edges[i] <= x < edges[i+1]; the last bin also takes its
    # right edge (the maximum), which is how numpy and matplotlib define it.
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, BINS - 1)
    check.equal("drawn histogram counts == a manual recount", counts.astype(int),
                np.bincount(idx, minlength=BINS))


def bar_plot(ax, rng, n):
    """Counts per category; the bar container lets us label each bar with its value."""
    codes = rng.choice(STATUS_CODES, n, p=STATUS_P)       # a fake access log
    labels, counts = np.unique(codes, return_counts=True)
    colours = ["tab:green" if c < 300 else "tab:blue" if c < 400 else
               "tab:orange" if c < 500 else "tab:red" for c in labels]
    bars = ax.bar([str(c) for c in labels], counts, color=colours)
    ax.bar_label(bars, fontsize=7)
    ax.set(xlabel="HTTP status", ylabel="requests", title="Bar: status codes in an access log")
    heights = np.array([p.get_height() for p in bars.patches])
    manual = np.array([sum(1 for c in codes if c == label) for label in labels])
    check.equal("bar heights == counts from a Python loop", heights, manual)


def exact_size_demo(run):
    """Without bbox_inches='tight', a PNG is exactly figsize (inches) x dpi pixels."""
    paths = {}
    for dpi in (50, 100):
        fig, ax = plt.subplots(figsize=SIZE_DEMO)
        ax.plot([0, 1], [0, 1])
        ax.set_title(f"{SIZE_DEMO[0]:g} x {SIZE_DEMO[1]:g} in at dpi {dpi}")
        paths[dpi] = run.out_dir / f"size_dpi{dpi}.png"
        fig.savefig(paths[dpi], dpi=dpi)
        plt.close(fig)              # free it: pyplot keeps every open figure alive otherwise
    for dpi, path in paths.items():
        img = mpimg.imread(path)    # (H, W, 4) float32 RGBA in [0, 1]
        expected = (round(SIZE_DEMO[1] * dpi), round(SIZE_DEMO[0] * dpi), 4)
        check.equal(f"{path.name} read back: (H, W, RGBA)", img.shape, expected,
                    demo=True)   # matplotlib's pixels = inches x dpi: shown, not our code
    return paths


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    rng = np.random.default_rng(run.seed)
    n = N_QUICK if run.quick else N_FULL
    data.announce("made-up loss curves, clusters, heights and access log (numpy)",
                  kind="generated")
    # Agg renders to memory buffers only: no window, no display server, so it works over SSH,
    # in Docker and in CI. dlcourse.plot selected it before pyplot was first imported.
    print(f"  backend: {matplotlib.get_backend()}")

    # The object-oriented API: one Figure, an array of Axes; call methods on each Axes.
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))            # axes: (2, 2) array of Axes
    best = line_plot(axes[0, 0], rng)
    scatter_plot(axes[0, 1], rng, n)
    hist_plot(axes[1, 0], rng, n)
    bar_plot(axes[1, 1], rng, n)
    fig.suptitle("The four everyday plots", fontsize=14)
    fig.tight_layout()
    path = plot.save(fig, run, "four_plots.png", dpi=DPI_QUICK if run.quick else DPI_FULL)

    img = mpimg.imread(path)                                     # (H, W, 4)
    ink = float((img[..., :3] < 0.95).any(axis=-1).mean())       # share of non-white pixels
    print(f"  four_plots.png: {path.stat().st_size / 1024:.0f} KiB, {img.shape[1]}x{img.shape[0]}"
          f" px, {ink:.0%} of pixels not white")
    check.greater("four_plots.png is a non-empty file", path.stat().st_size, 0)
    check.greater("four_plots.png has something drawn (non-white share)", ink, 0.05)
    paths = exact_size_demo(run)
    return cli.finish(run, {"best_epoch": int(best), "png_width": img.shape[1],
                            "png_height": img.shape[0], "ink_share": round(ink, 3),
                            "figure": str(path), "size_demo": [str(p) for p in paths.values()]})


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
