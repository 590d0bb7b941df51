"""04 - Pandas basics: Series, DataFrame, groupby, merge (phase 01, week 1)

Goal: treat pandas like a small in-memory SQL engine over a generated online-shop data set:
      index alignment, loc vs iloc, copy-on-write, groupby, merge and pivot tables.
Run:  python phase01-python-ds/04-pandas-basics.py            (about 6 s on a 2-core CPU)
      python phase01-python-ds/04-pandas-basics.py --quick    (seconds, offline, used by the tests)
Expect: "[check] groupby(category) vs a manual dict loop ... OK"; orders by unknown users
        appear as left_only in the merge; on 1M orders (full run) groupby is ~7x faster
        than the Python loop (89 ms vs 644 ms on a shared 2-core CPU).
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import time
import warnings

import numpy as np
import pandas as pd

from dlcourse import check, data

N_ORDERS_QUICK = 2_000     # orders generated in --quick
N_ORDERS_FULL = 1_000_000  # full run: enough rows for the loop-vs-groupby timing to matter
N_USERS = 300              # registered users; orders also reference a few deleted ones
DELETED_USERS = 20         # user ids present in orders but missing from the users table
CATEGORIES = ["books", "games", "garden", "kitchen", "music"]
COUNTRIES = ["CN", "DE", "FR", "JP", "US"]


def make_shop(rng, n_orders):
    """Two tables, as a web back end would store them: users and orders (a foreign key)."""
    users = pd.DataFrame({
        "user_id": np.arange(N_USERS),
        "country": pd.Categorical(rng.choice(COUNTRIES, N_USERS), categories=COUNTRIES),
        "plan": rng.choice(["free", "pro"], N_USERS, p=[0.8, 0.2]),
    })
    orders = pd.DataFrame({
        "order_id": np.arange(n_orders),
        "user_id": rng.integers(0, N_USERS + DELETED_USERS, n_orders),  # some ids are gone
        "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n_orders),
                                                             unit="D"),
        "category": rng.choice(CATEGORIES, n_orders),
        "quantity": rng.integers(1, 6, n_orders),
        "unit_price": rng.gamma(2.0, 12.0, n_orders).round(2),   # skewed, like real prices
    })
    orders["revenue"] = orders["quantity"] * orders["unit_price"]  # vectorised column maths
    return users, orders


def series_alignment():
    """A Series is a 1-D array plus an index; arithmetic aligns on index labels, not position."""
    stock = pd.Series({"apple": 5, "pear": 2, "plum": 7})
    sold = pd.Series({"pear": 1, "apple": 3, "kiwi": 4})
    left = stock - sold                  # union of labels; a label missing on one side -> NaN
    manual = {k: stock[k] - sold[k] if k in stock and k in sold else np.nan
              for k in sorted(set(stock.index) | set(sold.index))}
    print(f"  stock - sold = {left.to_dict()}")
    check.close("Series arithmetic aligns on labels (vs a dict computation)",
                left.sort_index().to_numpy(), list(manual.values()))
    filled = stock.sub(sold, fill_value=0)   # treat a missing side as 0 instead of NaN
    check.equal("sub(fill_value=0) leaves no NaN", int(filled.isna().sum()), 0, demo=True)


def loc_iloc_and_cow(orders):
    """loc selects by label, iloc by position; they agree only until the index is reordered.
    Everything checked here is pandas' own behaviour: [demo] lines, not counted."""
    by_price = orders.sort_values("unit_price")      # index labels travel with their rows
    print(f"  after sort_values: .iloc[0] is the cheapest order (label {by_price.index[0]}), "
          f".loc[0] is still order_id 0")
    check.equal("sorted.loc[0] is the row labelled 0", int(by_price.loc[0, "order_id"]), 0,
                demo=True)
    check.equal("sorted.iloc[0] is the minimum price", float(by_price.iloc[0]["unit_price"]),
                float(orders["unit_price"].min()), demo=True)
    big = orders.loc[orders["quantity"] >= 4, ["order_id", "quantity", "revenue"]]
    print(f"  orders.loc[quantity >= 4, 3 columns] -> {big.shape}")

    # Copy-on-write (always on in pandas 3): every selection behaves like a copy.
    frame = orders.head(10)
    subset = frame[frame["quantity"] > 2]
    subset["quantity"] = 0                         # changes subset only, never frame
    check.true("modifying a filtered subset leaves the parent unchanged",
               (frame["quantity"] > 0).all(), "parent quantities all still > 0", demo=True)
    # Chained assignment (df[col][mask] = v) writes into a temporary: pandas 3 warns and
    # the frame stays as it was. The one-step form df.loc[mask, col] = v is the way.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame["quantity"][frame["quantity"] > 2] = 0
    check.true("chained assignment is a no-op and warns",
               (frame["quantity"] > 0).all() and any("Chained" in type(w.message).__name__
                                                     for w in caught),
               f"warnings: {sorted({type(w.message).__name__ for w in caught})}", demo=True)
    frame.loc[frame["quantity"] > 2, "quantity"] = 0
    check.equal("df.loc[mask, col] = v does write", int((frame["quantity"] > 2).sum()), 0,
                demo=True)


