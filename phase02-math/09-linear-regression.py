"""09 - Linear regression: normal equations and gradient descent (phase 02, week 3)

Goal: fit a linear model with an intercept to the diabetes data in its original units, by the
      normal equations and by gradient descent on standardised features mapped back to those
      units, and show both equal scikit-learn's coefficients and intercept.
Run:  python phase02-math/09-linear-regression.py            (442 patients; about 1 s on a 2-core CPU)
      python phase02-math/09-linear-regression.py --quick    (seconds, offline, used by the tests)
Expect: (seed 0, full run) "[check] normal equations vs LinearRegression (intercept_, coef_)
        (relative): max |diff| ~2e-13"; intercept -306.0 while mean progression is 151.9;
        gradient descent on standardised features stops after 7961 steps and, mapped back to
        original units, matches scikit-learn's weights and intercept; test R^2 0.359;
        figure coefficients.png (loss curve and standardised coefficients).
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import train_test_split

from dlcourse import check, data, plot
import matplotlib.pyplot as plt

TEST_FRACTION = 0.25   # held-out share of patients, to report R^2 on unseen data
N_QUICK = 200          # --quick: the first 200 patients (the full run uses all 442)
RIDGE_ALPHA = 10.0     # L2 strength for the ridge variant (same meaning as sklearn's alpha)
GD_TOL = 1e-8          # stop gradient descent once the gradient norm ||grad L|| falls below this
MAX_STEPS = 50_000     # upper bound on gradient-descent steps
EPS = np.finfo(float).eps   # float64 round-off unit, 2.2e-16


def load(run):
    """Diabetes in its original units (scaled=False): age in years, sex coded 1/2, BMI in
    kg/m^2, mean blood pressure in mm Hg and six blood-serum measurements -> disease
    progression one year later. None of the features is centred near 0, so the intercept
    has real work to do (scikit-learn's default copy is centred, which would hide it)."""
    d = load_diabetes(scaled=False)
    x, y = d.data, d.target
    n = N_QUICK if run.quick else len(x)
    data.announce("scikit-learn diabetes (Efron et al. 2004), original units", kind="bundled",
                  detail=f"{n} patients")
    x_tr, x_te, y_tr, y_te = train_test_split(x[:n], y[:n], test_size=TEST_FRACTION,
                                              random_state=run.seed)
    return x_tr, x_te, y_tr, y_te, d.feature_names


def standardise(x_tr, x_te):
    """z = (x - mean) / sd with the *training* mean and sd, applied to both splits: the test
    patients must not shape the model, not even through a mean. A coefficient on z means
    "change in y per one standard deviation of this feature, others held fixed"."""
    mu, sd = x_tr.mean(0), x_tr.std(0)
    return (x_tr - mu) / sd, (x_te - mu) / sd, mu, sd


def add_bias(x):
    """Prepend a column of ones so the intercept is just weight 0: y_hat = X_1 w."""
    return np.hstack([np.ones((len(x), 1)), x])  # (N, 1 + D)


def normal_equations(x, y, alpha=0.0):
    """Minimise ||X w - y||^2 + alpha ||w_{1:}||^2 in closed form.

    Setting the gradient 2 X^T (X w - y) + 2 alpha P w to zero gives
        (X^T X + alpha P) w = X^T y,   P = diag(0, 1, ..., 1)  (the intercept is not penalised).
    We *solve* that system rather than forming the inverse: same answer, fewer rounding errors.
    """
    # EXERCISE normal_equations: with X_1 = add_bias(x) solve (X_1^T X_1 + alpha P) w = X_1^T y, P = the identity with P[0, 0] = 0 (no penalty on the intercept)
    xb = add_bias(x)
    penalty = alpha * np.eye(xb.shape[1])
    penalty[0, 0] = 0.0
    return np.linalg.solve(xb.T @ xb + penalty, xb.T @ y)
    # END EXERCISE


def gradient_descent(x, y):
    """Minimise the mean squared error L(w) = (1/N) ||X w - y||^2 step by step.

    grad L = (2/N) X^T (X w - y). L is a quadratic with Hessian H = (2/N) X^T X, so
    plain gradient descent converges for any step lr < 2 / lambda_max(H); we take
    lr = 1 / lambda_max. Its speed is set by the condition number lambda_max / lambda_min:
    each step shrinks the error along the flattest direction by only (1 - 1/kappa).
    """
    # EXERCISE gradient_descent: on X_1 = add_bias(x): lr = 1 / lambda_max of H = (2/N) X_1^T X_1; from w = 0 record the MSE, step w -= lr (2/N) X_1^T (X_1 w - y) until |grad| < GD_TOL; return (w, losses, kappa, step)
    xb = add_bias(x)
    n = len(y)
    hessian = 2.0 / n * xb.T @ xb
    eig = np.linalg.eigvalsh(hessian)          # ascending
    lr = 1.0 / eig[-1]
    w = np.zeros(xb.shape[1])
    losses = []
    for step in range(MAX_STEPS):
        residual = xb @ w - y                  # (N,)
        losses.append(float(residual @ residual / n))
        grad = 2.0 / n * xb.T @ residual       # (1 + D,)
        if np.linalg.norm(grad) < GD_TOL:
            break
        w -= lr * grad
    return w, losses, eig[-1] / eig[0], step
    # END EXERCISE


def to_original_units(w_std, mu, sd):
    """Weights fitted on z = (x - mu) / sd, rewritten for x itself:
        y = b + sum_j w_j (x_j - mu_j) / sd_j = (b - sum_j w_j mu_j / sd_j) + sum_j (w_j / sd_j) x_j
    The same model (same predictions), so it must equal the fit in original units."""
    # EXERCISE to_original_units: coefficient j becomes w_j / sd_j; the intercept b - sum_j w_j mu_j / sd_j; return them intercept first
    coef = w_std[1:] / sd
    return np.append(w_std[0] - coef @ mu, coef)     # (1 + D,): intercept first
    # END EXERCISE


def r2(y, y_hat):
    """Coefficient of determination: 1 - SSE / SST (share of variance explained)."""
    return 1.0 - np.sum((y - y_hat) ** 2) / np.sum((y - y.mean()) ** 2)


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    x_tr, x_te, y_tr, y_te, names = load(run)

    # 1. Closed form in original units, against the reference (its intercept_ included).
    w_ne = normal_equations(x_tr, y_tr)
    ref = LinearRegression().fit(x_tr, y_tr)
    ref_w = np.append(ref.intercept_, ref.coef_)
    # X^T X squares the condition number of X, and solving loses about cond * eps of relative
    # accuracy; scikit-learn centres the data first (better conditioned). So compare
    # relative to the largest weight, with a tolerance from the measured condition number.
    xb = add_bias(x_tr)
    cond_raw = np.linalg.cond(xb.T @ xb)
    scale = np.abs(ref_w).max()
    tol_ne = 10 * cond_raw * EPS
    check.close("normal equations vs LinearRegression (intercept_, coef_) (relative)",
                w_ne / scale, ref_w / scale, atol=tol_ne)
    # The intercept is the prediction at x = 0 (age 0, BMI 0, blood pressure 0, ...): far
    # outside the data and far from mean(y). A fit forced through the origin would be worse.
    w_origin = np.linalg.lstsq(x_tr, y_tr, rcond=None)[0]
    print(f"intercept {w_ne[0]:.1f} (mean progression {y_tr.mean():.1f}); train R^2 "
          f"{r2(y_tr, xb @ w_ne):.3f} with it, {r2(y_tr, x_tr @ w_origin):.3f} without")

    # 2. Gradient descent. In original units the Hessian's condition number is huge (bp in
    # the hundreds next to sex in {1, 2}), so GD would crawl for millions of steps;
    # standardising makes it small. Fit on z, then map the weights back to x.
    z_tr, z_te, mu, sd = standardise(x_tr, x_te)
    w_std, losses, kappa, steps = gradient_descent(z_tr, y_tr)
    print(f"gradient descent: {steps} steps; condition number of X^T X {cond_raw:.1e} in "
          f"original units, {kappa:.0f} standardised")
    # GD stops once |grad| < GD_TOL. For this quadratic grad = H (w - w*), so the weights are
    # then within GD_TOL / lambda_min(H) of the exact minimiser w*: that is the tolerance.
    zb = add_bias(z_tr)
    lam_min = np.linalg.eigvalsh(2.0 / len(y_tr) * zb.T @ zb)[0]
    delta = GD_TOL / lam_min
    w_ne_std = normal_equations(z_tr, y_tr)
    check.close("gradient descent vs normal equations (standardised features)", w_std, w_ne_std,
                atol=delta)
    # Mapped back, an error delta in w_std moves coefficient j by delta / sd_j and the
    # intercept by up to delta (1 + sum_j |mu_j| / sd_j).
    w_gd = to_original_units(w_std, mu, sd)
    bound = delta * max(1 + np.sum(np.abs(mu) / sd), np.max(1 / sd)) / scale + tol_ne
    check.close("gradient descent in original units vs LinearRegression (intercept_, coef_) "
                "(relative)", w_gd / scale, ref_w / scale, atol=bound)

    # 3. Ridge: the same closed form with alpha on the diagonal (not on the intercept), on
    # standardised features, where one alpha treats every feature alike.
    w_ridge = normal_equations(z_tr, y_tr, alpha=RIDGE_ALPHA)
    ridge = Ridge(alpha=RIDGE_ALPHA).fit(z_tr, y_tr)
    check.close("ridge closed form vs sklearn Ridge (intercept_, coef_)", w_ridge,
                np.append(ridge.intercept_, ridge.coef_), atol=1e-8)
    check.less("ridge shrinks the weight norm", np.linalg.norm(w_ridge[1:]),
               np.linalg.norm(w_ne_std[1:]))

    # 4. Test once. The standardised fit is the same model as the original-units one, so it
    # must predict the held-out patients identically: this is where standardising the test
    # split with its own statistics (a leak, and a different model) would show.
    pred_te = add_bias(x_te) @ w_ne
    check.close("standardised fit on the test split vs original-units fit (relative)",
                add_bias(z_te) @ w_ne_std / np.abs(y_te).max(), pred_te / np.abs(y_te).max(),
                atol=tol_ne)
    test_r2 = r2(y_te, pred_te)
    check.close("our test R^2 vs LinearRegression.score", test_r2, ref.score(x_te, y_te),
                atol=1e-10)
    # Interpretation. Per standard deviation, coefficients are comparable across features;
    # in original units they are not (per year of age vs per mm Hg). Correlated features
    # (s1 = total cholesterol, s2 = LDL) can get large weights of opposite sign that mostly
    # cancel: the fit is fine, but the individual numbers are not causal effects.
    order = np.argsort(-np.abs(w_ne_std[1:]))
    for j in order[:4]:
        print(f"  {names[j]:>4}: {w_ne_std[1 + j]:+7.1f} per standard deviation "
              f"({w_ne[1 + j]:+.2f} per unit)")
    print(f"test R^2 = {test_r2:.3f} (train R^2 = {r2(y_tr, xb @ w_ne):.3f})")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.semilogy(np.array(losses) - min(losses) + 1e-12)
    ax1.set(xlabel="step", ylabel="MSE - final MSE (log)",
            title=f"gradient descent (standardised), condition number {kappa:.0f}")
    pos = np.arange(len(names))
    ax2.barh(pos - 0.2, w_ne_std[1:], height=0.4, label="least squares")
    ax2.barh(pos + 0.2, w_ridge[1:], height=0.4, label=f"ridge alpha={RIDGE_ALPHA:g}")
    ax2.set_yticks(pos, names)
    ax2.axvline(0, color="k", lw=0.5)
    ax2.set(xlabel="change in progression per std of feature", title="coefficients")
    ax2.legend()
    plot.save(fig, run, "coefficients.png")
    gain = cond_raw / kappa
    return cli.finish(run, {"test_r2": float(test_r2), "intercept": float(w_ne[0]),
                            "gd_steps": steps, "condition_number": float(kappa),
                            "condition_number_original_units": float(cond_raw)}, answers={
        "intercept_sign": ("positive" if w_ne[0] > 0 else "negative",
                           f"intercept {w_ne[0]:.1f} while the mean progression is "
                           f"{y_tr.mean():.1f}: the prediction at age 0, BMI 0, bp 0, ..."),
        "conditioning_gain": ("under 10x" if gain < 10 else "10x to 1000x" if gain <= 1000
                              else "over 1000x",
                              f"condition number {cond_raw:.1e} in original units, {kappa:.0f} "
                              f"standardised: {gain:.0e}x; GD then needs {steps} steps "
                              "(coefficients.png, left)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 02.09`) before running it;
# `python -m dlcourse check 02.09` compares your answers with what the run measures.
# PREDICT intercept_sign (positive / negative): the mean disease progression is about 150; what sign has the intercept fitted in original units?
# ANSWER intercept_sign:
# PREDICT conditioning_gain (under 10x / 10x to 1000x / over 1000x): by what factor does standardising the features shrink the condition number of X^T X?
# ANSWER conditioning_gain:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
