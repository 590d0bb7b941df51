"""09 - Time-series forecasting: windows, baselines, an LSTM (phase 06, week 9)

Goal: cut a series into (input window, target) pairs with a chronological train / validation /
      test split that cannot leak the future, build the baselines every forecast must beat
      (persistence, seasonal persistence, a least-squares autoregressive model), then an LSTM.
Run:  python phase06-rnn/09-time-series.py            (generated series; ~6 s on a CPU, measured)
      python phase06-rnn/09-time-series.py --quick    (seconds, offline, used by the tests)
Expect: the leak checks pass (every target lies after its inputs, no window straddles two
      splits, poking the future changes nothing in the past splits, the scaler's statistics
      come from the training part only); the AR fit equals statsmodels' AutoReg (max |diff|
      ~1e-14); on the test part the LSTM's MAE is well under persistence's (the check asks
      for < 0.8x). --quick, seeds 0-4: LSTM 0.26-0.31, persistence 0.47-0.55, seasonal
      persistence 0.23-0.31, AR 0.21-0.27. Full run (seed 0, 60 epochs, 2-core CPU shared with
      other jobs, one thread: 5.7 s, 9 s with imports): LSTM 0.221, AR 0.221, seasonal
      persistence 0.278, persistence 0.502 (noise std 0.25). forecasts.png: the test part
      with every forecast, and the LSTM's train/validation curves.
"""
from dlcourse import cli

EPOCHS = 60          # LSTM training epochs, full run (the best one is chosen on validation)
QUICK_EPOCHS = 15    # --quick