def manual_category_stats(orders):
    """The same aggregation in plain Python: one pass, a dict of running totals."""
    acc = {}
    for cat, qty, rev in zip(orders["category"].to_numpy(), orders["quantity"].to_numpy(),
                             orders["revenue"].to_numpy()):
        total, count, qty_sum = acc.get(cat, (0.0, 0, 0))
        acc[cat] = (total + rev, count + 1, qty_sum + qty)
    return {cat: (t, c, q / c) for cat, (t, c, q) in sorted(acc.items())}


def groupby_demo(orders):
    """split-apply-combine: SELECT category, SUM(revenue), COUNT(*), AVG(quantity) GROUP BY."""
    t0 = time.perf_counter()
    stats = orders.groupby("category").agg(revenue=("revenue", "sum"),
                                           orders=("order_id", "count"),
                                           mean_qty=("quantity", "mean"))
    t_groupby = time.perf_counter() - t0
    t0 = time.perf_counter()
    manual = manual_category_stats(orders)
    t_loop = time.perf_counter() - t0
    print(stats.round(2).to_string())
    check.equal("groups found by groupby == groups in the loop", list(stats.index), list(manual))
    check.close("groupby(category) vs a manual dict loop (revenue, count, mean qty)",
                stats.to_numpy(), np.array(list(manual.values())), atol=1e-6, rtol=1e-12)
    # transform returns one value per ROW (the group's value broadcast back), unlike agg.
    share = orders["revenue"] / orders.groupby("category")["revenue"].transform("sum")
    check.close("transform('sum'): each category's revenue shares add up to 1",
                share.groupby(orders["category"]).sum().to_numpy(), np.ones(len(CATEGORIES)),
                atol=1e-9)
    print(f"  groupby {t_groupby * 1e3:.1f} ms vs Python loop {t_loop * 1e3:.1f} ms "
          f"on {len(orders):,} rows")
    return t_groupby, t_loop


def merge_and_pivot(orders, users):
    """JOIN orders to users, then a country x category pivot table."""
    # validate= makes pandas raise if users had duplicate ids (a silent row explosion otherwise);
    # indicator= adds _merge telling which side each row came from.
    joined = orders.merge(users, on="user_id", how="left", validate="many_to_one",
                          indicator=True)
    orphans = int((joined["_merge"] == "left_only").sum())
    known = set(users["user_id"])
    manual_orphans = sum(uid not in known for uid in orders["user_id"].to_numpy())
    print(f"  left join: {len(joined):,} rows; {orphans} orders by deleted users (country NaN)")
    check.equal("left join keeps every order", len(joined), len(orders))
    check.equal("left_only rows == orders whose user_id is not in users", orphans,
                manual_orphans)
    inner = orders.merge(users, on="user_id", how="inner")
    check.equal("inner join drops exactly the orphans", len(inner), len(orders) - orphans,
                demo=True)

    pivot = inner.pivot_table(index="country", columns="category", values="revenue",
                              aggfunc="sum", fill_value=0, margins=True, observed=True)
    print((pivot / 1000).round(1).to_string(float_format="{:.1f}k".format))
    by_country = inner.groupby("country", observed=True)["revenue"].sum()
    # The grand total against plain numpy: the revenue of every order whose user exists.
    known_rows = np.isin(orders["user_id"].to_numpy(), users["user_id"].to_numpy())
    check.close("pivot grand total == numpy sum of revenue over orders of known users",
                pivot.loc["All", "All"], orders["revenue"].to_numpy()[known_rows].sum(),
                atol=1e-6, rtol=1e-12)
    # Two pandas routes to the same table agree: [demo] lines.
    check.close("pivot margins ('All' column) == groupby(country).sum()",
                pivot["All"].drop("All").to_numpy(), by_country.to_numpy(), atol=1e-6,
                rtol=1e-12, demo=True)
    # The same table without margins is groupby on two keys, then unstack the inner key.
    two_keys = inner.groupby(["country", "category"], observed=True)["revenue"].sum().unstack()
    check.close("pivot_table == groupby([country, category]).sum().unstack()",
                pivot.drop(index="All", columns="All").to_numpy(), two_keys.to_numpy(),
                atol=1e-6, rtol=1e-12, demo=True)
    monthly = inner.groupby(inner["date"].dt.to_period("M"))["revenue"].sum()
    print(f"  best month: {monthly.idxmax()} ({monthly.max():,.0f}); "
          f"worst: {monthly.idxmin()} ({monthly.min():,.0f})")
    return orphans, float(pivot.loc["All", "All"])


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    rng = np.random.default_rng(run.seed)
    n = N_ORDERS_QUICK if run.quick else N_ORDERS_FULL
    users, orders = make_shop(rng, n)
    data.announce("synthetic online shop generated with numpy (users + orders)",
                  kind="generated", detail=f"{len(users)} users, {len(orders):,} orders")
    print(orders.head(3).to_string())
    print(f"  dtypes: {dict(orders.dtypes.astype(str))}")
    print("1) Series and index alignment")
    series_alignment()
    print("2) loc, iloc and copy-on-write")
    loc_iloc_and_cow(orders)
    print("3) groupby")
    t_groupby, t_loop = groupby_demo(orders)
    print("4) merge and pivot")
    orphans, total = merge_and_pivot(orders, users)
    return cli.finish(run, {"orders": n, "orphan_orders": orphans, "revenue_known_users": total,
                            "groupby_ms": round(t_groupby * 1e3, 2),
                            "loop_ms": round(t_loop * 1e3, 2)})


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
