"""16 - Bias, variance and regularisation (phase 02, week 3)

Goal: read learning curves to tell the four train/validation error cases apart (and what to do
      in each), see L1 make weights exactly zero where L2 only shrinks them, and stop early.
Run:  python phase02-math/16-bias-variance.py            (20 repeats per point; about 5 s on a 2-core CPU)
      python phase02-math/16-bias-variance.py --quick    (seconds, offline, used by the tests)
Expect: each of the four generated cases is diagnosed as built; our lasso (ISTA) equals sklearn's
      Lasso (diff ~1e-12) with ~19 of 30 weights exactly zero vs 0 for ridge; early stopping keeps
      a validation MSE well below the fully trained one; figures learning_curves.png, regularisation.png.
"""
import numpy as np
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from dlcourse import check, cli, data, plot
import matplotlib.pyplot as plt

NOISE = 0.3              # std of the label noise: no model can beat MSE = NOISE^2 (the floor)
N_VAL = 500              # validation points per repeat
SIZES = (10, 20, 40, 80, 160, 320)  # training-set sizes along the learning curve
N_JUNK = 40              # irrelevant random features added in the "both" case
HIGH = 0.5 * NOISE ** 2  # a gap above half the noise floor counts as "high"
ALPHA_L1 = 0.1           # lasso strength (sklearn's alpha: 1/(2N)||y - Xw||^2 + alpha ||w||_1)
ALPHA_L2 = 10.0          # ridge strength (sklearn's alpha: ||y - Xw||^2 + alpha ||w||^2)
RFF = 200                # random Fourier features for the early-stopping demo (> its 30 points)

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
    bias, variance = train_err - floor > HIGH, val_err - train_err > HIGH
    return {(True, True): "high bias + high variance", (True, False): "high bias",
            (False, True): "high variance", (False, False): "good fit"}[(bias, variance)]


def lasso_ista(x, y, alpha, steps):
    """Minimise 1/(2N)||y - Xw||^2 + alpha ||w||_1 by proximal gradient descent (ISTA).

    The L1 term has no gradient at 0, so split each step: a gradient step on the smooth part,
    then the *proximal* step of the L1 part, soft-thresholding: w_j <- sign(w_j) max(|w_j| - lr*alpha, 0).
    Any weight whose pull from the data is weaker than alpha lands exactly on 0: sparsity.
    (Ridge's penalty alpha w^2 has gradient 2 alpha w, which fades as w -> 0: it shrinks
    every weight smoothly but never to exactly zero.) Data are centred, so there is no intercept.
    """
    n = len(y)
    lr = 1.0 / np.linalg.eigvalsh(x.T @ x / n)[-1]           # 1 / Lipschitz constant of the gradient
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        w = w - lr * x.T @ (x @ w - y) / n
        w = np.sign(w) * np.maximum(np.abs(w) - lr * alpha, 0.0)
    return w


def early_stopping_curves(rng, steps):
    """Gradient descent on RFF random Fourier features of 30 noisy points: more parameters than
    points, so running to convergence interpolates the noise. Returns train/val MSE per step."""
    x = rng.uniform(0, 1, 30)
    y = target(x) + NOISE * rng.normal(size=30)
    x_val = rng.uniform(0, 1, N_VAL)
    y_val = target(x_val) + NOISE * rng.normal(size=N_VAL)
    freq, phase = rng.normal(0, 5 * np.pi, RFF), rng.uniform(0, 2 * np.pi, RFF)
    p, p_val = (np.cos(np.outer(t, freq) + phase) * np.sqrt(2 / RFF) for t in (x, x_val))  # (N, RFF)
    lr = 1.0 / np.linalg.eigvalsh(2 / 30 * p.T @ p)[-1]
    w, train, val = np.zeros(RFF), [], []
    for _ in range(steps):
        r = p @ w - y
        train.append(np.mean(r ** 2))
        val.append(np.mean((p_val @ w - y_val) ** 2))
        w -= lr * 2 / 30 * p.T @ r
    return np.array(train), np.array(val)


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    rng = np.random.default_rng(run.seed)
    repeats, gd_steps = (2, 1000) if run.quick else (20, 5000)
    floor = NOISE ** 2
    data.announce("generated: y = sin(2 pi x) + noise, plus junk features", real=True, generated=True,
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

    # 3. Early stopping: keep the weights from the step with the best validation error.
    train_es, val_es = early_stopping_curves(rng, gd_steps)
    best = int(np.argmin(val_es))
    print(f"early stopping: best val MSE {val_es[best]:.3f} at step {best} vs {val_es[-1]:.3f} "
          f"after {gd_steps} steps (train {train_es[-1]:.3f}, below the floor {floor:.2f}: it fits noise)")
    # Fails if validation error only ever falls (nothing to stop early for).
    check.less("early-stopped val MSE is below the fully trained one", val_es[best], val_es[-1])

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
    ax2.plot(np.arange(1, gd_steps + 1), train_es, label="train")
    ax2.plot(np.arange(1, gd_steps + 1), val_es, label="validation")
    ax2.axvline(best + 1, ls="--", c="k", label=f"early stop (step {best})")
    ax2.axhline(floor, ls=":", c="gray", label="noise floor")
    ax2.set(xscale="log", yscale="log", xlabel="gradient step", ylabel="MSE", title="early stopping")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    plot.save(fig, run, "regularisation.png")
    return cli.finish(run, {"zeros_l1": zeros_l1, "zeros_l2": zeros_l2, "early_stop_step": best,
                            "val_best": float(val_es[best]), "val_final": float(val_es[-1])})


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    with cli.friendly_errors():
        main(parse_args())