def parse_args(argv=None):
    return cli.parser(__doc__, epochs=(EPOCHS, QUICK_EPOCHS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # a mistyped flag fails here, before torch loads

import copy  # noqa: E402  (flags first: the heavy imports come after the parser)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from statsmodels.tsa.ar_model import AutoReg  # noqa: E402

from dlcourse import check, data, plot  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402  (after dlcourse.plot: headless backend)

LENGTH = 1200        # points in the generated series (full run)
QUICK_LENGTH = 480   # --quick
PERIOD = 12          # season length in steps (think: months in a year)
TREND = 0.004        # trend per step, in units of the seasonal amplitude
NOISE = 0.25         # std of the white noise added to every point
WINDOW = 2 * PERIOD  # input length: two seasons, so seasonal persistence has its lag inside
HORIZON = 1          # steps ahead to forecast (every function below takes any horizon)
FRACTIONS = (0.7, 0.15, 0.15)   # train / validation / test, in time order
HIDDEN = 32          # LSTM hidden units
LR = 1e-2            # Adam learning rate
BATCH = 32           # windows per step
MARGIN = 0.8         # the LSTM's test MAE must be below MARGIN x persistence's


def make_series(length, seed):
    """Trend + two harmonics of one season + white noise (generated; the 'truth' is known)."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    season = np.sin(2 * np.pi * t / PERIOD) + 0.5 * np.sin(4 * np.pi * t / PERIOD + 1.0)
    return TREND * t + season + NOISE * rng.standard_normal(length)


# ---- windows and splits ---------------------------------------------------------------------

def chronological_split(n, fractions=FRACTIONS):
    """[(start, stop)] for train, validation, test: consecutive blocks, oldest first.
    Never shuffle a series before splitting: a random split puts tomorrow in the training set."""
    assert abs(sum(fractions) - 1) < 1e-9, f"fractions must add up to 1, got {fractions}"
    cuts = np.round(np.cumsum((0,) + tuple(fractions)) * n).astype(int)
    return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]


def make_windows(values, start, stop, window, horizon):
    """All (input, target) pairs lying wholly inside values[start:stop].

    Pair i reads the window values[s : s + window] and predicts the next `horizon` values
    values[s + window : s + window + horizon], with s = start + i. Returns X (N, window),
    Y (N, horizon) and the positions they came from, idx_in (N, window) and idx_out
    (N, horizon), so the checks can look at *where* each number came from."""
    # EXERCISE make_windows: N = stop - start - window - horizon + 1 windows starting at s = start + i; inputs at s .. s + window - 1, targets at s + window .. s + window + horizon - 1 (index arrays, then values[idx])
    n = stop - start - window - horizon + 1
    assert n > 0, f"a split of {stop - start} points is too short for {window} + {horizon}"
    first = start + np.arange(n)[:, None]                       # (N, 1) window starts
    idx_in = first + np.arange(window)                          # (N, window)
    idx_out = first + window + np.arange(horizon)               # (N, horizon)
    return values[idx_in], values[idx_out], idx_in, idx_out
    # END EXERCISE


def fit_scaler(values, start, stop):
    """Mean and std of values[start:stop] only: the training part. Statistics of the whole
    series would tell the model the level and spread of the future it is asked to forecast."""
    part = values[start:stop]
    return float(part.mean()), float(part.std())


def prepare(values, window=WINDOW, horizon=HORIZON, fractions=FRACTIONS):
    """Split, fit the scaler on the training part, scale everything with it, cut windows.
    Returns dict(splits, scaler, z, windows=[(X, Y, idx_in, idx_out) per split])."""
    # EXERCISE prepare: chronological_split, fit the scaler on the TRAINING part only, scale the whole series with it, then make_windows inside each split
    splits = chronological_split(len(values), fractions)
    mean, std = fit_scaler(values, *splits[0])
    z = (values - mean) / std                                   # same map for every split
    windows = [make_windows(z, a, b, window, horizon) for a, b in splits]
    return {"splits": splits, "scaler": (mean, std), "z": z, "windows": windows}
    # END EXERCISE


# ---- baselines ------------------------------------------------------------------------------

def persistence(X, horizon):
    """Forecast 'no change': every future step equals the last value seen. (N, horizon)"""
    return np.repeat(X[:, -1:], horizon, axis=1)


def seasonal_persistence(X, horizon, period):
    """Forecast 'same as one season ago': step k (1-based) of the future is X[t + k - period]."""
    assert horizon <= period <= X.shape[1], "needs horizon <= period <= window"
    start = X.shape[1] - period
    return X[:, start:start + horizon]


def fit_ar(X, Y):
    """Linear autoregression y = [x, 1] @ W by least squares, one column of W per horizon
    step, solved through the normal equations (A^T A) W = A^T Y. Returns W (window + 1, horizon)."""
    # EXERCISE fit_ar: A = [X, 1] (a column of ones last, for the bias); solve (A^T A) W = A^T Y
    A = np.hstack([X, np.ones((len(X), 1))])                    # (N, window + 1): bias last
    return np.linalg.solve(A.T @ A, A.T @ Y)
    # END EXERCISE


def predict_ar(W, X):
    return np.hstack([X, np.ones((len(X), 1))]) @ W             # (N, horizon)


# ---- the LSTM -------------------------------------------------------------------------------

class LSTMForecaster(nn.Module):
    """nn.LSTM over the window, a linear head on the last hidden state.

    It sees the window relative to its last value and predicts the *change* from that value:
    a trend carries the test part above every level seen in training, and a network asked
    to output raw levels would have to extrapolate there. Persistence is the special case
    'predict zero change', so the LSTM only has to learn what persistence misses."""

    def __init__(self, horizon, hidden=HIDDEN):
        super().__init__()
        self.lstm = nn.LSTM(input_size=1, hidden_size=hidden, batch_first=True)
        self.head = nn.Linear(hidden, horizon)

    def forward(self, x):                                       # x: (B, T) scaled values
        last = x[:, -1:]                                        # (B, 1)
        out, _ = self.lstm((x - last).unsqueeze(-1))            # (B, T, hidden)
        return last + self.head(out[:, -1])                     # (B, horizon)


def mse(model, X, Y, device):
    model.eval()
    with torch.no_grad():
        pred = model(torch.as_tensor(X, dtype=torch.float32, device=device))
        return float(((pred.cpu().double() - torch.as_tensor(Y)) ** 2).mean())


def train_forecaster(train, val, epochs, device, seed, hidden=HIDDEN, lr=LR, batch=BATCH):
    """Adam on MSE for `epochs` epochs; the epoch with the lowest validation MSE is kept.
    train, val: (X, Y) numpy arrays. Returns the model and the per-epoch history."""
    torch.manual_seed(seed)                                     # same initial weights per seed
    model = LSTMForecaster(train[1].shape[1], hidden).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    X = torch.as_tensor(train[0], dtype=torch.float32, device=device)
    Y = torch.as_tensor(train[1], dtype=torch.float32, device=device)
    order_gen = torch.Generator().manual_seed(seed)
    hist = {"train_mse": [], "val_mse": []}
    best = (float("inf"), None, 0)
    for epoch in range(epochs):
        model.train()
        for idx in torch.randperm(len(X), generator=order_gen).split(batch):
            loss = ((model(X[idx]) - Y[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        hist["train_mse"].append(mse(model, *train, device))
        hist["val_mse"].append(mse(model, *val, device))
        if hist["val_mse"][-1] < best[0]:
            best = (hist["val_mse"][-1], copy.deepcopy(model.state_dict()), epoch + 1)
    model.load_state_dict(best[1])
    hist["best_epoch"] = best[2]
    model.eval()
    return model, hist


def predict(model, X, device):
    with torch.no_grad():
        return model(torch.as_tensor(X, dtype=torch.float32, device=device)).cpu().double().numpy()


def mae(pred, truth):
    return float(np.abs(np.asarray(pred) - np.asarray(truth)).mean())


def rmse(pred, truth):
    return float(np.sqrt(((np.asarray(pred) - np.asarray(truth)) ** 2).mean()))


# ---- checks ---------------------------------------------------------------------------------

def check_windows(prep, window, horizon):
    """Where every number of every window came from: targets after inputs, no straddling,
    and the windows equal numpy's sliding_window_view of each split."""
    names = ("train", "validation", "test")
    later = all((io.min(axis=1) > ii.max(axis=1)).all() for _, _, ii, io in prep["windows"])
    check.true("every target lies after all of its window's inputs", later,
               "min(target index) > max(input index) in every window of every split")
    inside = [ii.min() >= a and io.max() < b
              for (a, b), (_, _, ii, io) in zip(prep["splits"], prep["windows"])]
    check.equal("splits whose windows stay inside them (no window straddles two splits)",
                [n for n, ok in zip(names, inside) if ok], list(names))
    z = prep["z"]
    for (a, b), (X, Y, _, _), name in zip(prep["splits"], prep["windows"], names):
        ref = np.lib.stride_tricks.sliding_window_view(z[a:b], window + horizon)
        check.equal(f"{name} windows vs sliding_window_view of the {name} part",
                    np.hstack([X, Y]), ref)


def check_no_future_leak(values, window, horizon, seed):
    """Poke every value after the end of a split: nothing computed for that split or the
    earlier ones may change (scaler, inputs, targets). A leak of any kind fails this."""
    base = prepare(values, window, horizon)
    rng = np.random.default_rng(seed)
    for k, name in ((0, "train"), (1, "validation")):
        cut = base["splits"][k][1]
        poked = values.copy()
        poked[cut:] += 100 * rng.standard_normal(len(values) - cut)  # a wildly different future
        other = prepare(poked, window, horizon)
        same = other["scaler"] == base["scaler"] and all(
            np.array_equal(a, b) for j in range(k + 1)
            for a, b in zip(base["windows"][j], other["windows"][j]))
        check.true(f"changing every value after the {name} part leaves scaler and windows "
                   f"up to {name} unchanged", same,
                   f"scaler {base['scaler'][0]:.4f}, {base['scaler'][1]:.4f} before and "
                   f"{other['scaler'][0]:.4f}, {other['scaler'][1]:.4f} after")
    a, b = base["splits"][0]
    check.close("scaler (mean, std) vs numpy on the training part only", base["scaler"],
                (values[a:b].mean(), values[a:b].std()), atol=1e-12)


def check_baselines(prep, values, period):
    """Baselines against the series itself, read by position: persistence of target t is the
    value at t - k for horizon step k; seasonal persistence the value at t - period."""
    mean, std = prep["scaler"]
    X, Y, _, idx_out = prep["windows"][2]
    h = Y.shape[1]
    steps = np.arange(1, h + 1)                                  # horizon step k = 1..h
    check.close("persistence vs the series value k steps before each target",
                persistence(X, h) * std + mean, values[idx_out - steps], atol=1e-9)
    check.close("seasonal persistence vs the series value one period before each target",
                seasonal_persistence(X, h, period) * std + mean, values[idx_out - period],
                atol=1e-9)


def check_ar(prep, window):
    """Our normal-equation AR vs statsmodels' AutoReg on the same (scaled) training part,
    same lags, a constant. AutoReg orders its parameters const, lag 1 (newest), lag 2, ..."""
    X, Y, _, _ = prep["windows"][0]
    a, b = prep["splits"][0]
    W = fit_ar(X, Y[:, :1])[:, 0]                               # (window + 1,): lags then bias
    ours = np.r_[W[-1], W[:-1][::-1]]                           # const, newest lag first
    ref = AutoReg(prep["z"][a:b], lags=window, trend="c").fit().params
    check.close(f"least-squares AR({window}) vs statsmodels AutoReg", ours, ref, atol=1e-8)


def main(args) -> dict:
    run = cli.start(args, __file__)
    torch.set_num_threads(1)   # same numbers whatever the core count
    length = QUICK_LENGTH if run.quick else LENGTH
    values = make_series(length, run.seed)
    data.announce("seasonal series with trend and noise", "generated",
                  detail=f"{length} points, period {PERIOD}, noise std {NOISE}")
    prep = prepare(values)
    (a, b), (c, d), (e, f) = prep["splits"]
    print(f"split by time: train [{a}, {b}), validation [{c}, {d}), test [{e}, {f}); "
          f"windows of {WINDOW} -> {HORIZON}: {[len(w[0]) for w in prep['windows']]}")
    check_windows(prep, WINDOW, HORIZON)
    check_no_future_leak(values, WINDOW, HORIZON, run.seed)
    check_baselines(prep, values, PERIOD)
    check_ar(prep, WINDOW)

    train, val, test = [(X, Y) for X, Y, _, _ in prep["windows"]]
    model, hist = train_forecaster(train, val, run.epochs, run.device, run.seed)
    print(f"LSTM: {run.epochs} epochs, best validation MSE {min(hist['val_mse']):.4f} "
          f"at epoch {hist['best_epoch']} (that model is the one tested)")

    # Test once, in the series' own units (undo the scaling).
    mean, std = prep["scaler"]
    X, Y = test
    names = {"persistence": "persistence", "seasonal": "seasonal persistence",
             "ar": f"AR({WINDOW}) least squares", "lstm": "LSTM"}
    forecasts = {"persistence": persistence(X, HORIZON),
                 "seasonal": seasonal_persistence(X, HORIZON, PERIOD),
                 "ar": predict_ar(fit_ar(*train), X),
                 "lstm": predict(model, X, run.device)}
    forecasts = {k: v * std + mean for k, v in forecasts.items()}
    truth = Y * std + mean
    scores = {k: (mae(v, truth), rmse(v, truth)) for k, v in forecasts.items()}
    print(f"{'test part, ' + str(len(Y)) + ' windows':<28} {'MAE':>7} {'RMSE':>7}")
    for k, (m, r) in scores.items():
        print(f"{names[k]:<28} {m:7.3f} {r:7.3f}")
    print(f"(noise std is {NOISE}: no forecast can have an RMSE much below it)")
    check.less(f"LSTM test MAE vs {MARGIN} x persistence's", scores["lstm"][0],
               MARGIN * scores["persistence"][0])

    fig, axes = plt.subplots(1, 2, figsize=(14, 4.2), gridspec_kw={"width_ratios": [2.2, 1]})
    t = prep["windows"][2][3][:, 0]                             # time of each first target
    axes[0].plot(np.arange(len(values)), values, color="0.8", lw=1, label="series")
    axes[0].plot(t, truth[:, 0], "k.-", lw=1, label="truth (test)")
    for (name, pred), style in zip(forecasts.items(), (":", "--", "-.", "-")):
        axes[0].plot(t, pred[:, 0], style, lw=1.4,
                     label=f"{names[name]} (MAE {scores[name][0]:.3f})")
    axes[0].set(xlim=(e - 2 * PERIOD, f), xlabel="time step",
                title=f"{HORIZON}-step-ahead forecasts on the test part")
    axes[0].axvline(e, color="0.5", lw=0.8)
    axes[0].legend(fontsize=8, loc="upper left")
    axes[1].plot(range(1, run.epochs + 1), hist["train_mse"], label="train")
    axes[1].plot(range(1, run.epochs + 1), hist["val_mse"], label="validation")
    axes[1].axvline(hist["best_epoch"], color="0.5", ls=":", label="chosen epoch")
    axes[1].set(xlabel="epoch", ylabel="MSE (scaled units)", yscale="log", title="LSTM training")
    axes[1].legend()
    plot.save(fig, run, "forecasts.png")
    print("Question: persistence is hard to beat one step ahead on a smooth series; "
          "what happens to its error, and the LSTM's, at a horizon of a full season?")
    worst = max(scores, key=lambda k: scores[k][0])
    return cli.finish(run, {"epochs": run.epochs, "best_epoch": hist["best_epoch"],
                            **{f"test_mae_{k}": v[0] for k, v in scores.items()},
                            "test_rmse_lstm": scores["lstm"][1],
                            "test_rmse_persistence": scores["persistence"][1]}, answers={
        "worst_forecast": (names[worst].split(" least")[0].lower().replace(f"({WINDOW})", ""),
                           "test MAE: " + ", ".join(f"{names[k]} {m:.3f}" for k, (m, _) in
                                                    scores.items()) + " (forecasts.png, left)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 06.09`) before running it;
# `python -m dlcourse check 06.09` compares your answers with what the run measures.
# PREDICT worst_forecast (persistence / seasonal persistence / ar / lstm): one step ahead on a seasonal series with trend and noise: which forecast has the largest test MAE?
# ANSWER worst_forecast:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
