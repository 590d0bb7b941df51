"""Capstone - Exploratory data analysis: Titanic / Iris (phase 01, week 1)

Goal: a reusable EDA: clean a table, summarise it, compare groups against a target, draw a
      figure grid and write a markdown report whose every number is re-derived and verified.
Run:  python phase01-python-ds/capstone-eda.py            (Titanic via OpenML when online, else
                                                           Iris; about 10 s on a 2-core CPU)
      python phase01-python-ds/capstone-eda.py --quick    (Iris, seconds, offline, used by the tests)
      python phase01-python-ds/capstone-eda.py --csv train.csv   (Titanic-format CSV, e.g. Kaggle)
Expect: first a self-test of the pipeline on a generated Titanic-format table (its categorical
        and missing-value branches); then Iris announced as an offline stand-in for Titanic,
        with "(stand-in data: Iris, not Titanic)" in the report and figure titles;
        petal_width_cm separates the species most (class means 0.246 / 1.326 / 2.026);
        eda_grid.png and report.md in the output folder; "[check] Iris: report numbers ==
        numpy recomputation ... OK". On Titanic (not run here, no network) the same tables
        compare survival by sex, class and port.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--csv", metavar="PATH", default=None,
                   help="analyse a Titanic-format CSV (e.g. Kaggle's train.csv) instead")
    return p.parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from dlcourse import CourseError, check, data, plot

import matplotlib.image as mpimg  # after dlcourse.plot, which selects the headless backend
import matplotlib.pyplot as plt

MAX_MISSING = 0.5       # a configured column missing in more than half its rows is dropped
DECIMALS = 3            # numbers in the report; the self-check tolerance follows from it
TOP_CORR = 3            # strongest numeric correlations listed in the report
MIN_GROUP = 10          # categories smaller than this are tabulated but not used in findings
GRID_COLS = 3           # panels per row in eda_grid.png
DPI_QUICK, DPI_FULL = 60, 110
SELFTEST_ROWS = 160     # rows of the generated Titanic-format table of the self-test


@dataclass(frozen=True)
class Config:
    """What the generic analysis needs to know about one data set."""
    name: str
    target: str
    numeric: tuple
    categorical: tuple
    labels: dict = field(default_factory=dict)     # target code -> readable class name
    not_used: dict = field(default_factory=dict)   # column -> why it is left out
    stand_in_for: str = ""                         # the data set this one replaces, if any

    def stand_in_note(self):
        """' (stand-in data: Iris, not Titanic)' for titles when a stand-in ran, else ''."""
        if not self.stand_in_for:
            return ""
        return f" (stand-in data: {self.name}, not {self.stand_in_for})"


TITANIC = Config(
    "Titanic", target="survived", numeric=("age", "fare", "sibsp", "parch"),
    categorical=("pclass", "sex", "embarked"), labels={0: "died", 1: "survived"},
    not_used={"boat": "lifeboat id, known only for survivors: target leakage",
              "body": "body id, known only for victims: target leakage",
              "name": "free text, unique per passenger", "ticket": "free text identifier",
              "cabin": "mostly missing", "home_dest": "free text",
              "passengerid": "row id"})
IRIS = Config(
    "Iris", target="species",
    numeric=("sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"),
    categorical=())


def snake(name):
    """'Sepal Length (cm)' -> 'sepal_length_cm', 'home.dest' -> 'home_dest'."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")


