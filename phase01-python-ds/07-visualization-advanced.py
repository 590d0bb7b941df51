"""07 - Advanced visualisation: grids, heatmaps, annotations (phase 01, week 1)

Goal: lay out multi-panel figures with shared axes, switch styles safely, and draw an annotated
      correlation heatmap whose numbers are proven equal to a from-scratch Pearson computation.
Run:  python phase01-python-ds/07-visualization-advanced.py            (about 10 s on a 2-core CPU)
      python phase01-python-ds/07-visualization-advanced.py --quick    (seconds, offline, used by the tests)
Expect: grid_shared.png (a hand-made joint plot + small multiples), styles.png, corr_heatmap.png;
        "[check] heatmap cells == numpy Pearson correlation: max |diff| ~1e-15"; strongest pair
        area_m2 / rooms (r ~ 0.9).
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd

from dlcourse import check, data, plot

import matplotlib.pyplot as plt  # after dlcourse.plot, which selects the headless backend

N_QUICK, N_FULL = 1_000, 50_000        # houses generated
DPI_QUICK, DPI_FULL = 70, 130          # figure resolution (pixels per inch)
STYLES = ["default", "ggplot", "seaborn-v0_8-whitegrid"]   # all ship with matplotlib
SCATTER_MAX = 3_000                    # points drawn per scatter: more only adds ink and time


def make_houses(rng, n):
    """A small tabular data set with correlations we built in on purpose."""
    area = rng.gamma(9, 12, n)                                 # m^2, right-skewed
    rooms = np.clip(np.round(area / 28 + rng.normal(0, 0.6, n)), 1, None)
    age = rng.uniform(0, 80, n)                                # years
    distance = rng.gamma(2, 4, n)                              # km to the centre
    noise = rng.normal(size=n)                                 # unrelated to everything
    price = 3.2 * area - 1.1 * age - 9 * distance + rng.normal(0, 40, n) + 150   # k EUR
    return pd.DataFrame({"area_m2": area, "rooms": rooms, "age_years": age,
                         "distance_km": distance, "noise": noise, "price_k": price})


def pearson(X):
    """r_ij = sum_k z_ki z_kj / n with z = (x - mean) / std (ddof=0): correlation from scratch."""
    Z = (X - X.mean(axis=0)) / X.std(axis=0)                   # (n, d)
    return Z.T @ Z / len(X)                                    # (d, d)


def grid_figure(run, df, dpi):
    """Joint plot (scatter + marginal histograms on shared axes) beside 2x2 small multiples."""
    show = df.sample(min(len(df), SCATTER_MAX), random_state=run.seed)
    mosaic = [["top", ".", "m1", "m2"],
              ["main", "right", "m3", "m4"]]
    fig, ax = plt.subplot_mosaic(mosaic, figsize=(13, 6), layout="constrained",
                                 width_ratios=[4, 1, 3, 3], height_ratios=[1, 4])
    main_ax = ax["main"]
    main_ax.scatter(show["area_m2"], show["price_k"], s=6, alpha=0.35, c=show["age_years"],
                    cmap="viridis")
    main_ax.set(xlabel="area (m$^2$)", ylabel="price (k EUR)")
    # Marginals share the scatter's axes: zooming or set_xlim on one moves the other.
    ax["top"].sharex(main_ax)
    ax["right"].sharey(main_ax)
    ax["top"].hist(df["area_m2"], bins=40, color="gray", histtype="stepfilled")
    ax["right"].hist(df["price_k"], bins=40, color="gray", histtype="stepfilled",
                     orientation="horizontal")
    ax["top"].tick_params(labelbottom=False)
    ax["right"].tick_params(labelleft=False)
    ax["top"].set_title("joint plot by hand")
    # Annotation: point at the priciest house with an arrow and a boxed label.
    top = df.loc[df["price_k"].idxmax()]
    main_ax.annotate(f"priciest: {top['price_k']:.0f}k, {top['area_m2']:.0f} m$^2$",
                     xy=(top["area_m2"], top["price_k"]), xytext=(0.05, 0.92),
                     textcoords="axes fraction", fontsize=8,
                     arrowprops=dict(arrowstyle="->", color="black"),
                     bbox=dict(boxstyle="round", fc="lightyellow", ec="gray"))
    # Small multiples: price against each other feature, all on ONE shared y axis.
    for key, col in zip(["m1", "m2", "m3", "m4"], ["rooms", "age_years", "distance_km", "noise"]):
        a = ax[key]
        if key != "m1":
            a.sharey(ax["m1"])
        a.scatter(show[col], show["price_k"], s=3, alpha=0.3)
        slope, intercept = np.polyfit(df[col], df["price_k"], 1)        # least-squares line
        xs = np.linspace(df[col].min(), df[col].max(), 2)
        a.plot(xs, slope * xs + intercept, color="tab:red", lw=1.5)
        a.set_title(f"price vs {col}", fontsize=9)
    ax["m1"].set_ylim(df["price_k"].min(), df["price_k"].max())   # set once, seen by all four
    lims = {k: tuple(round(float(v), 6) for v in ax[k].get_ylim())
            for k in ["m1", "m2", "m3", "m4"]}
    check.equal("marginal histogram shares the scatter's x limits",
                tuple(map(float, ax["top"].get_xlim())), tuple(map(float, main_ax.get_xlim())))
    check.equal("small multiples all share one y range", set(lims.values()), {lims["m1"]})
    return plot.save(fig, run, "grid_shared.png", dpi=dpi)


def styles_figure(run, df, dpi):
    """A style is a bundle of rcParams; `with plt.style.context(...)` applies it temporarily."""
    before = plt.rcParams["axes.facecolor"]
    fig = plt.figure(figsize=(12, 3.4), layout="constrained")
    faces = {}
    for i, style in enumerate(STYLES):
        with plt.style.context(style):            # axes created inside pick up the style
            a = fig.add_subplot(1, len(STYLES), i + 1)
            for rooms, part in df[df["rooms"] <= 4].groupby("rooms"):
                a.hist(part["price_k"], bins=30, histtype="stepfilled", alpha=0.5,
                       label=f"rooms = {rooms:.0f}")        # stepfilled: one artist, not 30 bars
            a.set(title=style, xlabel="price (k EUR)")
            a.legend(fontsize=7)
            faces[style] = (a.get_facecolor(), plt.rcParams["axes.facecolor"])
    # matplotlib's own behaviour: [demo] lines, shown but not counted as checks of our code.
    check.equal("style context restores rcParams on exit", plt.rcParams["axes.facecolor"], before,
                demo=True)
    lib = plt.style.library["ggplot"]["axes.facecolor"]
    check.equal("ggplot axes use ggplot's facecolor", faces["ggplot"][0], mcolors.to_rgba(lib),
                demo=True)
    return plot.save(fig, run, "styles.png", dpi=dpi)


def heatmap_figure(run, df, dpi):
    """imshow of the correlation matrix, diverging colours centred at 0, every cell labelled."""
    corr = df.corr()                                   # pandas' Pearson correlation
    cols = list(corr.columns)
    fig, axh = plt.subplots(figsize=(6.5, 5.5), layout="constrained")
    im = axh.imshow(corr.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)  # fixed range: 0 is white
    fig.colorbar(im, ax=axh, label="Pearson r")
    axh.set_xticks(range(len(cols)), cols, rotation=35, ha="right")
    axh.set_yticks(range(len(cols)), cols)
    texts = {}
    for i in range(len(cols)):
        for j in range(len(cols)):
            v = corr.iat[i, j]
            texts[i, j] = axh.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                                   color="white" if abs(v) > 0.6 else "black")
    off = corr.to_numpy() - np.eye(len(cols))           # ignore the diagonal of ones
    i, j = np.unravel_index(np.abs(off).argmax(), off.shape)
    axh.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="gold", lw=3))
    axh.set_title(f"strongest pair: {cols[i]} / {cols[j]}")

    ours = pearson(df.to_numpy())
    check.close("heatmap cells == numpy Pearson correlation", np.asarray(im.get_array()), ours,
                atol=1e-12)
    labels = np.array([[texts[a, b].get_text() for b in range(len(cols))]
                       for a in range(len(cols))])
    check.equal("cell labels == numpy r rounded to 2 decimals", labels,
                np.vectorize(lambda r: f"{r:.2f}")(ours))
    # The highlighted cell: the largest |r| off the diagonal, found again by a loop over i < j.
    d = len(cols)
    pairs = [(a, b) for a in range(d) for b in range(a + 1, d)]
    loop_best = max(pairs, key=lambda ab: abs(ours[ab]))
    check.equal("highlighted pair == largest off-diagonal |r| by a loop over i < j",
                (cols[min(i, j)], cols[max(i, j)]), (cols[loop_best[0]], cols[loop_best[1]]))
    check.less("built-in noise column is nearly uncorrelated with price (|r|, 5/sqrt(n) bound)",
               abs(ours[cols.index("noise"), cols.index("price_k")]), 5 / np.sqrt(len(df)))
    return plot.save(fig, run, "corr_heatmap.png", dpi=dpi), (cols[i], cols[j], float(off[i, j]))


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    rng = np.random.default_rng(run.seed)
    df = make_houses(rng, N_QUICK if run.quick else N_FULL)
    data.announce("synthetic houses generated with numpy", kind="generated",
                  detail=f"{len(df):,} rows, {df.shape[1]} columns")
    dpi = DPI_QUICK if run.quick else DPI_FULL
    grid_figure(run, df, dpi)
    styles_figure(run, df, dpi)
    _, (a, b, r) = heatmap_figure(run, df, dpi)
    print(f"  strongest off-diagonal correlation: {a} / {b}, r = {r:.3f}")
    return cli.finish(run, {"rows": len(df), "strongest_pair": f"{a}/{b}",
                            "strongest_r": round(r, 4)})


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
