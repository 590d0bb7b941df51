"""03 - Derivatives, gradients and Jacobians (phase 02, week 2)

Goal: derive derivatives, gradients and Jacobians by hand, check them with finite
      differences, and see that torch.autograd computes the same numbers.
Run:  python phase02-math/03-derivatives-gradients.py    (442 rows; about 7 s on a 2-core CPU)
      python phase02-math/03-derivatives-gradients.py --quick    (150 rows; about 6 s, offline)
Expect: the forward difference's error falls like h^1 and the central one's like h^2 until
        round-off takes over (figure finite_differences.png); the hand-derived gradient of the
        diabetes least-squares loss passes the gradient check (relative error ~1e-9) and
        equals torch.autograd to ~1e-16; a planted bug (a forgotten 1/n) is caught.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import numpy as np
import torch
from sklearn.datasets import load_diabetes

from dlcourse import check, data, plot
import matplotlib.pyplot as plt

X0 = 1.3                         # where the 1-D derivative is examined
STEPS_H = np.logspace(-15, 0, 61)  # finite-difference step sizes h
FIT_RANGE = (1e-4, 1e-2)         # h range where truncation error dominates (slope fit)
N_QUICK = 150                    # diabetes rows in --quick (the full run uses all 442)
GRAD_CHECK_H = 1e-5              # central-difference step for the gradient check (float64)
GRAD_CHECK_TOL = 1e-7            # norm-wise relative error that passes a float64 gradient check
D_IN, D_OUT = 5, 4               # sizes for the Jacobian examples


# --- 1. A derivative and its finite-difference estimates -----------------------------
# f(x) = sin(x) e^{-x/2}.  Product rule: f'(x) = cos(x) e^{-x/2} - (1/2) sin(x) e^{-x/2}.
# Taylor: f(x+h) = f + h f' + h^2/2 f'' + h^3/6 f''' + ...
#   forward  (f(x+h) - f(x)) / h        = f' + h/2 f'' + ...     error O(h)
#   central  (f(x+h) - f(x-h)) / (2h)   = f' + h^2/6 f''' + ...  error O(h^2) (even terms cancel)
# Round-off adds about eps |f| / h (eps = 2.2e-16 in float64), so shrinking h helps only
# until that term wins: the error curve is a V, bottoming out near h ~ sqrt(eps) (forward)
# or h ~ eps^(1/3) (central).
def f(x):
    return np.sin(x) * np.exp(-x / 2)


def df(x):
    return np.cos(x) * np.exp(-x / 2) - 0.5 * np.sin(x) * np.exp(-x / 2)


def forward_diff(fn, x, h):
    return (fn(x + h) - fn(x)) / h


def central_diff(fn, x, h):
    return (fn(x + h) - fn(x - h)) / (2 * h)


# --- 2. Gradient of a function of two variables ---------------------------------------
# g(x, y) = sin(x) cos(y) + 0.1 (x^2 + y^2). The gradient stacks the partial derivatives
# (differentiate in one variable, hold the other fixed):
#   dg/dx = cos(x) cos(y) + 0.2 x,    dg/dy = -sin(x) sin(y) + 0.2 y.
# The directional derivative along a unit vector u is grad g . u = |grad g| cos(angle), largest
# when u points along the gradient: the gradient is the direction of steepest ascent, and
# it is perpendicular to the contour lines (along a contour, g does not change).
def g(x, y):
    return np.sin(x) * np.cos(y) + 0.1 * (x ** 2 + y ** 2)


def grad_g(x, y):
    return np.array([np.cos(x) * np.cos(y) + 0.2 * x, -np.sin(x) * np.sin(y) + 0.2 * y])


# --- 3. Jacobians: derivatives of vector-valued functions -----------------------------
# For F: R^n -> R^m the Jacobian J[i, j] = dF_i / dx_j has shape (m, n).
#   layer  F(x) = tanh(W x + c):  J = diag(1 - tanh^2(W x + c)) W           (chain rule)
#   softmax p_i = e^{z_i} / sum_k e^{z_k}:  dp_i/dz_j = p_i (delta_ij - p_j),  J = diag(p) - p p^T
# Every row of the softmax Jacobian sums to 0: the p_i always sum to 1, so no change of z
# can change that sum.
def layer_jacobian(W, c, x):
    a = np.tanh(W @ x + c)                            # (m,)
    return (1 - a ** 2)[:, None] * W                  # diag(1 - a^2) @ W without building diag


def softmax_np(z):
    e = np.exp(z - z.max())                           # shift for stability (lesson 07)
    return e / e.sum()


def softmax_jacobian(z):
    # EXERCISE softmax_jacobian: with p = softmax(z), dp_i/dz_j = p_i (1[i = j] - p_j): a diagonal minus an outer product
    p = softmax_np(z)
    return np.diag(p) - np.outer(p, p)                # (m, m)
    # END EXERCISE


def numeric_jacobian(fn, x, h=1e-6):
    """Central differences, one input coordinate (= one Jacobian column) at a time."""
    cols = []
    for j in range(len(x)):
        e = np.zeros_like(x)
        e[j] = h
        cols.append((fn(x + e) - fn(x - e)) / (2 * h))
    return np.stack(cols, axis=1)                     # (m, n)


# --- 4. The gradient of a loss with respect to parameters -------------------------------
# Least squares on n rows: L(w, b) = 1/(2n) sum_i (x_i . w + b - y_i)^2. With the residual
# r = X w + b - y:  dL/dw = X^T r / n  (shape (d,), like w),  dL/db = mean(r).
def loss(X, y, w, b):
    r = X @ w + b - y
    return 0.5 * np.mean(r ** 2)


def loss_grad(X, y, w, b):
    # EXERCISE loss_grad: with the residual r = X w + b - y (n,), dL/dw = X^T r / n (shape of w) and dL/db = mean(r)
    r = X @ w + b - y                                 # (n,)
    return X.T @ r / len(y), r.mean()
    # END EXERCISE


def relative_error(a, b):
    """|a - b| / (|a| + |b|) with vector norms: scale-free, so one tolerance fits a loss of
    any size. (Per-component ratios blow up on components that happen to be near 0.)"""
    return np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300)


def gradient_check(fn_loss, theta, grad, h=GRAD_CHECK_H):
    """Relative error between `grad` and central differences of fn_loss at theta, nudging
    one parameter at a time (2 loss evaluations per parameter: fine for a check, far too
    slow for training, which is why backprop exists)."""
    numeric = np.array([central_diff(lambda t: fn_loss(theta + t * e), 0.0, h)
                        for e in np.eye(len(theta))])
    return relative_error(grad, numeric)


def slope(h, err):
    """Least-squares slope of log(err) against log(h) inside FIT_RANGE."""
    m = (h >= FIT_RANGE[0]) & (h <= FIT_RANGE[1])
    return np.polyfit(np.log(h[m]), np.log(err[m]), 1)[0]


def figure(run, errs):
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    ax = axes[0]
    for name, e in errs.items():
        ax.loglog(STEPS_H, np.maximum(e, 1e-17), ".-", label=name)
    ax.loglog(STEPS_H, STEPS_H / 4, "k:", lw=1, label="slope 1 (O(h))")
    ax.loglog(STEPS_H, STEPS_H ** 2 / 20, "k--", lw=1, label="slope 2 (O(h^2))")
    ax.set(xlabel="step h", ylabel="|estimate - exact f'(x)|", ylim=(1e-14, 10),
           title="finite differences: round-off (left) vs truncation (right)")
    ax.legend(fontsize=8)
    ax = axes[1]
    xs = np.linspace(-3, 3, 200)
    gx, gy = np.meshgrid(xs, xs)
    cs = ax.contour(gx, gy, g(gx, gy), levels=20, cmap="viridis")
    ax.clabel(cs, cs.levels[::3], fontsize=7)
    q = np.linspace(-2.7, 2.7, 10)
    qx, qy = np.meshgrid(q, q)
    u, v = grad_g(qx, qy)
    ax.quiver(qx, qy, u, v, color="tab:red", angles="xy", width=0.004)
    ax.set(aspect="equal", xlabel="x", ylabel="y",
           title="contours of g; red = gradient: uphill, across the contours")
    return plot.save(fig, run, "finite_differences.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    rng = np.random.default_rng(run.seed)
    data.announce("random points, weights and vectors (numpy)", kind="generated",
                  detail="where the gradients and Jacobians are evaluated")

    # 1. Derivative vs finite differences at x0, over many step sizes h.
    exact = df(X0)
    errs = {"forward, float64": np.abs(forward_diff(f, X0, STEPS_H) - exact),
            "central, float64": np.abs(central_diff(f, X0, STEPS_H) - exact)}
    f32 = lambda x: f(np.float32(x)).astype(np.float32)                   # noqa: E731
    errs["central, float32"] = np.abs(np.array(
        [central_diff(f32, np.float32(X0), np.float32(h)) for h in STEPS_H], float) - exact)
    for name, e in errs.items():
        i = np.nanargmin(e)
        print(f"{name:17s}: best error {e[i]:.1e} at h = {STEPS_H[i]:.0e}")
    # The hand derivative at x0 and at random points: one point could hide a wrong formula
    # that happens to agree there.
    xs = np.append(X0, rng.uniform(-3, 3, size=5))
    x_t = torch.tensor(xs, requires_grad=True)                            # float64
    (d_auto,) = torch.autograd.grad((torch.sin(x_t) * torch.exp(-x_t / 2)).sum(), x_t)
    check.close(f"hand-derived f'(x) vs torch.autograd at x0 and {len(xs) - 1} random points",
                df(xs), d_auto, atol=1e-13)   # |f'| < 5 here: float64 round-off ~1e-15
    check.close("forward-difference error slope ~ 1", slope(STEPS_H, errs["forward, float64"]),
                1.0, atol=0.1)
    check.close("central-difference error slope ~ 2", slope(STEPS_H, errs["central, float64"]),
                2.0, atol=0.1)
    at = lambda h: int(np.argmin(np.abs(np.log10(STEPS_H) - np.log10(h))))   # noqa: E731
    check.less("central / forward error at h = 1e-4 (truncation regime)",
               errs["central, float64"][at(1e-4)] / errs["forward, float64"][at(1e-4)], 1e-3)
    check.greater("round-off: forward error at h = 1e-13 / at h = 1e-8",
                  errs["forward, float64"][at(1e-13)] / errs["forward, float64"][at(1e-8)], 10)

    # 2. A 2-D gradient: partials, directional derivatives, steepest ascent.
    p = rng.uniform(-2, 2, size=2)
    grad = grad_g(*p)
    num = np.array([central_diff(lambda t: g(t, p[1]), p[0], 1e-6),
                    central_diff(lambda t: g(p[0], t), p[1], 1e-6)])
    check.less("grad g by hand vs central differences (relative error)",
               relative_error(grad, num), GRAD_CHECK_TOL)
    angles = np.radians(np.arange(0, 360, 0.5))
    units = np.stack([np.cos(angles), np.sin(angles)], axis=1)           # (720, 2)
    directional = [central_diff(lambda t: g(*(p + t * u)), 0.0, 1e-6) for u in units]
    best = units[int(np.argmax(directional))]
    check.close("steepest direction (scan of 720 directions) vs grad/|grad|", best,
                grad / np.linalg.norm(grad), atol=np.radians(0.5))

    # 3. Jacobians by hand vs finite differences vs torch.autograd.
    W, c = rng.normal(size=(D_OUT, D_IN)), rng.normal(size=D_OUT)
    x, z = rng.normal(size=D_IN), rng.normal(size=D_OUT)
    J_layer, J_soft = layer_jacobian(W, c, x), softmax_jacobian(z)
    check.close("tanh-layer Jacobian by hand vs central differences",
                J_layer, numeric_jacobian(lambda v: np.tanh(W @ v + c), x), atol=1e-8)
    # torch.autograd.functional.jacobian builds J row by row from reverse-mode passes.
    # torch.func.jacrev(fn)(x) returns the same matrix and composes with vmap, but its first
    # call loads torch's compiler stack (seconds), so this lesson uses the older function.
    jacobian = torch.autograd.functional.jacobian
    W_t, c_t = torch.tensor(W), torch.tensor(c)                           # float64 on CPU
    J_ref = jacobian(lambda v: torch.tanh(W_t @ v + c_t), torch.tensor(x))
    check.close("tanh-layer Jacobian by hand vs torch autograd jacobian", J_layer, J_ref,
                atol=1e-12)
    J_ref = jacobian(lambda v: torch.softmax(v, dim=0), torch.tensor(z))
    check.close("softmax Jacobian diag(p) - p p^T vs torch autograd jacobian", J_soft, J_ref,
                atol=1e-12)
    check.close("softmax Jacobian rows sum to 0", J_soft.sum(axis=1), np.zeros(D_OUT), atol=1e-12)
    # Backprop never builds J: it computes a vector-Jacobian product v^T J directly. The
    # gradient of the scalar v . F(x) is exactly v^T J (each F_i weighted by v_i), so a
    # plain backward pass of that scalar gives it.
    v = rng.normal(size=D_OUT)
    x_t = torch.tensor(x, requires_grad=True)
    (vjp,) = torch.autograd.grad(torch.tanh(W_t @ x_t + c_t) @ torch.tensor(v), x_t)
    check.close("v^T J by hand vs autograd's vector-Jacobian product", v @ J_layer, vjp, atol=1e-12)

    # 4. Gradient of a loss on real data: least squares on the diabetes set.
    Xd, yd = load_diabetes(return_X_y=True)                               # (442, 10), (442,)
    n = N_QUICK if run.quick else len(Xd)
    Xd = (Xd[:n] - Xd[:n].mean(0)) / Xd[:n].std(0)                      # standardise features
    yd = yd[:n]
    data.announce(f"scikit-learn diabetes, {n} rows x 10 standardised features", kind="bundled")
    w, b = rng.normal(size=Xd.shape[1]), 0.5
    gw, gb = loss_grad(Xd, yd, w, b)
    theta = np.append(w, b)                                               # (11,) all parameters
    full_loss = lambda t: loss(Xd, yd, t[:-1], t[-1])                     # noqa: E731
    rel = gradient_check(full_loss, theta, np.append(gw, gb))
    print(f"gradient check, hand gradient: relative error {rel:.1e}")
    check.less("gradient check: hand gradient vs central differences (relative error)",
               rel, GRAD_CHECK_TOL)
    # A planted bug, the classic one: forgetting the 1/n. The same check must flag it.
    buggy = np.append(Xd.T @ (Xd @ w + b - yd), gb)
    rel_bug = gradient_check(full_loss, theta, buggy)
    check.greater("gradient check catches a forgotten 1/n (relative error)", rel_bug,
                  GRAD_CHECK_TOL)
    # torch.autograd as the reference, float64 on the CPU (tight) ...
    Xt, yt = torch.tensor(Xd), torch.tensor(yd)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    (0.5 * ((Xt @ wt + bt - yt) ** 2).mean()).backward()
    check.close("dL/dw by hand vs torch.autograd (float64, relative)", gw / np.abs(gw).max(),
                wt.grad / np.abs(gw).max(), atol=1e-12)
    check.close("dL/db by hand vs torch.autograd (float64, relative)", gb / abs(gb),
                bt.grad / abs(gb), atol=1e-12)
    # ... and float32 on the run's device (GPU or CPU): float32 keeps ~7 digits.
    dev = run.device
    X32, y32 = Xt.float().to(dev), yt.float().to(dev)
    w32 = wt.detach().float().to(dev).requires_grad_()
    (0.5 * ((X32 @ w32 + b - y32) ** 2).mean()).backward()
    check.close(f"dL/dw by hand vs autograd in float32 on {dev.type} (relative)",
                gw / np.abs(gw).max(), w32.grad.cpu().double() / np.abs(gw).max(), atol=1e-5)

    figure(run, errs)
    k_central = slope(STEPS_H, errs["central, float64"])
    i32 = int(np.nanargmin(errs["central, float32"]))
    return cli.finish(run, {"rows": n, "planted_bug_rel_error": float(rel_bug)}, answers={
        "central_order": (str(round(k_central)), f"fitted slope of log error vs log h: "
                          f"{k_central:.2f} (finite_differences.png)"),
        "float32_best_h": (min(("1e-1", "5e-3", "1e-5", "1e-8"),   # the option nearest, in log h
                               key=lambda o: abs(np.log10(float(o)) - np.log10(STEPS_H[i32]))),
                           f"float32's central error is smallest ({errs['central, float32'][i32]:.1e}) "
                           f"at h = {STEPS_H[i32]:.0e}, near eps^(1/3) = 5e-3: below it, round-off "
                           "in float32's ~7 digits grows like eps/h (finite_differences.png)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 02.03`) before running it;
# `python -m dlcourse check 02.03` compares your answers with what the run measures.
# PREDICT central_order (1 / 2 / 3): while truncation dominates, the central difference's error falls like h^k: k = ?
# ANSWER central_order:
# PREDICT float32_best_h (1e-1 / 5e-3 / 1e-5 / 1e-8): in float32, which step h gives the central difference its smallest error?
# ANSWER float32_best_h:

if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