def read_titanic_csv(path_text):
    path = Path(path_text).expanduser()
    if path.is_dir():
        raise CourseError(f"--csv: '{path}' is a folder, not a CSV file")
    if not path.is_file():
        raise CourseError(f"--csv: no such file '{path}'")
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise CourseError(f"--csv: '{path}' is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CourseError(f"--csv: '{path}' cannot be read as CSV: {first}") from None
    if df.empty:
        raise CourseError(f"--csv: '{path}' has a header but no rows")
    return df


def load(run, csv):
    """(raw DataFrame, Config, announcement). --csv wins; then Titanic when online; else Iris."""
    if csv is not None:
        df = read_titanic_csv(csv)
        # Real data the learner fetched themselves (e.g. Kaggle's train.csv).
        line = data.announce(f"the learner's own Titanic-format CSV file {Path(csv).name}",
                             kind="downloaded", detail=f"{len(df)} rows")
        return df, TITANIC, line
    if not run.quick:
        frame = data.titanic(offline=run.offline)      # None when offline / not downloadable
        if frame is not None:
            line = data.announce("Titanic passengers (OpenML 40945)",
                                 kind="downloaded", detail=f"{len(frame)} passengers")
            return frame, TITANIC, line
    from sklearn.datasets import load_iris            # bundled with scikit-learn: no network

    iris = load_iris(as_frame=True)
    df = iris.frame.rename(columns={"target": "species"})
    line = data.announce("Iris (Fisher's flowers, the copy bundled with scikit-learn)",
                         kind="bundled", stand_in_for="Titanic",
                         detail="150 flowers, 3 species; pass --csv for a Titanic-format file")
    return df, replace(IRIS, labels={i: str(n) for i, n in enumerate(iris.target_names)},
                       stand_in_for="Titanic"), line


def clean(raw, cfg):
    """Types, names, target and categories; numeric gaps stay NaN (imputing first would
    bias the very statistics we are about to describe). Returns (df, cfg, log lines)."""
    df = raw.rename(columns=snake)
    log = []
    if cfg.target not in df:
        raise CourseError(f"the data has no '{cfg.target}' column (found: "
                          f"{', '.join(df.columns[:12])}); expected {cfg.name} format")
    target = pd.to_numeric(df[cfg.target].astype("string"), errors="coerce")
    if cfg.labels and not target.dropna().isin(list(cfg.labels)).all():
        raise CourseError(f"'{cfg.target}' must hold the codes {sorted(cfg.labels)}")
    keep = target.notna()
    if not keep.any():
        raise CourseError(f"no row has a usable '{cfg.target}' value (expected codes "
                          f"{sorted(cfg.labels)})")
    if (~keep).any():
        log.append(f"dropped {int((~keep).sum())} rows without a '{cfg.target}' value")
    df = df.loc[keep].reset_index(drop=True)
    labels = target[keep].astype(int).map(cfg.labels).to_numpy()
    df[cfg.target] = pd.Categorical(labels, categories=[cfg.labels[k] for k in sorted(cfg.labels)])

    numeric, categorical = [], []
    for col in cfg.numeric + cfg.categorical:
        if col not in df:
            log.append(f"expected column '{col}' is absent")
            continue
        share = df[col].isna().mean()
        if share > MAX_MISSING:
            log.append(f"dropped '{col}': {share:.0%} missing")
            continue
        if col in cfg.numeric:
            df[col] = pd.to_numeric(df[col], errors="coerce")          # stray text -> NaN
            numeric.append(col)
        else:
            values = df[col]
            if pd.api.types.is_numeric_dtype(values) and (values.dropna() % 1 == 0).all():
                values = values.astype("Int64")                         # pclass 1.0 -> '1'
            values = values.astype("string").str.strip().str.lower().fillna("missing")
            df[col] = values.astype("category")
            categorical.append(col)
    if not numeric and not categorical:
        raise CourseError(f"none of the expected {cfg.name} columns are present")
    for col, why in cfg.not_used.items():
        if col in df:
            log.append(f"not analysed: '{col}' ({why})")
    for col in numeric:
        n_missing = int(df[col].isna().sum())
        if n_missing:
            log.append(f"'{col}': {n_missing} missing values kept as missing (not imputed)")
    cfg = replace(cfg, numeric=tuple(numeric), categorical=tuple(categorical))
    return df[[cfg.target, *numeric, *categorical]], cfg, log


def fmt(v):
    return str(int(v)) if isinstance(v, (int, np.integer)) else f"{v:.{DECIMALS}f}"


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) if not isinstance(v, str) else v for v in row) + " |"
              for row in rows]
    return "\n".join(lines)


