"""17 - Feature engineering and pipelines (phase 02, week 3)

Goal: turn a messy customer table into features a linear model can use (scaling, log, one-hot,
      bins, an interaction, selection) inside one leak-proof Pipeline, and catch two kinds of leakage;
      then two interview cases on generated data with planted structure: forecast a vegetable's
      price (season, weekday, lags, delayed weather, holidays, a same-day wholesale leak) and infer
      car ownership from browsing logs (per-user aggregates, a page that exists after the label).
Run:  python phase02-math/17-feature-engineering.py            (5000 customers, 6 years of prices,
                                                               4000 users; about 7 s on a 2-core CPU)
      python phase02-math/17-feature-engineering.py --quick    (seconds, offline, used by the tests)
Expect: scaler/one-hot/bins equal sklearn's; on the development rows the leak detector flags
      cancel_reason and 5-fold ROC-AUC picks the pipeline (0.830 vs 0.679 for the raw columns);
      measured once on the 1250 held-out customers it scores 0.834 (seed 0, full); selecting
      features before CV fakes ~0.9 accuracy on pure noise where the honest pipeline scores ~0.5.
      Price (seed 0, full): no feature of day t moves when the future is changed; test-year MAE
      0.228 vs 0.283 for "same as yesterday"; dropping the price lags costs most (+0.31);
      the wholesale leak shows MAE 0.039 on a random split and delivers 0.281 when run as it would be.
      Car owner: car-page share beats raw counts (single-column AUC 0.71 vs 0.66, activity 0.51);
      logs after the label date give AUC 0.98, the leak-free cut 0.74 on the later users.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import warnings

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import mean_absolute_error, roc_auc_score
from sklearn.model_selection import KFold, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (FunctionTransformer, KBinsDiscretizer, OneHotEncoder, PolynomialFeatures,
                                   StandardScaler)

from dlcourse import check, data

FOLDS = 5            # cross-validation folds
AGE_BINS = 6         # equal-width age bins: lets a linear model draw a U-shape
N_NOISE = 8          # columns of pure noise in the table
K_BEST = 20          # features kept by the selection step (out of ~40 after encoding)
LEAK_AUC = 0.95      # a single column this predictive on its own is suspicious
TEST_SHARE = 0.25    # customers held out for one final measurement
NUMERIC = ["age", "income", "tenure", "charges", "support_calls"]


def make_customers(n, rng):
    """A churn table with the usual troubles: mixed units, a skewed column, categories, a
    U-shaped effect, an interaction, noise columns, and one column that leaks the answer."""
    df = pd.DataFrame({
        "age": rng.uniform(18, 80, n),
        "income": rng.lognormal(10.5, 0.6, n),                 # skewed: effect is on the log scale
        "tenure": rng.uniform(0, 72, n),                       # months as a customer
        "charges": rng.uniform(20, 120, n),                    # monthly bill
        "support_calls": rng.poisson(1.5, n),
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "region": rng.choice(["north", "south", "east", "west", "centre"], n),
    })
    for j in range(N_NOISE):                                   # irrelevant, on assorted scales
        df[f"noise{j}"] = rng.normal(0, 10.0 ** (j % 4), n)
    logit = (-2.2 + 1.5 * ((df.age - 49) / 18) ** 2            # young and old leave more
             - 0.8 * (np.log(df.income) - 10.5) / 0.6
             + 2.5 * (1 - df.tenure / 72) * (df.charges - 20) / 100  # new AND expensive
             + 0.4 * df.support_calls
             + df.plan.map({"basic": 0.6, "plus": 0.0, "pro": -0.6})
             + df.region.map({"north": 0.3, "south": -0.2, "east": 0.0, "west": 0.5, "centre": -0.4}))
    churn = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    # Filled in by the cancellation form, i.e. only AFTER a customer has churned: not available
    # when we would need the prediction. Classic target leakage.
    df["cancel_reason"] = np.where(churn == 1, rng.integers(1, 5, n), 0)
    return df, churn


def standardise(col):
    """z = (x - mean) / std, std with 1/N (what StandardScaler uses)."""
    return (col - col.mean()) / col.std(ddof=0)


def one_hot(col):
    """One 0/1 column per category (sorted), exactly one 1 per row: no fake order between
    categories, unlike coding them 0, 1, 2."""
    cats = np.sort(col.unique())
    return (col.to_numpy()[:, None] == cats[None, :]).astype(float)  # (N, n_categories)


def equal_width_bins(col, k):
    """Bin index 0..k-1 over k equal-width intervals between min and max."""
    # EXERCISE equal_width_bins: k + 1 equal-width edges from min to max; np.searchsorted on the inner edges (side='right': a value on an edge goes up)
    edges = np.linspace(col.min(), col.max(), k + 1)
    return np.searchsorted(edges[1:-1], col.to_numpy(), side="right")
    # END EXERCISE


def feature_pipeline(noise_cols):
    """Every learned step (means, stds, bin edges, categories, selection) sits inside the
    pipeline, so cross-validation refits it on each training fold and never sees the test fold."""
    interact = make_pipeline(StandardScaler(),
                             PolynomialFeatures(2, interaction_only=True, include_bias=False))  # a, b, a*b
    columns = ColumnTransformer([
        ("scale", StandardScaler(), ["support_calls"] + noise_cols),
        ("log", make_pipeline(FunctionTransformer(np.log, feature_names_out="one-to-one"), StandardScaler()),
         ["income"]),
        ("bins", KBinsDiscretizer(AGE_BINS, encode="onehot-dense", strategy="uniform"), ["age"]),
        ("onehot", OneHotEncoder(handle_unknown="ignore"), ["plan", "region"]),
        ("interact", interact, ["tenure", "charges"]),
    ])
    return make_pipeline(columns, SelectKBest(f_classif, k=K_BEST), LogisticRegression(max_iter=1000))


# ---------------------------------------------------------------------------------------------
# Two feature-design cases from interview questions, on generated data with planted structure.
# In both, the question "which features carry the signal" is answered by ablation, and the
# question "is the score honest" by asking of every feature: was it known when the prediction
# would have been made?
# ---------------------------------------------------------------------------------------------
# Case A: forecast tomorrow's price of a vegetable at one market, made at the end of day t-1.
VEG_START = "2019-01-01"  # first day of the generated price history
VEG_YEARS = 6             # years of daily prices (full run; VEG_YEARS_QUICK with --quick)
VEG_YEARS_QUICK = 3
VEG_TEST_DAYS = 365       # the last year is the time-split test period
AR_PHI = 0.9              # day-to-day persistence of the price shocks (an AR(1) process)
RAIN_DELAY = 3            # days from a heavy rain to the price rise (damaged harvest, closed roads)
HOLIDAYS = [(1, 1), (5, 1), (10, 1), (12, 25)]   # (month, day): demand peaks; pre-holiday days too
LAGS = (1, 7)             # price lags: yesterday, and the same weekday last week
ROLL = 7                  # days in the backward-looking rolling means
RIDGE_ALPHA = 1.0         # L2 strength of the price model (features standardised first)
# Case B: does a user own a car? Label from a survey on day label_day; browsing logs before/after.
N_USERS = 4000            # users (full run; N_USERS_QUICK with --quick)
N_USERS_QUICK = 600
LOG_DAYS = 120            # days of browsing logs per user
CAR_PAGES = ["car_insurance", "fuel_prices", "parking", "car_wash"]
OTHER_PAGES = ["news", "sports", "recipes", "weather", "shopping", "video"]
SERVICE_PAGE = "my_car_service"  # visible only to owners who registered their car at label_day
LATER_SHARE = 0.3         # users with the latest label dates form the time-split test set


def make_veg_prices(years, rng):
    """Daily price = level + yearly season + weekday pattern + holiday demand + delayed rain
    + last week's warmth + an AR(1) shock. Each term is a planted, known effect."""
    days = pd.date_range(VEG_START, periods=int(round(365.25 * years)), freq="D")
    n, doy = len(days), days.day_of_year.to_numpy()
    season = 1.0 * np.cos(2 * np.pi * (doy - 30) / 365.25)               # dear in winter
    weekday = np.array([0.0, -0.05, -0.05, 0.0, 0.1, 0.25, 0.15])[days.day_of_week]  # weekend demand
    holiday = np.array([(m, d) in HOLIDAYS for m, d in zip(days.month, days.day)])
    pre = np.roll(holiday, -1) | np.roll(holiday, -2)                     # stocking up before
    rain = rng.exponential(8.0, n) * (rng.random(n) < 0.3)               # mm, dry on most days
    anomaly = np.zeros(n)
    for t in range(1, n):
        anomaly[t] = 0.8 * anomaly[t - 1] + rng.normal(0, 1.5)
    temp = 14 - 9 * np.cos(2 * np.pi * (doy - 20) / 365.25) + anomaly    # deg C
    shock = np.zeros(n)
    for t in range(1, n):
        shock[t] = AR_PHI * shock[t - 1] + rng.normal(0, 0.25)
    rain_late = np.concatenate([np.zeros(RAIN_DELAY), rain[:-RAIN_DELAY]])
    temp_week = pd.Series(temp).shift(1).rolling(ROLL).mean().fillna(14).to_numpy()
    price = (3.0 + season + weekday + 0.6 * holiday + 0.3 * pre + 0.03 * rain_late
             - 0.04 * (temp_week - 14) + shock)
    wholesale = price - 0.8 + rng.normal(0, 0.05, n)   # the morning auction of the same day
    return pd.DataFrame({"price": price, "rain": rain, "temp": temp, "holiday": holiday.astype(float),
                         "visitors": rng.normal(1000, 100, n), "wholesale": wholesale},
                        index=days)   # visitors: counted at the market, no effect on the price


