"""09 - Linear regression: normal equations and gradient descent (phase 02, week 3)

Goal: fit a linear model to the diabetes data twice, by the normal equations and by
      gradient descent, read its coefficients, and show both equal scikit-learn's.
Run:  python phase02-math/09-linear-regression.py            (all 442 patients; about 1 s on a 2-core CPU)
      python phase02-math/09-linear-regression.py --quick    (seconds, offline, used by the tests)
Expect: "[check] normal equations vs LinearRegression coef: max |diff| ~1e-12"; gradient
      descent lands on the same weights (diff ~4e-7) after ~8000 steps; test R^2 ~0.36 (full run);
      figure coefficients.png (loss curve and coefficients).
"""
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import train_test_split

from dlcourse import check, cli, data, plot
import matplotlib.pyplot as plt

TEST_FRACTION = 0.25   # held-out share of patients, to report R^2 on unseen data
RIDGE_ALPHA = 10.0     # L2 strength for the ridge variant (same meaning as sklearn's alpha)
GD_TOL = 1e-8          # stop gradient descent once the gradient norm ||grad L|| falls below this
MAX_STEPS = 50_000     # upper bound on gradient-descent steps


def load(run):
    """Diabetes: 10 baseline measurements -> disease progression one year later."""
    d = load_diabetes()
    x, y = d.data, d.target
    n = 200 if run.quick else len(x)  # --quick: the first 200 patients
    data.announce("scikit-learn diabetes (Efron et al. 2004)", real=True, detail=f"{n} patients")
    x_tr, x_te, y_tr, y_te = train_test_split(x[:n], y[:n], test_size=TEST_FRACTION,
                                              random_state=run.seed)
    # Standardise with *training* statistics only, so a coefficient means
    # "change in y per one standard deviation of this feature, others held fixed".
    mu, sd = x_tr.mean(0), x_tr.std(0)
    return (x_tr - mu) / sd, (x_te - mu) / sd, y_tr, y_te, d.feature_names


def add_bias(x):
    """Prepend a column of ones so the intercept is just weight 0: y_hat = X_1 w."""
    return np.hstack([np.ones((len(x), 1)), x])  # (N, 1 + D)


def normal_equations(x, y, alpha=0.0):
    """Minimise ||X w - y||^2 + alpha ||w_{1:}||^2 in closed form.

    Setting the gradient 2 X^T (X w - y) + 2 alpha P w to zero gives
        (X^T X + alpha P) w = X^T y,   P = diag(0, 1, ..., 1)  (the intercept is not penalised).
    We *solve* that system rather than forming the inverse: same answer, fewer rounding errors.
    """
    xb = add_bias(x)
    penalty = alpha * np.eye(xb.shape[1])
    penalty[0, 0] = 0.0
    return np.linalg.solve(xb.T @ xb + penalty, xb.T @ y)


def gradient_descent(x, y):
    """Minimise the mean squared error L(w) = (1/N) ||X w - y||^2 step by step.

    grad L = (2/N) X^T (X w - y). L is a quadratic with Hessian H = (2/N) X^T X, so
    plain gradient descent converges for any step lr < 2 / lambda_max(H); we take
    lr = 1 / lambda_max. Its speed is set by the condition number lambda_max / lambda_min:
    each step shrinks the error along the flattest direction by only (1 - 1/kappa).
    """
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


def r2(y, y_hat):
    """Coefficient of determination: 1 - SSE / SST (share of variance explained)."""
    return 1.0 - np.sum((y - y_hat) ** 2) / np.sum((y - y.mean()) ** 2)


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    x_tr, x_te, y_tr, y_te, names = load(run)

    # 1. Closed form, and the reference.
    w_ne = normal_equations(x_tr, y_tr)
    ref = LinearRegression().fit(x_tr, y_tr)
    check.close("normal equations vs LinearRegression coef", w_ne[1:], ref.coef_, atol=1e-8)
    check.close("normal equations vs LinearRegression intercept", w_ne[0], ref.intercept_, atol=1e-8)

    # 2. Gradient descent reaches the same minimum (the loss is convex, so there is only one).
    w_gd, losses, kappa, steps = gradient_descent(x_tr, y_tr)
    print(f"gradient descent: {steps} steps, condition number of X^T X = {kappa:.0f}")
    check.less("gradient descent loss fell", losses[-1], losses[0])
    check.close("gradient descent vs normal equations", w_gd, w_ne, atol=1e-4)

    # 3. Ridge: the same closed form with alpha on the diagonal.
    w_ridge = normal_equations(x_tr, y_tr, alpha=RIDGE_ALPHA)
    ridge = Ridge(alpha=RIDGE_ALPHA).fit(x_tr, y_tr)
    check.close("ridge closed form vs sklearn Ridge", w_ridge[1:], ridge.coef_, atol=1e-8)
    check.less("ridge shrinks the weight norm", np.linalg.norm(w_ridge[1:]), np.linalg.norm(w_ne[1:]))

    # 4. Interpretation. On standardised inputs, w_j is the change in predicted progression for
    # one standard deviation of feature j *with every other feature held fixed*. Correlated
    # features (s1 = total cholesterol, s2 = LDL) can get large weights of opposite sign that
    # mostly cancel: the fit is fine, but the individual numbers are not causal effects.
    test_r2 = r2(y_te, add_bias(x_te) @ w_ne)
    check.close("our R^2 vs LinearRegression.score", test_r2, ref.score(x_te, y_te), atol=1e-10)
    order = np.argsort(-np.abs(w_ne[1:]))
    print(f"intercept = mean prediction at average inputs = {w_ne[0]:.1f}")
    for j in order[:4]:
        print(f"  {names[j]:>4}: {w_ne[1 + j]:+7.1f} per standard deviation")
    print(f"test R^2 = {test_r2:.3f} (train R^2 = {r2(y_tr, add_bias(x_tr) @ w_ne):.3f})")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.semilogy(np.array(losses) - min(losses) + 1e-12)
    ax1.set(xlabel="step", ylabel="MSE - final MSE (log)",
            title=f"gradient descent, condition number {kappa:.0f}")
    pos = np.arange(len(names))
    ax2.barh(pos - 0.2, w_ne[1:], height=0.4, label="least squares")
    ax2.barh(pos + 0.2, w_ridge[1:], height=0.4, label=f"ridge alpha={RIDGE_ALPHA:g}")
    ax2.set_yticks(pos, names)
    ax2.axvline(0, color="k", lw=0.5)
    ax2.set(xlabel="change in progression per std of feature", title="coefficients")
    ax2.legend()
    plot.save(fig, run, "coefficients.png")
    return cli.finish(run, {"test_r2": float(test_r2), "gd_steps": steps, "condition_number": float(kappa)})


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    with cli.friendly_errors():
        main(parse_args())