def summarise(df, cfg):
    """Every number of the report, computed with pandas, as {section: (header, rows)}."""
    classes = list(df[cfg.target].cat.categories)
    counts = df[cfg.target].value_counts().reindex(classes)
    tables = {"Target": (["class", "count", "share"],
                         [[c, int(counts[c]), counts[c] / len(df)] for c in classes])}
    if cfg.numeric:
        d = df[list(cfg.numeric)].describe().T                          # NaN skipped, std ddof=1
        tables["Numeric summary"] = (
            ["column", "count", "missing", "mean", "std", "min", "median", "max"],
            [[c, int(d.at[c, "count"]), int(df[c].isna().sum()), d.at[c, "mean"],
              d.at[c, "std"], d.at[c, "min"], d.at[c, "50%"], d.at[c, "max"]]
             for c in cfg.numeric])
        means = df.groupby(cfg.target, observed=False)[list(cfg.numeric)].mean()
        tables[f"Numeric means by {cfg.target}"] = (
            ["column", *classes, "spread_sd"],
            [[c, *means[c], (means[c].max() - means[c].min()) / d.at[c, "std"]]
             for c in cfg.numeric])
    for col in cfg.categorical:
        share = pd.crosstab(df[col], df[cfg.target], normalize="index")
        n = df[col].value_counts()
        tables[f"{col} vs {cfg.target}"] = (
            [col, "count", *[f"share_{c}" for c in classes]],
            [[lvl, int(n[lvl]), *[share.at[lvl, c] for c in classes]] for lvl in share.index])
    if len(cfg.numeric) >= 2:
        r = df[list(cfg.numeric)].corr()                                # pairwise complete
        pairs = [(abs(r.iat[i, j]), cfg.numeric[i], cfg.numeric[j], r.iat[i, j])
                 for i in range(len(r)) for j in range(i + 1, len(r))]
        pairs.sort(reverse=True)
        tables["Strongest correlations"] = (["pair", "r"], [[f"{a} / {b}", v]
                                                             for _, a, b, v in pairs[:TOP_CORR]])
    return tables


def findings(tables, cfg):
    lines = []
    target_rows = tables["Target"][1]
    lines.append("Class balance: " + ", ".join(f"{c} {s:.1%}" for c, _, s in target_rows) + ".")
    key = f"Numeric means by {cfg.target}"
    if key in tables:
        best = max(tables[key][1], key=lambda row: row[-1])
        lines.append(f"`{best[0]}` separates the classes most: class means "
                     + " / ".join(fmt(v) for v in best[1:-1])
                     + f", a spread of {best[-1]:.2f} standard deviations.")
    for col in cfg.categorical:
        rows = [r for r in tables[f"{col} vs {cfg.target}"][1] if r[1] >= MIN_GROUP]
        if len(rows) < 2:
            continue
        hi, lo = max(rows, key=lambda r: r[-1]), min(rows, key=lambda r: r[-1])
        last = target_rows[-1][0]
        lines.append(f"`{col}`: share '{last}' ranges from {lo[-1]:.1%} ({lo[0]}) "
                     f"to {hi[-1]:.1%} ({hi[0]}).")
    return lines


def report_markdown(df, cfg, tables, log, announced, figure_name):
    """The whole report as markdown text: title, data line, cleaning log, findings, tables."""
    parts = [f"# EDA report: {cfg.name}{cfg.stand_in_note()}", "", f"`{announced}`", "",
             f"{len(df)} rows; target `{cfg.target}`; numeric: {', '.join(cfg.numeric) or '-'};"
             f" categorical: {', '.join(cfg.categorical) or '-'}.", "", "## Cleaning", ""]
    parts += [f"- {line}" for line in log] or ["- nothing to clean"]
    parts += ["", "## Findings", ""] + [f"- {line}" for line in findings(tables, cfg)]
    for title, (header, rows) in tables.items():
        parts += ["", f"## {title}", "", md_table(header, rows)]
    parts += ["", f"![EDA grid]({figure_name})", ""]
    return "\n".join(parts)


