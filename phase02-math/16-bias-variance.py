"""16 - Bias, variance and regularisation (phase 02, week 3)

Goal: read learning curves to tell the four train/validation error cases apart (and what to do
      in each), see L1 make weights exactly zero where L2 only shrinks them, and stop early.
Run:  python phase02-math/16-bias-variance.py            (20 repeats per point; about 10 s on a 2-core CPU)
      python phase02-math/16-bias-variance.py --quick    (seconds, offline, used by the tests)
      --steps N sets the gradient-descent steps of the early-stopping demo (5000; 1000 with --quick)
Expect: each of the four generated cases is diagnosed as built; our lasso (ISTA) equals sklearn's
      Lasso (diff ~1e-12) with 19 of 30 weights exactly zero vs 0 for ridge; gradient descent's
      curves equal their SVD closed form; stopped on validation at step 11, the model's test MSE is
      0.113 vs 0.252 when fully trained (seed 0, full); figures learning_curves.png, regularisation.png.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

STEPS = 5000             # gradient-descent steps of the early-stopping demo (--steps overrides)
QUICK_STEPS = 1000       # --quick


def parse_args(argv=None):
    return cli.parser(__doc__, steps=(STEPS, QUICK_STEPS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import numpy as np
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from dlcourse import check, data, plot
import matplotlib.pyplot as plt

NOISE = 0.3              # std of the label noise: no model can beat MSE = NOISE^2 (the floor)
N_VAL = 500              # validation points per repeat
SIZES = (10, 20, 40, 80, 160, 320)  # training-set sizes along the learning curve
N_JUNK = 40              # irrelevant random features added in the "both" case
HIGH = 0.5 * NOISE ** 2  # a gap above half the noise floor counts as "high"
ALPHA_L1 = 0.1           # lasso strength (sklearn's alpha: 1/(2N)||y - Xw||^2 + alpha ||w||_1)
ALPHA_L2 = 10.0          # ridge strength (sklearn's alpha: ||y - Xw||^2 + alpha ||w||^2)
RFF = 200                # random Fourier features for the early-stopping demo (> its 30 points)
N_ES = 30                # training points of the early-stopping demo

RECIPES = {
    "high bias": "model too simple: add capacity or features, regularise less, train longer "
                 "(more data will not help)",
    "high variance": "model memorises: more data, stronger regularisation (L2/L1/dropout), early stopping, "
                     "a smaller model, data augmentation",
    "high bias + high variance": "fix the bias first (better model/features), then the variance "
                                 "(drop the junk features)",
    "good fit": "train and validation near the floor: check on the test set once, and ship",
}


def target(x):
    return np.sin(2 * np.pi * x)


def sample(n, rng):
    """x ~ U(0, 1), y = sin(2 pi x) + noise, plus N_JUNK columns of pure noise (used by one case)."""
    x = rng.uniform(0, 1, n)
    return np.c_[x, rng.normal(size=(n, N_JUNK))], target(x) + NOISE * rng.normal(size=n)


CASES = {  # name -> (which columns the model sees, model)
    "high bias": (1, LinearRegression()),                          # a line through a sine
    "high variance": (1, KNeighborsRegressor(1)),                  # 1-NN: copies the nearest label
    "high bias + high variance": (1 + N_JUNK, LinearRegression()), # a line, plus 40 columns of noise to fit
    "good fit": (1, make_pipeline(PolynomialFeatures(5), StandardScaler(), Ridge(1e-3))),
}


def learning_curve(cols, model, repeats, rng):
    """Mean train and validation MSE at each training size, over fresh draws of the data."""
    train, val = np.zeros(len(SIZES)), np.zeros(len(SIZES))
    for _ in range(repeats):
        x_val, y_val = sample(N_VAL, rng)
        for i, n in enumerate(SIZES):
            x, y = sample(n, rng)
            model.fit(x[:, :cols], y)
            train[i] += np.mean((model.predict(x[:, :cols]) - y) ** 2) / repeats
            val[i] += np.mean((model.predict(x_val[:, :cols]) - y_val) ** 2) / repeats
    return train, val


def diagnose(train_err, val_err, floor):
    """Bias shows as training error above the floor; variance as the validation-training gap."""
    # EXERCISE diagnose: bias: training error more than HIGH above the floor; variance: validation more than HIGH above training; map the pair to one of the four labels
    bias, variance = train_err - floor > HIGH, val_err - train_err > HIGH
    return {(True, True): "high bias + high variance", (True, False): "high bias",
            (False, True): "high variance", (False, False): "good fit"}[(bias, variance)]
    # END EXERCISE


def lasso_ista(x, y, alpha, steps):
    """Minimise 1/(2N)||y - Xw||^2 + alpha ||w||_1 by proximal gradient descent (ISTA).

    The L1 term has no gradient at 0, so split each step: a gradient step on the smooth part,
    then the *proximal* step of the L1 part, soft-thresholding: w_j <- sign(w_j) max(|w_j| - lr*alpha, 0).
    Any weight whose pull from the data is weaker than alpha lands exactly on 0: sparsity.
    (Ridge's penalty alpha w^2 has gradient 2 alpha w, which fades as w -> 0: it shrinks
    every weight smoothly but never to exactly zero.) Data are centred, so there is no intercept.
    """
    # EXERCISE lasso_ista: lr = 1 / largest eigenvalue of X^T X / N; from w = 0: gradient step on 1/(2N)||y - Xw||^2, then soft-threshold each w_j by lr * alpha
    n = len(y)
    lr = 1.0 / np.linalg.eigvalsh(x.T @ x / n)[-1]           # 1 / Lipschitz constant of the gradient
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        w = w - lr * x.T @ (x @ w - y) / n
        w = np.sign(w) * np.maximum(np.abs(w) - lr * alpha, 0.0)
    return w
    # END EXERCISE


def rff_problem(rng):
    """RFF random Fourier features of N_ES noisy training points, plus validation and test sets
    from the same curve: more parameters than training points, so running gradient descent to
    convergence interpolates the noise. Returns (features, targets) for train, val, test."""
    freq, phase = rng.normal(0, 5 * np.pi, RFF), rng.uniform(0, 2 * np.pi, RFF)
    sets = []
    for n in (N_ES, N_VAL, N_VAL):
        x = rng.uniform(0, 1, n)
        p = np.cos(np.outer(x, freq) + phase) * np.sqrt(2 / RFF)         # (n, RFF)
        sets.append((p, target(x) + NOISE * rng.normal(size=n)))
    return sets


def early_stopping(p, y, p_val, y_val, steps):
    """Gradient descent on the training MSE, watching the validation MSE at every step and
    keeping the weights from the step where it was lowest (the final weights are candidates too:
    if validation error never turns up, early stopping keeps them). Returns the train and
    validation MSE of w_0 ... w_steps, the kept weights and the final ones."""
    # EXERCISE early_stopping: lr = 1 / largest eigenvalue of (2/N) P^T P; for steps + 1 points record train and validation MSE, keep a copy of w at the lowest validation MSE, step by 2 P^T r / N
    n = len(y)
    lr = 1.0 / np.linalg.eigvalsh(2 / n * p.T @ p)[-1]     # 1 / largest curvature of the MSE
    w, train, val = np.zeros(p.shape[1]), [], []
    best = (np.inf, w)
    for step in range(steps + 1):
        r = p @ w - y
        train.append(np.mean(r ** 2))
        val.append(np.mean((p_val @ w - y_val) ** 2))
        if val[-1] < best[0]:
            best = (val[-1], w.copy())
        if step == steps:
            break
        w -= lr * 2 / n * p.T @ r                           # gradient of mean(r^2) is 2 P^T r / n
    return np.array(train), np.array(val), best[1], w
    # END EXERCISE


def gd_closed_form(p, y, p_val, y_val, steps):
    """The same curves without running gradient descent. With P = U S V^T and w_0 = 0, each step
    multiplies the error along the k-th singular direction by f_k = 1 - lr 2 s_k^2 / n, so
        w_t = V diag((1 - f^t) / s) U^T y:
    directions with large s_k (smooth functions) are fitted within a few steps, those with tiny s_k
    (the wiggles that fit the noise) only after ~1/(1 - f_k) steps. Stopping early = keeping
    the first kind only, a filter on the spectrum much like ridge regression."""
    n = len(y)
    u, s, vt = np.linalg.svd(p, full_matrices=False)       # u (n, n), s (n,), vt (n, RFF)
    lr = 1.0 / np.linalg.eigvalsh(2 / n * p.T @ p)[-1]
    # 1 - f_k, capped just below 1: the top direction has f = 0 up to rounding (lr = 1 / curvature)
    shrink = np.minimum(2 * lr * s ** 2 / n, 1 - 1e-15)
    t = np.arange(steps + 1)[:, None]                      # (steps + 1, 1)
    coef = -np.expm1(t * np.log1p(-shrink)) * (u.T @ y / s)  # (steps + 1, n): (1 - f^t) U^T y / s, no cancellation
    curves = [np.mean((coef @ (q @ vt.T).T - target) ** 2, axis=1)      # (steps + 1,)
              for q, target in ((p, y), (p_val, y_val))]
    return curves


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    rng = np.random.default_rng(run.seed)
    repeats = 2 if run.quick else 20
    floor = NOISE ** 2
    data.announce("y = sin(2 pi x) + noise, plus junk features", kind="generated",
                  detail=f"noise floor MSE {floor:.2f}; {repeats} repeats per point")

    # 1. Learning curves for four models built to land in the four cases.
    curves = {}
    for name, (cols, model) in CASES.items():
        train, val = learning_curve(cols, model, repeats, rng)
        curves[name] = (train, val)
        found = diagnose(train[-1], val[-1], floor)
        print(f"{name:>26}: at N={SIZES[-1]} train {train[-1]:.3f} val {val[-1]:.3f} -> {found}")
        print(f"{'':>28}recipe: {RECIPES[found]}")
        check.equal(f"diagnosis of the '{name}' model", found, name)

    # 2. L1 vs L2 on a sparse problem: 30 features, 5 of which matter.
    n, d = (60, 30) if run.quick else (200, 30)
    x = rng.normal(size=(n, d))
    w_true = np.zeros(d)
    w_true[:5] = [3.0, -2.0, 1.5, 1.0, -0.5]
    y = x @ w_true + rng.normal(size=n)
    xc, yc = x - x.mean(0), y - y.mean()
    w_l1 = lasso_ista(xc, yc, ALPHA_L1, steps=3000)
    ref = Lasso(alpha=ALPHA_L1, tol=1e-12, max_iter=100_000).fit(x, y)
    check.close("ISTA lasso vs sklearn Lasso", w_l1, ref.coef_, atol=1e-5)
    w_l2 = Ridge(alpha=ALPHA_L2).fit(x, y).coef_
    zeros_l1, zeros_l2 = int(np.sum(w_l1 == 0)), int(np.sum(w_l2 == 0))
    print(f"exact zeros: L1 {zeros_l1}/{d}, L2 {zeros_l2}/{d}  (truth: {d - 5} irrelevant features)")
    check.greater("L1 gives more exactly-zero weights than L2", zeros_l1, zeros_l2)

    # 3. Early stopping: keep the weights from the step with the best VALIDATION error, then
    # measure the kept and the fully trained weights once on a separate test set.
    (p, y_es), (p_val, y_val), (p_te, y_te) = rff_problem(rng)
    train_es, val_es, w_stop, w_end = early_stopping(p, y_es, p_val, y_val, run.steps)
    steps = len(train_es) - 1                               # updates made: curves hold w_0 ... w_steps
    check.close(f"gradient-descent train and val MSE, all {steps} steps, vs the SVD closed form",
                np.r_[train_es, val_es], np.concatenate(gd_closed_form(p, y_es, p_val, y_val, steps)),
                atol=1e-9, rtol=1e-9)
    best = int(np.argmin(val_es))
    check.close(f"kept weights are step {best}'s, the lowest validation MSE of the run",
                np.mean((p_val @ w_stop - y_val) ** 2), val_es[best], atol=1e-12)
    test_stop, test_end = (np.mean((p_te @ w - y_te) ** 2) for w in (w_stop, w_end))
    print(f"early stopping: best val MSE {val_es[best]:.3f} at step {best} vs {val_es[-1]:.3f} "
          f"after {steps} steps (train {train_es[-1]:.3f}, below the floor {floor:.2f}: it fits noise)")
    print(f"test MSE, measured once: early-stopped {test_stop:.3f} vs fully trained {test_end:.3f}")
    check.less("early-stopped test MSE is no worse than the fully trained one", test_stop, test_end,
               strict=False)

    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    for ax, (name, (train, val)) in zip(axes.ravel(), curves.items()):
        ax.plot(SIZES, train, "o-", label="train")
        ax.plot(SIZES, val, "s-", label="validation")
        ax.axhline(floor, ls="--", c="gray", label=f"noise floor {floor:.2f}")
        ax.set(xscale="log", ylim=(0, 0.5), title=name, xlabel="training examples", ylabel="MSE")
        ax.legend(fontsize=8)
    fig.suptitle("learning curves: bias = train above the floor, variance = gap between the curves\n"
                 "(validation errors above 0.5 run off the chart)")
    fig.tight_layout()
    plot.save(fig, run, "learning_curves.png")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    ax1.stem(np.arange(d) - 0.15, w_l1, linefmt="C0-", markerfmt="C0o", basefmt=" ",
             label=f"L1, {zeros_l1} zeros")
    ax1.stem(np.arange(d) + 0.15, w_l2, linefmt="C1-", markerfmt="C1s", basefmt=" ",
             label=f"L2, {zeros_l2} zeros")
    ax1.plot(np.arange(d), w_true, "k_", ms=12, label="true weight")
    ax1.set(xlabel="feature", ylabel="weight", title="L1 zeroes irrelevant weights, L2 shrinks all")
    ax1.legend()
    ax2.plot(np.arange(1, steps + 2), train_es, label="train")   # x = step + 1: a log axis has no 0
    ax2.plot(np.arange(1, steps + 2), val_es, label="validation")
    ax2.axvline(best + 1, ls="--", c="k", label=f"early stop (step {best})")
    ax2.axhline(floor, ls=":", c="gray", label="noise floor")
    ax2.set(xscale="log", yscale="log", xlabel="gradient steps taken + 1", ylabel="MSE", title="early stopping")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    plot.save(fig, run, "regularisation.png")
    return cli.finish(run, {"steps": steps, "zeros_l1": zeros_l1, "zeros_l2": zeros_l2,
                            "early_stop_step": best, "val_best": float(val_es[best]),
                            "val_final": float(val_es[-1]), "test_early_stopped": float(test_stop),
                            "test_fully_trained": float(test_end)}, answers={
        "ridge_zeros": ("none" if zeros_l2 == 0 else "some", f"exactly zero weights: ridge {zeros_l2}/{d}, "
                        f"lasso {zeros_l1}/{d} (regularisation.png)"),
        "early_or_full": ("early-stopped" if test_stop < test_end else "fully trained",
                          f"test MSE early-stopped (step {best}) {test_stop:.3f} vs fully trained "
                          f"{test_end:.3f} (regularisation.png)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 02.16`) before running it;
# `python -m dlcourse check 02.16` compares your answers with what the run measures.
# PREDICT ridge_zeros (none / some): 25 of the 30 features are irrelevant; how many of ridge's weights come out exactly zero?
# ANSWER ridge_zeros:
# PREDICT early_or_full (early-stopped / fully trained): more features than training points; which model has the lower test MSE?
# ANSWER early_or_full:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