def price_features(df):
    """Features for the price on day t, as known at the end of day t-1. Observed series (price,
    rain, temperature, visitors) enter only shifted by at least one day; the calendar and the
    holiday dates are known in advance, so day t's own (and later) values of those are fair."""
    # EXERCISE price_features: calendar (year sin/cos, dow1..6, holiday, pre_holiday) may use day t; price lags LAGS, 7-day means and rain (RAIN_DELAY) only shifted; keep wholesale_LEAK = day t's wholesale (the trap)
    p, f = df.price, pd.DataFrame(index=df.index)
    doy = df.index.day_of_year.to_numpy()
    f["year_sin"], f["year_cos"] = np.sin(2 * np.pi * doy / 365.25), np.cos(2 * np.pi * doy / 365.25)
    for d in range(1, 7):                                          # Monday is the reference day
        f[f"dow{d}"] = (df.index.day_of_week == d).astype(float)
    f["holiday"] = df.holiday
    f["pre_holiday"] = (df.holiday.shift(-1, fill_value=0) + df.holiday.shift(-2, fill_value=0)).clip(0, 1)
    for k in LAGS:
        f[f"price_lag{k}"] = p.shift(k)
    f["price_mean7"] = p.shift(1).rolling(ROLL).mean()            # days t-7 .. t-1, never t
    f["rain_lag"] = df.rain.shift(RAIN_DELAY)
    f["temp_mean7"] = df.temp.shift(1).rolling(ROLL).mean()
    f["visitors_lag1"] = df.visitors.shift(1)
    # THE TRAP: the wholesale price of day t. It sits in the same table row as day t's retail
    # price and predicts it almost perfectly, but the auction runs on the morning of day t:
    # at the end of day t-1, when the forecast is made, it does not exist yet.
    f["wholesale_LEAK"] = df.wholesale
    return f
    # END EXERCISE