def read_report_tables(text):
    """Parse the markdown back: {section: {(row label, column): number}}."""
    out, section, header = {}, None, None
    for line in text.splitlines():
        if line.startswith("## "):
            section, header = line[3:].strip(), None
        elif line.startswith("|") and section and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if header is None:
                header = cells
            else:
                out.setdefault(section, {}).update(
                    {(cells[0], h): float(v) for h, v in zip(header[1:], cells[1:])})
    return out


def recompute(df, cfg):
    """The same numbers from numpy arrays and loops only, never pandas' aggregations."""
    y = df[cfg.target].to_numpy().astype(str)
    classes = list(df[cfg.target].cat.categories)
    exp = {"Target": {}}
    for c in classes:
        exp["Target"][c, "count"] = float((y == c).sum())
        exp["Target"][c, "share"] = (y == c).mean()
    num = f"Numeric means by {cfg.target}"
    for col in cfg.numeric:
        x = df[col].to_numpy(dtype=float)
        obs = x[~np.isnan(x)]
        sd = obs.std(ddof=1)
        exp.setdefault("Numeric summary", {}).update({
            (col, "count"): obs.size, (col, "missing"): x.size - obs.size,
            (col, "mean"): obs.mean(), (col, "std"): sd, (col, "min"): obs.min(),
            (col, "median"): np.median(obs), (col, "max"): obs.max()})
        m = [np.nanmean(x[y == c]) for c in classes]
        exp.setdefault(num, {}).update({(col, c): v for c, v in zip(classes, m)})
        exp[num][col, "spread_sd"] = (max(m) - min(m)) / sd
    for col in cfg.categorical:
        v = df[col].to_numpy().astype(str)
        sec = exp.setdefault(f"{col} vs {cfg.target}", {})
        for lvl in np.unique(v):
            sec[lvl, "count"] = (v == lvl).sum()
            for c in classes:
                sec[lvl, f"share_{c}"] = ((v == lvl) & (y == c)).sum() / (v == lvl).sum()
    if len(cfg.numeric) >= 2:
        X = df[list(cfg.numeric)].to_numpy(dtype=float)
        pairs = {}
        for i in range(len(cfg.numeric)):
            for j in range(i + 1, len(cfg.numeric)):
                ok = ~np.isnan(X[:, i]) & ~np.isnan(X[:, j])      # pairwise complete rows
                pairs[f"{cfg.numeric[i]} / {cfg.numeric[j]}", "r"] = np.corrcoef(X[ok, i],
                                                                                X[ok, j])[0, 1]
        top = sorted(pairs, key=lambda k: -abs(pairs[k]))[:TOP_CORR]
        exp["Strongest correlations"] = {k: pairs[k] for k in top}
    return exp


