"""05 - Pandas preprocessing: missing values, encoding, leakage-free splits (phase 01, week 1)

Goal: turn a messy CSV (numbers stored as text, typos, gaps, bots) into a clean numeric matrix,
      with every statistic (median, outlier bounds, mean/std, categories) learned on train only.
Run:  python phase01-python-ds/05-pandas-preprocessing.py            (about 8 s on a 2-core CPU)
      python phase01-python-ds/05-pandas-preprocessing.py --quick    (seconds, offline, used by the tests)
Expect: "[check] no NaN left in train or test ... OK"; the test matrix equals an independent
        numpy recomputation from train statistics (max |diff| 0, 1e-12 allowed); 15 features.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import io

import numpy as np
import pandas as pd

from dlcourse import check, data

N_QUICK = 1_000            # customers generated in --quick
N_FULL = 200_000           # full run
TEST_FRACTION = 0.2        # share of rows held out before any statistic is computed
IQR_K = 1.5                # Tukey fences: values beyond Q1 - k*IQR or Q3 + k*IQR are outliers
AGE_RANGE = (0, 120)       # ages outside this are data-entry errors -> treated as missing
REFERENCE_DATE = pd.Timestamp("2025-01-01")   # "today" for the tenure feature
NUMERIC = ["age", "monthly_spend", "sessions_per_week", "tenure_days"]
CLIP = ["age", "sessions_per_week"]           # winsorised at the fences (bots, typos); spend is
                                              # skewed by plan, so fences would flag real customers
CATEGORICAL = ["country"]                     # one-hot encoded
PLAN_ORDER = {"free": 0, "pro": 1, "team": 2}  # ordinal: plans have a natural order
BOT_SESSIONS = 5000.0                         # sessions a week of a bot hammering the API


def messy_csv(rng, n):
    """A CRM export as a web back end might produce it: text everywhere, gaps, typos, bots."""
    plan = rng.choice(list(PLAN_ORDER), n, p=[0.6, 0.3, 0.1])
    spend = np.select([plan == "free", plan == "pro"], [0.0, rng.gamma(4, 10, n)],
                      rng.gamma(3, 80, n)).round(2)
    sessions = rng.poisson(np.where(plan == "free", 3, 8)).astype(float)
    signup = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1800, n), unit="D")
    logit = 0.8 - 0.35 * sessions - 0.8 * (plan != "free")      # more use, fewer churners
    df = pd.DataFrame({
        "customer_id": np.arange(n),
        "signup": signup.strftime("%Y-%m-%d"),
        "plan": plan,
        "country": rng.choice(["CN", "DE", "FR", "JP", "US"], n),
        "age": rng.normal(38, 12, n).round().clip(16, 90),
        "monthly_spend": [f"${v:,.2f}" if rng.random() < 0.5 else f"{v}" for v in spend],
        "sessions_per_week": sessions,
        "churned": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int),
    })
    # Damage it the ways real exports are damaged (on whole columns: pandas 3 str dtype).
    def pick(p):
        return rng.random(n) < p
    df["plan"] = df["plan"].where(~pick(0.3), " " + df["plan"].str.upper() + " ")  # case/space
    df.loc[pick(0.03), "plan"] = np.nan
    df.loc[pick(0.04), "country"] = np.nan
    df.loc[pick(0.05), "age"] = np.nan
    df.loc[pick(0.01), "age"] = -1.0                        # "unknown" typed as -1
    df.loc[pick(0.03), "monthly_spend"] = "n/a"
    df.loc[pick(0.06), "sessions_per_week"] = np.nan
    df.loc[pick(0.005), "sessions_per_week"] = BOT_SESSIONS  # bots hammering the API
    df.loc[pick(0.02), "signup"] = "unknown"
    return df.to_csv(index=False)


def clean_types(raw):
    """Text -> proper dtypes. Row-wise meaning is kept; nothing is learned from the data yet."""
    df = raw.copy()
    spend = df["monthly_spend"].str.replace(r"[$,]", "", regex=True)
    df["monthly_spend"] = pd.to_numeric(spend, errors="coerce")        # 'n/a' -> NaN
    signup = pd.to_datetime(df["signup"], format="%Y-%m-%d", errors="coerce")  # bad -> NaT
    df["tenure_days"] = (REFERENCE_DATE - signup).dt.days.astype(float)
    df["age"] = df["age"].where(df["age"].between(*AGE_RANGE))        # impossible -> NaN
    df["plan"] = df["plan"].str.strip().str.lower()
    df["country"] = df["country"].astype("category")
    return df.drop(columns=["signup"])


class Preprocessor:
    """fit() learns every statistic from the frame it is given; transform() only applies them.
    Call fit on the training split alone: that is the whole leakage story."""

    def fit(self, df):
        self.median, self.fences, self.low, self.high, self.mean, self.std = ({} for _ in range(6))
        for col in NUMERIC:
            x = df[col]
            q1, q3 = x.quantile([0.25, 0.75])                     # NaN are skipped
            self.fences[col] = (q1 - IQR_K * (q3 - q1), q3 + IQR_K * (q3 - q1))
            self.low[col], self.high[col] = self.fences[col] if col in CLIP else (-np.inf, np.inf)
            self.median[col] = x.median()
            filled = x.fillna(self.median[col]).clip(self.low[col], self.high[col])
            self.mean[col] = filled.mean()
            self.std[col] = filled.std(ddof=0)   # pandas defaults to ddof=1, numpy/sklearn to 0
        self.plan_mode = df["plan"].mode().iloc[0]
        self.levels = {c: sorted(df[c].dropna().unique()) for c in CATEGORICAL}
        return self

    def transform(self, df):
        out = pd.DataFrame(index=df.index)
        for col in NUMERIC:
            x = df[col]
            out[f"{col}_missing"] = x.isna().astype(float)          # missingness can be signal
            x = x.fillna(self.median[col]).clip(self.low[col], self.high[col])
            out[col] = (x - self.mean[col]) / self.std[col]         # z = (x - mu_train) / sd_train
        out["plan"] = df["plan"].fillna(self.plan_mode).map(PLAN_ORDER).astype(float)
        for col in CATEGORICAL:
            # Fixed train levels: a level seen only in test gets all zeros, never a new column.
            for level in self.levels[col]:
                out[f"{col}={level}"] = (df[col] == level).astype(float)
            out[f"{col}=missing"] = df[col].isna().astype(float)
        return out


def numpy_reference(train, test):
    """The numeric block of transform(test) recomputed with numpy only, from train rows."""
    cols = []
    for col in NUMERIC:
        tr, te = train[col].to_numpy(float), test[col].to_numpy(float)
        seen = tr[~np.isnan(tr)]
        q1, q3 = np.percentile(seen, [25, 75])          # same linear interpolation as pandas
        lo, hi = q1 - IQR_K * (q3 - q1), q3 + IQR_K * (q3 - q1)
        if col not in CLIP:
            lo, hi = -np.inf, np.inf
        med = np.median(seen)
        tr_f = np.clip(np.where(np.isnan(tr), med, tr), lo, hi)
        te_f = np.clip(np.where(np.isnan(te), med, te), lo, hi)
        cols.append((te_f - tr_f.mean()) / tr_f.std())
    return np.stack(cols, axis=1)                        # (n_test, len(NUMERIC))


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    rng = np.random.default_rng(run.seed)
    n = N_QUICK if run.quick else N_FULL
    raw = pd.read_csv(io.StringIO(messy_csv(rng, n)))
    data.announce("synthetic CRM export generated with numpy", kind="generated",
                  detail=f"{n:,} customers, read back from CSV text")
    print("1) what read_csv made of it")
    print(raw.head(4).to_string())
    print(f"  dtypes: {dict(raw.dtypes.astype(str))}")

    print("2) dtypes and invalid values")
    df = clean_types(raw)
    missing = df.isna().mean().sort_values(ascending=False)
    print("  missing share: " + ", ".join(f"{c} {v:.1%}" for c, v in missing.items() if v > 0))
    check.true("monthly_spend parsed to float64", df["monthly_spend"].dtype == np.float64,
               f"dtype {df['monthly_spend'].dtype}")
    # read_csv already turned 'n/a' into NaN: every other text, '$1,234.50' or '81.0', must
    # become a number, so parsing may not add a single NaN.
    check.equal("monthly_spend: NaN after parsing == NaN in the raw export",
                int(df["monthly_spend"].isna().sum()), int(raw["monthly_spend"].isna().sum()))
    check.equal("plan levels after strip/lower", sorted(df["plan"].dropna().unique()),
                sorted(PLAN_ORDER))
    check.equal("impossible ages removed", int((df["age"] < AGE_RANGE[0]).sum()), 0)

    print("3) split first, then fit on train only")
    order = rng.permutation(n)
    n_test = int(n * TEST_FRACTION)
    test, train = df.iloc[order[:n_test]], df.iloc[order[n_test:]]
    # A level that only exists in the future: new customers from Brazil arrive after training.
    test = test.assign(country=test["country"].cat.add_categories("BR"))
    test.loc[test.index[:5], "country"] = "BR"
    # And a bot account signs up after training: transform must clip it with the TRAIN fences.
    test.loc[test.index[5], "sessions_per_week"] = BOT_SESSIONS
    check.equal("train and test share no customer", len(set(train["customer_id"]) &
                                                         set(test["customer_id"])), 0)
    prep = Preprocessor().fit(train)
    leaky = Preprocessor().fit(df)      # the mistake, fitted only to show what would leak
    for col in NUMERIC:
        print(f"  {col:<18} train mean {prep.mean[col]:9.3f}  all-data mean {leaky.mean[col]:9.3f}"
              f"  fences [{prep.fences[col][0]:.1f}, {prep.fences[col][1]:.1f}]")
    X_train, X_test = prep.transform(train), prep.transform(test)
    y_train, y_test = train["churned"].to_numpy(), test["churned"].to_numpy()
    clipped = {c: int(((train[c] < prep.low[c]) | (train[c] > prep.high[c])).sum()) for c in CLIP}
    lo, hi = prep.fences["monthly_spend"]
    flagged = train["plan"][(train["monthly_spend"] < lo) | (train["monthly_spend"] > hi)]
    print(f"  outliers clipped in train: {clipped}; fences on monthly_spend would flag "
          f"{len(flagged)} rows, {(flagged == 'team').mean():.0%} of them real 'team' customers")
    print(f"  X_train {X_train.shape}, X_test {X_test.shape}; churn rate train "
          f"{y_train.mean():.3f}, test {y_test.mean():.3f}")

    print("4) checks")
    check.equal("no NaN left in train or test",
                int(X_train.isna().sum().sum() + X_test.isna().sum().sum()), 0)
    check.equal("train and test have the same columns", list(X_test.columns),
                list(X_train.columns))
    check.close("train z-scores: mean 0, std 1 (scaler fitted on these rows)",
                np.r_[X_train[NUMERIC].mean(), X_train[NUMERIC].std(ddof=0)],
                np.r_[np.zeros(len(NUMERIC)), np.ones(len(NUMERIC))], atol=1e-9)
    check.close("test block == numpy recomputation from train statistics only",
                X_test[NUMERIC].to_numpy(), numpy_reference(train, test), atol=1e-12)
    check.greater("the leaky (all-data) fit gives different parameters",
                  max(abs(prep.mean[c] - leaky.mean[c]) for c in NUMERIC), 0.0)
    onehot = X_test[[c for c in X_test if c.startswith("country=")]].sum(axis=1)
    is_br = (test["country"] == "BR").to_numpy()
    check.true("unseen level 'BR' encodes as all zeros, every other row as exactly one 1",
               (onehot[is_br] == 0).all() and (onehot[~is_br] == 1).all(),
               f"{is_br.sum()} BR rows, {(~is_br).sum()} others")
    return cli.finish(run, {"rows": n, "features": X_train.shape[1], "train_rows": len(X_train),
                            "test_rows": len(X_test),
                            "missing_share_max": round(float(missing.max()), 4)})


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