PRICE_GROUPS = {"calendar": ["year_sin", "year_cos"] + [f"dow{d}" for d in range(1, 7)],
                "holidays": ["holiday", "pre_holiday"],
                "price lags": [f"price_lag{k}" for k in LAGS] + ["price_mean7"],
                "weather": ["rain_lag", "temp_mean7"],
                "noise": ["visitors_lag1"]}


def ridge():
    return make_pipeline(StandardScaler(), Ridge(alpha=RIDGE_ALPHA))


def veg_case(rng, quick):
    df = make_veg_prices(VEG_YEARS_QUICK if quick else VEG_YEARS, rng)
    data.announce("daily vegetable prices", kind="generated",
                  detail=f"{len(df)} days from {VEG_START}, planted season, weekday, holidays, "
                         f"rain {RAIN_DELAY} days late, AR(1) shocks")
    feats = price_features(df)

    # Own-code check: change every observed value from day t0 on; the features of days up to
    # t0 (which may use days up to t0 - 1) must not move. Forgetting a shift fails this.
    t0 = len(df) // 2
    future = df.copy()
    for col in ("price", "rain", "temp", "visitors", "wholesale"):
        future.iloc[t0:, future.columns.get_loc(col)] += rng.normal(0, 5, len(df) - t0)
    moved = price_features(future).iloc[:t0 + 1] - feats.iloc[:t0 + 1]
    honest_cols = [c for cols in PRICE_GROUPS.values() for c in cols]
    worst = np.nanmax(np.abs(moved[honest_cols].to_numpy()))
    check.close("features of day t use data up to t-1 only (future perturbed)", worst, 0.0, atol=0.0)
    check.true("the same test flags the same-day wholesale price as looking ahead",
               np.nanmax(np.abs(moved["wholesale_LEAK"].to_numpy())) > 0.1, "wholesale_LEAK moved")

    # Time split: fit on the past, score on the last year. The forecast is for day t.
    feats = feats.assign(target=df.price).dropna()
    train, test = feats.iloc[:-VEG_TEST_DAYS], feats.iloc[-VEG_TEST_DAYS:]

    def time_mae(cols, test_rows=test):
        model = ridge().fit(train[cols], train.target)
        return mean_absolute_error(test_rows.target, model.predict(test_rows[cols]))

    naive = mean_absolute_error(test.target, test.price_lag1)
    full = time_mae(honest_cols)
    print(f"price, time split (train {train.index[0]:%Y-%m} .. {train.index[-1]:%Y-%m}, test the last "
          f"{VEG_TEST_DAYS} days): MAE {full:.3f} with all honest features, {naive:.3f} for 'same as yesterday'")
    check.less("honest features beat the 'same as yesterday' forecast", full, naive)

    # Which groups carry the signal: drop one group, refit, measure the loss on the test year.
    # This measures what ONLY that group knows: the season is also inside yesterday's price, so
    # dropping the calendar costs little even though the season is the largest planted term.
    loss = {g: time_mae([c for c in honest_cols if c not in cols]) - full for g, cols in PRICE_GROUPS.items()}
    print("drop one group -> test MAE rises by: " + ", ".join(f"{g} {d:+.3f}" for g, d in loss.items()))
    check.equal("the AR price lags carry the most signal (largest drop-one loss)", max(loss, key=loss.get),
                "price lags")
    check.greater("the delayed weather carries signal the noise column does not", loss["weather"],
                  loss["noise"] + 0.01)

    # The leak. With it, a random split looks like a breakthrough.
    leaky_cols = honest_cols + ["wholesale_LEAK"]
    folds = KFold(FOLDS, shuffle=True, random_state=0)
    random_mae = {name: -cross_val_score(ridge(), feats[cols], feats.target, cv=folds,
                                         scoring="neg_mean_absolute_error").mean()
                  for name, cols in (("honest", honest_cols), ("leaky", leaky_cols))}
    # A time split alone does not catch it: the leaky column still holds day t's auction.
    leaky_time = time_mae(leaky_cols)
    # The leak-free backtest builds each test day's features as they were known the evening
    # before: the latest wholesale price then is yesterday's.
    known = test.assign(wholesale_LEAK=df.wholesale.shift(1).loc[test.index])
    leaky_deployed = time_mae(leaky_cols, known)
    print(f"same-day wholesale leak: random-split MAE {random_mae['leaky']:.3f} (honest features "
          f"{random_mae['honest']:.3f}); time split with the leaky column {leaky_time:.3f}; "
          f"time split with the value known the evening before {leaky_deployed:.3f} vs honest model {full:.3f}")
    check.less("the leak makes the random split look 30%+ better than the honest time split",
               random_mae["leaky"], 0.7 * full)
    check.greater("as it would run (yesterday's wholesale price), the leaky model is worse than the honest one",
                  leaky_deployed, full)
    ranked = " > ".join(sorted(loss, key=loss.get, reverse=True))
    print(f"verdict (price): signal by drop-one loss {ranked}; the same-day wholesale "
          f"price promised MAE {random_mae['leaky']:.2f}, delivers {leaky_deployed:.2f}; the honest model "
          f"delivers {full:.2f}")
    return {"veg_mae": float(full), "veg_naive_mae": float(naive), "veg_leaky_random_mae": float(random_mae["leaky"]),
            "veg_leaky_deployed_mae": float(leaky_deployed)}