def figure_grid(run, df, cfg, tables):
    classes = list(df[cfg.target].cat.categories)
    colours = dict(zip(classes, plt.get_cmap("tab10").colors))
    panels = ["target", *[("num", c) for c in cfg.numeric], *[("cat", c) for c in cfg.categorical]]
    if len(cfg.numeric) >= 2:
        panels += ["scatter", "corr"]
    rows = -(-len(panels) // GRID_COLS)                                 # ceil division
    # Fixed spacing instead of layout="constrained": the solver costs more than all the drawing.
    fig, axes = plt.subplots(rows, GRID_COLS, figsize=(4.4 * GRID_COLS, 3.5 * rows),
                             squeeze=False, gridspec_kw=dict(hspace=0.5, wspace=0.35))
    flat = axes.ravel()
    for ax, panel in zip(flat, panels):
        if panel == "target":
            counts = [row[1] for row in tables["Target"][1]]
            bars = ax.bar(classes, counts, color=[colours[c] for c in classes])
            ax.bar_label(bars)
            ax.margins(y=0.12)                                   # room for the labels
            ax.set(title=f"{cfg.target}: class counts", ylabel="rows")
        elif panel[0] == "num":
            col = panel[1]
            seen = df[col].dropna()
            if (seen % 1 == 0).all() and seen.nunique() <= 15:        # counts: one bar per value
                bins = np.arange(seen.min() - 0.5, seen.max() + 1.5)
            else:
                bins = np.histogram_bin_edges(seen, bins=25)
            for c in classes:
                ax.hist(df.loc[df[cfg.target] == c, col].dropna(), bins=bins, density=True,
                        histtype="stepfilled", alpha=0.45, color=colours[c], label=c)
            ax.set(title=f"{col} by {cfg.target}", ylabel="density")
            ax.legend(fontsize=7)
        elif panel[0] == "cat":
            col = panel[1]
            header, trows = tables[f"{col} vs {cfg.target}"]
            left = np.zeros(len(trows))
            for k, c in enumerate(classes):                              # stacked shares
                share = np.array([r[2 + k] for r in trows])
                ax.barh([r[0] for r in trows], share, left=left, color=colours[c], label=c)
                left += share
            ax.set(title=f"{cfg.target} share by {col}", xlim=(0, 1), xlabel="share")
            ax.legend(fontsize=7, loc="lower right")
        elif panel == "scatter":
            spread = sorted(tables[f"Numeric means by {cfg.target}"][1], key=lambda r: -r[-1])
            a, b = spread[0][0], spread[1][0]                            # two most separating
            for c in classes:
                part = df[df[cfg.target] == c]
                ax.scatter(part[a], part[b], s=8, alpha=0.5, color=colours[c], label=c)
            ax.set(xlabel=a, ylabel=b, title="two most separating features")
            ax.legend(fontsize=7)
        else:
            r = df[list(cfg.numeric)].corr().to_numpy()
            im = ax.imshow(r, cmap="RdBu_r", vmin=-1, vmax=1)
            ax.set_xticks(range(len(r)), cfg.numeric, rotation=40, ha="right", fontsize=7)
            ax.set_yticks(range(len(r)), cfg.numeric, fontsize=7)
            for i in range(len(r)):
                for j in range(len(r)):
                    ax.text(j, i, f"{r[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if abs(r[i, j]) > 0.6 else "black")
            fig.colorbar(im, ax=ax, shrink=0.8)
            ax.set_title("numeric correlations")
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    title = f"EDA: {cfg.name} ({len(df)} rows){cfg.stand_in_note()}"
    fig.suptitle(title, fontsize=14)
    return plot.save(fig, run, "eda_grid.png", dpi=DPI_QUICK if run.quick else DPI_FULL), title


def check_report(what, text, df, cfg):
    """Every number recompute() derives must be in the report text, equal to its printed
    digits. Returns how many numbers were compared."""
    check.equal(f"{what}: cleaned categorical columns have no NaN",
                int(df[list(cfg.categorical)].isna().sum().sum()) if cfg.categorical else 0, 0)
    check.equal(f"{what}: every row has a target class", int(df[cfg.target].isna().sum()), 0)
    written, expected = read_report_tables(text), recompute(df, cfg)
    keys = [(s, k) for s in expected for k in expected[s]]
    absent = [f"{s}: {k}" for s, k in keys if k not in written.get(s, {})]
    check.equal(f"{what}: every recomputed number is in the report ({len(keys)} values)",
                absent, [])
    # Numbers are printed with DECIMALS places, so they can differ by half a unit of the last.
    check.close(f"{what}: report numbers == numpy recomputation ({len(keys)} values)",
                [written[s][k] for s, k in keys], [expected[s][k] for s, k in keys],
                atol=0.5 * 10 ** -DECIMALS + 1e-9)
    return len(keys)


def titanic_format_table(seed, n=SELFTEST_ROWS):
    """A small Titanic-format table made here, with the awkward parts of the real file:
    missing ages and ports, pclass read as floats (one gap), stray case and spaces in 'sex',
    rows without a target, a mostly missing column, and one strong NEGATIVE correlation
    (fare falls with age), so that ranking correlations by r instead of |r| would show."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(1, 80, n).round()
    sex = rng.choice(["male", "female", " Male", "FEMALE "], n)
    pclass = rng.choice([1.0, 2.0, 3.0], n)
    pclass[5] = np.nan                                   # one gap: pclass then reads as float
    survived = (rng.random(n) < np.where(np.char.lower(np.char.strip(sex)) == "female",
                                         0.75, 0.2)).astype(float)
    survived[:3] = np.nan
    return pd.DataFrame({
        "PassengerId": np.arange(1, n + 1), "Survived": survived, "Pclass": pclass,
        "Name": [f"Passenger {i}" for i in range(n)], "Sex": sex,
        "Age": np.where(rng.random(n) < 0.2, np.nan, age),
        "SibSp": rng.integers(0, 4, n), "Parch": rng.integers(0, 3, n),
        "Fare": (250 - 3 * age + rng.normal(0, 15, n)).round(2),
        "Cabin": np.where(rng.random(n) < 0.8, None, "C85"),
        "Embarked": rng.choice(np.array(["S", "C", "Q", None], dtype=object), n,
                               p=[0.6, 0.2, 0.15, 0.05])})


def self_test(run):
    """Iris has no categorical column and no gap, so on the offline run those branches of
    clean() and summarise() would go unchecked: run the whole pipeline on a generated
    Titanic-format table first and verify its report the same way."""
    raw = titanic_format_table(run.seed)
    df, cfg, _ = clean(raw, TITANIC)
    text = report_markdown(df, cfg, summarise(df, cfg), [], "self-test table", "none.png")
    print(f"self-test: the pipeline on a {len(raw)}-row Titanic-format table generated here "
          f"(categorical columns {', '.join(cfg.categorical)}; missing values)")
    return check_report("self-test", text, df, cfg)


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    self_test(run)
    raw, cfg, announced = load(run, args.csv)
    print(f"raw: {raw.shape[0]} rows x {raw.shape[1]} columns")
    df, cfg, log = clean(raw, cfg)
    for line in log:
        print(f"  cleaning: {line}")
    tables = summarise(df, cfg)
    for line in findings(tables, cfg):
        print(f"  finding: {line}")
    fig_path, fig_title = figure_grid(run, df, cfg, tables)
    text = report_markdown(df, cfg, tables, log, announced, fig_path.name)
    report = run.out_dir / "report.md"
    report.write_text(text, encoding="utf-8")
    print(f"report: {report}")

    n_numbers = check_report(cfg.name, report.read_text(encoding="utf-8"), df, cfg)
    img = mpimg.imread(fig_path)
    check.true("eda_grid.png exists and decodes", fig_path.stat().st_size > 0 and img.ndim == 3,
               f"{fig_path.stat().st_size / 1024:.0f} KiB, {img.shape[1]}x{img.shape[0]} px")
    if cfg.stand_in_for:
        first = text.splitlines()[0]
        check.true("report title and figure title say the stand-in ran",
                   cfg.stand_in_note() in first and cfg.stand_in_note() in fig_title,
                   f"'{first}' / '{fig_title}'")
    return cli.finish(run, {"dataset": cfg.name, "rows": len(df), "target": cfg.target,
                            "numbers_checked": n_numbers, "report": str(report),
                            "figure": str(fig_path)})


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