def make_browsing_logs(n_users, rng):
    """Users with a planted owner label, a survey (label) day, and page views. Owners read car
    pages more often (a per-user share, so the classes overlap); how active a user is varies
    ~10x and has nothing to do with owning a car. From label_day on, owners who registered
    their car also see SERVICE_PAGE: a page that exists because of the label."""
    owner = rng.random(n_users) < 0.35
    label_day = rng.integers(60, 110, n_users)
    rate = rng.lognormal(np.log(0.2), 1.4, n_users)                  # sessions per day
    car_share = np.where(owner, rng.beta(2, 20, n_users), rng.beta(1.2, 30, n_users))
    n_sessions = rng.poisson(rate * LOG_DAYS)
    user = np.repeat(np.arange(n_users), n_sessions)                 # (S,) one row per session
    day = rng.integers(0, LOG_DAYS, len(user))
    views = 1 + rng.poisson(2, len(user))
    user, session, day = np.repeat(user, views), np.repeat(np.arange(len(user)), views), np.repeat(day, views)
    is_car = rng.random(len(user)) < car_share[user]                 # (V,) one row per page view
    page = np.where(is_car, rng.choice(CAR_PAGES, len(user)), rng.choice(OTHER_PAGES, len(user)))
    service = owner[user] & (day >= label_day[user]) & (rng.random(len(user)) < 0.3)
    page = np.where(service, SERVICE_PAGE, page)
    logs = pd.DataFrame({"user": user, "session": session, "day": day, "page": page,
                         "label_day": label_day[user]})
    return logs, owner.astype(int), label_day


def user_features(logs, label_day, cut=True):
    """One row per user. With cut, only page views from strictly before the user's label date:
    what we could have known when the label was recorded."""
    # EXERCISE user_features: with cut keep views strictly before each user's label day; group by user: views, sessions, active days, car views / distinct car days, last car day, service views; then shares and recency
    seen = logs[logs.day < logs.label_day] if cut else logs
    car_day = seen.day.where(seen.page.isin(CAR_PAGES))             # NaN for non-car views
    g = seen.assign(car=car_day.notna(), car_day=car_day, service=seen.page == SERVICE_PAGE).groupby("user")
    f = pd.DataFrame({"views": g.size(), "sessions": g.session.nunique(), "active_days": g.day.nunique(),
                      "car_views": g.car.sum(), "car_days": g.car_day.nunique(),
                      "last_car_day": g.car_day.max(), "service_views": g.service.sum()})
    f = f.reindex(np.arange(len(label_day)))                         # users with no views: NaN
    f = f.fillna({c: 0 for c in f.columns if c != "last_car_day"})
    f["car_frac"] = f.car_views / f.views.clip(lower=1)              # share of views, not count
    f["car_day_frac"] = f.car_days / f.active_days.clip(lower=1)
    now = label_day if cut else LOG_DAYS                             # the last day the features saw
    f["days_since_car"] = (now - f.last_car_day).fillna(LOG_DAYS)    # recency of car interest
    return f
    # END EXERCISE


USER_GROUPS = {"activity": ["views", "sessions", "active_days"], "car counts": ["car_views", "car_days"],
               "car fractions": ["car_frac", "car_day_frac"], "recency": ["days_since_car"]}


def owner_model():
    """Every user feature is >= 0 and the counts are skewed (activity varies ~10x): log1p first."""
    return make_pipeline(FunctionTransformer(np.log1p), StandardScaler(), LogisticRegression())


def reference_user_row(logs, u, label_day):
    """The same aggregates for one user by a plain loop over the raw rows (the check's reference)."""
    views, sessions, days, car, car_days, service = 0, set(), set(), 0, set(), 0
    for row in logs[logs.user == u].itertuples():
        if row.day >= label_day[u]:
            continue
        views, car = views + 1, car + (row.page in CAR_PAGES)
        sessions.add(row.session), days.add(row.day)
        if row.page in CAR_PAGES:
            car_days.add(row.day)
        service += row.page == SERVICE_PAGE
    return [views, len(sessions), len(days), car, len(car_days), max(car_days, default=np.nan), service]


def car_case(rng, quick):
    n_users = N_USERS_QUICK if quick else N_USERS
    logs, owner, label_day = make_browsing_logs(n_users, rng)
    data.announce("browsing logs with car-ownership labels", kind="generated",
                  detail=f"{n_users} users, {owner.mean():.0%} owners, {len(logs)} page views over {LOG_DAYS} days")
    feats = user_features(logs, label_day)

    # Own-code checks. (1) The pandas aggregation equals a plain loop for a few users, the
    # most active one included. (2) Rewriting every log row on or after a user's label date
    # (its page and session) leaves the features unchanged: nothing after the cut contributes.
    raw_cols = ["views", "sessions", "active_days", "car_views", "car_days", "last_car_day", "service_views"]
    users = np.unique(np.concatenate([rng.choice(n_users, 6, replace=False), np.argsort(-feats.views.to_numpy())[:1]]))
    check.close("per-user aggregates vs a plain loop over the log rows", feats.loc[users, raw_cols].to_numpy(float),
                np.array([reference_user_row(logs, u, label_day) for u in users], dtype=float), atol=0.0)
    after = logs.day >= logs.label_day
    scrambled = logs.copy()
    scrambled.loc[after, "page"] = rng.choice(CAR_PAGES + [SERVICE_PAGE], after.sum())
    scrambled.loc[after, "session"] = scrambled.loc[after, "session"] + 10 ** 7
    check.close("no log on or after the label date reaches a feature (those logs rewritten)",
                user_features(scrambled, label_day).to_numpy(float), feats.to_numpy(float), atol=0.0)

    # Time split over users: the earliest label dates train, the latest test.
    later = label_day >= np.quantile(label_day, 1 - LATER_SHARE)
    honest_cols = [c for cols in USER_GROUPS.values() for c in cols]

    def time_auc(cols, f=feats):
        model = owner_model().fit(f.loc[~later, cols], owner[~later])
        return roc_auc_score(owner[later], model.predict_proba(f.loc[later, cols])[:, 1])

    # Which features carry the signal: each column alone, scored by its AUC over all users as in
    # section 2 (no model to fit, so no training noise; direction does not matter).
    single = {c: roc_auc_score(owner, feats[c]) for c in honest_cols}
    single = {c: max(a, 1 - a) for c, a in single.items()}
    honest = time_auc(honest_cols)
    print("car owner, single-column AUC: " + ", ".join(f"{c} {a:.3f}" for c, a in single.items())
          + f"; all of them, time split (later users) {honest:.3f}")
    check.greater("car-page share beats the raw car-page count (activity varies, ownership does not)",
                  single["car_frac"], single["car_views"] + 0.03)
    check.less("activity (page views) says (almost) nothing about ownership", single["views"], 0.6)

    # The leak: aggregate ALL logs, including after the label date, and the service page is there.
    leaky = user_features(logs, label_day, cut=False)
    leaky_cols = honest_cols + ["service_views"]
    random_auc = cross_val_score(owner_model(), leaky[leaky_cols], owner,
                                 cv=FOLDS, scoring="roc_auc").mean()
    leaky_time = time_auc(leaky_cols, leaky)
    print(f"with logs after the label date: random-split AUC {random_auc:.3f}, time split {leaky_time:.3f}; "
          f"leak-free (logs before the label date, time split) {honest:.3f}")
    print(f"single-column AUC of service_views: {roc_auc_score(owner, leaky.service_views):.3f} with all "
          f"logs, {roc_auc_score(owner, feats.service_views):.3f} before the label date (nobody sees it yet)")
    check.greater("the post-label page lifts the random-split AUC 0.1+ above the leak-free score",
                  random_auc, honest + 0.1)
    print(f"verdict (car): the car-page share carries the signal, raw counts partly measure activity; "
          f"the leak promised AUC {random_auc:.2f}, the cut at the label date gives {honest:.2f}")
    return {"car_auc": float(honest), "car_leaky_random_auc": float(random_auc)}


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    rng = np.random.default_rng(run.seed)
    n = 600 if run.quick else 5000
    df, y = make_customers(n, rng)
    noise_cols = [c for c in df if c.startswith("noise")]
    data.announce("customer-churn table", kind="generated",
                  detail=f"{n} customers, {y.mean():.0%} churned, {df.shape[1]} columns")
    # The test customers are set aside FIRST and looked at once, at the very end. Everything that
    # uses labels (the leak screen, the choice between feature sets) runs on the development rows.
    df, df_te, y, y_te = train_test_split(df, y, test_size=TEST_SHARE, stratify=y, random_state=run.seed)

    # 1. The building blocks by hand, equal to sklearn's transformers.
    check.close("standardise vs StandardScaler", standardise(df.charges).to_numpy(),
                StandardScaler().fit_transform(df[["charges"]])[:, 0], atol=1e-12)
    check.equal("one-hot vs OneHotEncoder", one_hot(df.region),
                OneHotEncoder(sparse_output=False).fit_transform(df[["region"]]))
    # Ages never sit exactly on a bin edge; 0, 1, ..., 12 in 6 bins puts every other value on one,
    # which is where "edge goes to the upper bin" (searchsorted side="right") shows.
    for name, col in (("ages", df.age), ("0..12, values on the edges", pd.Series(np.arange(13.0)))):
        kb = KBinsDiscretizer(AGE_BINS, encode="ordinal", strategy="uniform")
        check.equal(f"equal-width bins vs KBinsDiscretizer ({name})", equal_width_bins(col, AGE_BINS),
                    kb.fit_transform(col.to_frame())[:, 0].astype(int))

    # 2. Target leakage: score each column alone. A near-perfect single column usually means it
    # was recorded after the outcome (or is the outcome in disguise).
    single = {c: roc_auc_score(y, df[c]) for c in NUMERIC + noise_cols + ["cancel_reason"]}
    single = {c: max(a, 1 - a) for c, a in single.items()}    # direction does not matter
    flagged = [c for c, a in single.items() if a > LEAK_AUC]
    top = sorted(single.items(), key=lambda t: -t[1])[:4]
    print("single-column AUC:", ", ".join(f"{c} {a:.2f}" for c, a in top))
    check.equal("leak detector flags exactly the post-churn column", flagged, ["cancel_reason"])
    df, df_te = df.drop(columns="cancel_reason"), df_te.drop(columns="cancel_reason")

    # 3. Raw baseline vs pipeline, same folds, same metric.
    # Baseline: the numeric columns as they come (unscaled, no categories, no shapes).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        base = cross_val_score(LogisticRegression(max_iter=1000), df[NUMERIC + noise_cols], y,
                               cv=FOLDS, scoring="roc_auc")
    unconverged = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    print(f"raw baseline: ROC-AUC {base.mean():.3f} +- {base.std():.3f}"
          f" (lbfgs failed to converge in {unconverged}/{FOLDS} folds: unscaled inputs)")
    scaled = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression()), df[NUMERIC + noise_cols],
                             y, cv=FOLDS, scoring="roc_auc")
    print(f"same columns, standardised: ROC-AUC {scaled.mean():.3f} +- {scaled.std():.3f} "
          "(converges; AUC barely moves)")
    pipe = feature_pipeline(noise_cols)
    engineered = cross_val_score(pipe, df, y, cv=FOLDS, scoring="roc_auc")
    print(f"feature pipeline: ROC-AUC {engineered.mean():.3f} +- {engineered.std():.3f}")
    check.greater("pipeline beats the raw baseline by 0.03+ AUC", engineered.mean(), base.mean() + 0.03)
    # The rest of the gain comes from the shapes a linear model cannot make alone: log income,
    # age bins (the U), plan/region categories, the tenure x charges interaction.
    check.greater("pipeline beats the standardised columns too", engineered.mean(), scaled.mean())
    # Choose on the cross-validation scores, refit the winner on all development rows, and
    # measure it once on the held-out test customers.
    cv_means = {"raw columns": base.mean(), "standardised columns": scaled.mean(), "feature pipeline": engineered.mean()}
    chosen = max(cv_means, key=cv_means.get)
    check.equal("cross-validation picks the feature pipeline", chosen, "feature pipeline")
    pipe.fit(df, y)
    encoded = pipe[0].get_feature_names_out()                  # 'transformer__feature' names
    dropped = [name.split("__")[1] for name in encoded[~pipe[1].get_support()]]
    print(f"selection kept {K_BEST} of {len(encoded)} encoded features; dropped: {', '.join(dropped)}")
    test_auc = roc_auc_score(y_te, pipe.predict_proba(df_te)[:, 1])
    print(f"chosen on CV: {chosen}; refit on {len(y)} development customers, test ROC-AUC "
          f"{test_auc:.3f} on {len(y_te)} held-out customers (measured once)")

    # 4. Preprocessing leakage: choose features on ALL rows, then cross-validate. On pure noise
    # with random labels the honest answer is 50%; the leaky one looks like a discovery.
    m, d = (60, 1000) if run.quick else (100, 2000)
    x_noise, y_noise = rng.normal(size=(m, d)), rng.integers(0, 2, m)
    leaky_x = SelectKBest(f_classif, k=K_BEST).fit_transform(x_noise, y_noise)   # saw every label
    leaky = cross_val_score(LogisticRegression(), leaky_x, y_noise, cv=FOLDS).mean()
    honest = cross_val_score(make_pipeline(SelectKBest(f_classif, k=K_BEST), LogisticRegression()),
                             x_noise, y_noise, cv=FOLDS).mean()
    print(f"pure noise, {d} features: select-then-CV accuracy {leaky:.2f} vs select-inside-CV {honest:.2f}")
    check.greater("selecting before CV inflates accuracy by 0.2+", leaky, honest + 0.2)

    # 5. and 6. Two business cases (interview questions), each on its own generated data.
    metrics = {"baseline_auc": float(base.mean()), "pipeline_auc": float(engineered.mean()),
               "pipeline_test_auc": float(test_auc),
               "leaky_noise_acc": float(leaky), "honest_noise_acc": float(honest)}
    metrics.update(veg_case(rng, run.quick))
    metrics.update(car_case(rng, run.quick))
    band = lambda a: "about 50%" if a < 0.6 else "60% to 75%" if a <= 0.75 else "over 75%"   # noqa: E731
    return cli.finish(run, metrics, answers={
        "select_then_cv": (band(leaky), f"pure noise, {d} features: select-then-CV accuracy {leaky:.2f}, "
                           f"select-inside-CV {honest:.2f}"),
        "wholesale_deployed": ("better" if metrics["veg_leaky_deployed_mae"] < metrics["veg_mae"] else "worse",
                               f"MAE with the wholesale column as it would run {metrics['veg_leaky_deployed_mae']:.3f} "
                               f"vs honest model {metrics['veg_mae']:.3f} (its random split promised "
                               f"{metrics['veg_leaky_random_mae']:.3f})"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 02.17`) before running it;
# `python -m dlcourse check 02.17` compares your answers with what the run measures.
# PREDICT select_then_cv (about 50% / 60% to 75% / over 75%): random labels, pure-noise features; pick the best features on all rows, then cross-validate: what accuracy?
# ANSWER select_then_cv:
# PREDICT wholesale_deployed (better / worse): run as it would be (yesterday's wholesale price), is the model with the wholesale column better or worse than the honest one?
# ANSWER wholesale_deployed:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
