"""05 - Gradient descent and learning-rate regimes (phase 02, week 2)

Goal: run gradient descent on a quadratic, on least squares for real data and on the
      Rosenbrock valley, and see the learning rate 2/L split convergence from divergence;
      then race the hand-written GD against scipy.optimize (BFGS, L-BFGS-B, Nelder-Mead).
Run:  python phase02-math/05-optimization-basics.py            (about 3.5 s + imports, 2-core CPU)
      python phase02-math/05-optimization-basics.py --quick    (about 1.5 s + imports, offline)
Expect: "[check] diabetes least squares, lr = 0.99 x 2/L: converged ..." and "lr = 1.01 x
        2/L: diverged ..."; the measured contraction rate equals max|1 - lr*lambda| to ~1e-16;
        GD on Rosenbrock reaches (1, 1) with lr 0.0019 but not with 0.0021 (2/L there is
        ~0.002); figure gradient_descent.png shows the paths on contour plots. The hand
        gradient matches scipy.optimize.approx_fprime at random points; to get within 1e-4
        of (1, 1) hand GD needs 11994 steps, BFGS with the same gradient 32 iterations
        (39 evaluations), L-BFGS-B 36, gradient-free Nelder-Mead 101.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import numpy as np
import torch
from scipy import optimize
from sklearn.datasets import load_diabetes

from dlcourse import check, data, lessons, plot
import matplotlib.pyplot as plt

derivatives = lessons.load("02.03")   # central differences and the gradient-check tolerance

H_EIGS = (10.0, 1.0)       # curvatures L and mu of the 2-D quadratic (condition number 10)
H_ANGLE = 30.0             # degrees the quadratic's axes are rotated by
X_START = (-4.0, 2.5)      # start of GD on the quadratic
FRACTIONS = (0.1, 0.5, 0.95, 1.02)   # learning rates shown, as multiples of 2/L
QUAD_STEPS = 30            # GD steps drawn on the quadratic
LSQ_STEPS = 6000           # GD steps on diabetes least squares (ill-conditioned: see the print)
SWEEP = np.linspace(0.05, 1.2, 47)   # learning rates / (2/L) for the sweep
N_QUICK = 150              # diabetes rows in --quick (full: all 442)
ROSEN_START = (-1.2, 1.0)  # the classic starting point on the Rosenbrock function
ROSEN_LRS = (5e-4, 1.9e-3, 2.1e-3)   # below / just below / just above 2/L at the minimum
ROSEN_STEPS_QUICK, ROSEN_STEPS_FULL = 8000, 30000
BLOWUP = 1e8               # loss / initial loss above which a run counts as diverged
OPT_TOL = 1e-4             # distance to (1, 1) that counts as "reached the minimum"
GD_MAX_STEPS = 20_000      # cap for hand GD racing scipy to OPT_TOL (both modes: ~0.1 s)
SCIPY_METHODS = ("BFGS", "L-BFGS-B", "Nelder-Mead")   # quasi-Newton x2, derivative-free
GRAD_POINTS = 6            # random points where the Rosenbrock gradient meets approx_fprime


# --- Gradient descent --------------------------------------------------------------
# x_{t+1} = x_t - lr * grad f(x_t). On a quadratic f(x) = 1/2 x^T H x (grad = H x) this is
# x_{t+1} = (I - lr H) x_t. Write x in H's eigenvectors: each coordinate is multiplied by
# (1 - lr lambda_i) per step. It shrinks iff |1 - lr lambda_i| < 1, i.e. 0 < lr < 2/lambda_i.
# The largest eigenvalue L (the "smoothness" constant: the sharpest curvature) binds first:
#   lr < 2/L converges, lr > 2/L diverges, and the rate is max_i |1 - lr lambda_i|.
# Small lr: the flat directions (small lambda) crawl. lr near 2/L: the steep direction
# overshoots and flips sign each step (zig-zag). Best fixed lr = 2/(L + mu).
def gradient_descent(grad, x0, lr, steps, loss=None):
    # EXERCISE gradient_descent: x <- x - lr * grad(x), keeping every iterate; when loss is given stop once loss >= BLOWUP * the start's loss (or is nan); return (steps + 1, dim)
    xs = [np.asarray(x0, float)]
    f0 = loss(xs[0]) if loss else None
    for _ in range(steps):
        xs.append(xs[-1] - lr * grad(xs[-1]))
        if loss and not loss(xs[-1]) < BLOWUP * f0:         # also stops on inf / nan
            break
    return np.array(xs)                                      # (steps + 1, dim)
    # END EXERCISE


def rotation(deg):
    t = np.radians(deg)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


# --- Rosenbrock: a non-convex valley ---------------------------------------------------
# f(x, y) = (1 - x)^2 + 100 (y - x^2)^2, minimum 0 at (1, 1) at the end of a curved valley.
# grad = (-2(1 - x) - 400 x (y - x^2),  200 (y - x^2)).
# Hessian = [[2 - 400 (y - 3x^2), -400 x], [-400 x, 200]]: at (1, 1) its largest eigenvalue
# is ~1001.6, so GD can only settle there if lr < 2/1001.6. Some points (e.g. (0, 1)) have
# a negative eigenvalue: the function is not convex, and the local 2/L changes on the way.
def rosen(p):
    x, y = p[..., 0], p[..., 1]
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def rosen_grad(p):
    # EXERCISE rosen_grad: differentiate (1 - x)^2 + 100 (y - x^2)^2 in x and in y; the chain rule brings a -2x from the inner x^2
    x, y = p
    return np.array([-2 * (1 - x) - 400 * x * (y - x ** 2), 200 * (y - x ** 2)])
    # END EXERCISE


def rosen_hessian(p):
    # EXERCISE rosen_hessian: differentiate each gradient component again in x and y; d/dx of -400 x (y - x^2) needs the product rule
    x, y = p
    return np.array([[2 - 400 * (y - 3 * x ** 2), -400 * x], [-400 * x, 200.0]])
    # END EXERCISE


# --- A 1-D non-convex function ----------------------------------------------------------
# q(x) = x^4 - 3x^2 + x has two valleys; which one GD ends in depends on where it starts.
# A convex function (every Hessian eigenvalue >= 0) has one valley: every start gives the
# same minimum value.
def q(x):
    return x ** 4 - 3 * x ** 2 + x


def dq(x):
    return 4 * x ** 3 - 6 * x + 1


def steps_to_reach(xs, target, tol):
    """First step index at which the path xs (steps + 1, dim) is within tol of target, or
    None if it never gets there."""
    inside = np.linalg.norm(xs - np.asarray(target), axis=1) < tol
    return int(np.argmax(inside)) if inside.any() else None


def figure(run, H, paths, sweep, rosen_paths, q_runs, scipy_paths):
    fig, axes = plt.subplots(2, 2, figsize=(13, 11))
    ax = axes[0, 0]
    g = np.linspace(-5, 5, 200)
    gx, gy = np.meshgrid(g, g)
    pts = np.stack([gx, gy], -1)                                       # (200, 200, 2)
    fq = 0.5 * np.einsum("...i,ij,...j->...", pts, H, pts)             # (200, 200)
    ax.contour(gx, gy, fq, levels=np.linspace(0.5, 11, 12) ** 2, colors="0.75", linewidths=0.7)
    for frac, xs in paths.items():
        ax.plot(xs[:, 0], xs[:, 1], ".-", lw=1.2, ms=4, label=f"lr = {frac:g} x 2/L",
                alpha=0.5 if frac > 1 else 1.0)
    ax.set(xlim=(-5, 5), ylim=(-5, 5), aspect="equal",
           title=f"quadratic, L = {H_EIGS[0]:g}, mu = {H_EIGS[1]:g}: {QUAD_STEPS} GD steps")
    ax.legend(fontsize=8, loc="lower right")
    ax = axes[0, 1]
    ok = sweep < 1e10
    floor = 1e-16                                  # float64 round-off: a gap of 0 shows here
    ax.semilogy(SWEEP[ok], np.maximum(sweep[ok], floor), ".-", label="converging / slow")
    ax.semilogy(SWEEP[~ok], np.full((~ok).sum(), 1e10), "x", color="tab:red", ms=9,
                label="diverged (loss > 1e10 x start, drawn at the top)")
    ax.axvline(1.0, color="tab:red", ls="--", label="lr = 2/L")
    ax.set(xlabel="learning rate / (2/L)", ylabel=f"loss gap after {LSQ_STEPS} steps (relative)",
           ylim=(floor / 10, 1e11), title="diabetes least squares: the wall at 2/L")
    ax.legend(fontsize=8, loc="center left")
    ax = axes[1, 0]
    rx, ry = np.meshgrid(np.linspace(-1.6, 1.6, 300), np.linspace(-0.6, 2.2, 300))
    ax.contour(rx, ry, rosen(np.stack([rx, ry], -1)), levels=np.logspace(-1, 3.3, 14),
               colors="0.75", linewidths=0.7)
    zoom = ax.inset_axes([0.56, 0.06, 0.4, 0.4])   # the last steps, near the minimum
    for (lr, xs), lw in zip(rosen_paths.items(), (4, 2, 1)):
        for a in (ax, zoom):
            a.plot(xs[:, 0], xs[:, 1], "-", lw=lw, alpha=0.8,
                   label=f"lr = {lr:g} (end f = {rosen(xs[-1]):.1e})")
    for (method, xs), style in zip(scipy_paths.items(), ("o-", "s-", "^-")):
        ax.plot(xs[:, 0], xs[:, 1], style, ms=3, lw=0.8, color="0.2", alpha=0.7,
                markerfacecolor="none", label=f"scipy {method} (path via callback)")
    for a in (ax, zoom):
        a.plot(1, 1, "r*", ms=14, label="minimum (1, 1)")
    zoom.set(xlim=(0.93, 1.01), ylim=(0.88, 1.02), xticks=[], yticks=[])
    zoom.text(0.03, 0.92, "zoom near (1, 1)", transform=zoom.transAxes, fontsize=8)
    ax.set(title="Rosenbrock: slow along the valley, unstable across it if lr > 2/L",
           xlabel="x", ylabel="y")
    ax.legend(fontsize=7)
    ax = axes[1, 1]
    xq = np.linspace(-2.1, 2.1, 300)
    ax.plot(xq, q(xq), "k", lw=1)
    for x0, xs in q_runs.items():
        ax.plot(xs, q(xs), "o-", ms=3, label=f"GD from x0 = {x0:g} -> {xs[-1]:.3f}")
    ax.set(xlabel="x", ylabel="q(x) = x^4 - 3x^2 + x", title="non-convex: the start decides "
           "which valley")
    ax.legend(fontsize=8)
    return plot.save(fig, run, "gradient_descent.png")


def main(args) -> dict:
    run = cli.start(args, __file__)

    # 1. The 2-D quadratic: paths for several learning rates.
    R = rotation(H_ANGLE)
    H = R @ np.diag(H_EIGS) @ R.T                                      # (2, 2), eigenvalues L, mu
    L, mu = H_EIGS
    paths = {frac: gradient_descent(lambda x: H @ x, X_START, frac * 2 / L, QUAD_STEPS)
             for frac in FRACTIONS}
    for frac in (0.5, 0.95):   # the measured per-step contraction vs max_i |1 - lr lambda_i|
        xs = gradient_descent(lambda x: H @ x, X_START, frac * 2 / L, 200)
        rate = (np.linalg.norm(xs[-1]) / np.linalg.norm(xs[-51])) ** (1 / 50)
        theory = max(abs(1 - frac * 2 / L * lam) for lam in H_EIGS)
        check.close(f"quadratic, lr = {frac} x 2/L: measured rate vs max|1 - lr lambda|", rate,
                    theory, atol=1e-6)

    # 2. Least squares on diabetes: convex, Hessian X^T X / n, L = its largest eigenvalue.
    X, y = load_diabetes(return_X_y=True)                              # (442, 10), (442,)
    n = N_QUICK if run.quick else len(X)
    X = (X[:n] - X[:n].mean(0)) / X[:n].std(0)
    A, y = np.column_stack([np.ones(n), X]), y[:n]                     # (n, 11) with intercept
    data.announce(f"scikit-learn diabetes, {n} rows x 10 standardised features", kind="bundled")
    loss = lambda w: 0.5 * np.mean((A @ w - y) ** 2)                   # noqa: E731
    grad = lambda w: A.T @ (A @ w - y) / n                             # noqa: E731
    eig = np.linalg.eigvalsh(A.T @ A / n)
    L_lsq = eig[-1]
    w_star = np.linalg.lstsq(A, y, rcond=None)[0]
    f_star, w0 = loss(w_star), np.zeros(A.shape[1])
    print(f"least squares: L = {L_lsq:.3f}, mu = {eig[0]:.4f}, condition number "
          f"{L_lsq / eig[0]:.0f}; 2/L = {2 / L_lsq:.4f}")
    check.true("least squares is convex (Hessian eigenvalues >= 0)", eig[0] >= 0,
               f"smallest eigenvalue {eig[0]:.2e}", demo=True)   # numpy's eigvalsh of a Gram matrix

    # Run GD for every learning rate of the sweep at once: column j of W is the weight
    # vector trained with lr_j, so one matrix product per step serves them all.
    checked = (0.5, 0.9, 0.99, 1.01, 1.1)
    fracs = np.concatenate([SWEEP, checked])
    lrs = fracs * 2 / L_lsq                                            # (R,)
    W = np.zeros((A.shape[1], len(lrs)))                               # (11, R)
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(LSQ_STEPS):
            W -= lrs * (A.T @ (A @ W - y[:, None]) / n)                # (11, R)
        losses = 0.5 * np.mean((A @ W - y[:, None]) ** 2, axis=0)     # (R,)
    gaps = np.abs(losses - f_star) / (loss(w0) - f_star)             # relative loss gap
    gaps = np.where(np.isfinite(gaps), gaps, np.inf)                   # overflow = diverged
    sweep = gaps[:len(SWEEP)]
    for frac, g in zip(checked, gaps[len(SWEEP):]):
        if frac < 1:
            check.less(f"diabetes least squares, lr = {frac} x 2/L: converged (loss gap)", g, 1e-6)
        else:
            check.greater(f"diabetes least squares, lr = {frac} x 2/L: diverged (loss gap)", g, 1.0)
    # The loss converges faster than the weights (it is quadratic in the error), so also
    # compare the weights themselves, using the best fixed step 2/(L + mu).
    ws = gradient_descent(grad, w0, 2 / (L_lsq + eig[0]), LSQ_STEPS)
    check.close("GD weights (lr = 2/(L + mu)) vs np.linalg.lstsq (relative)",
                ws[-1] / np.abs(w_star).max(), w_star / np.abs(w_star).max(), atol=1e-6)

    # 3. Rosenbrock: hand gradient vs autograd, then GD with three learning rates.
    p = torch.tensor(ROSEN_START, dtype=torch.float64, requires_grad=True)
    ((1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2).backward()
    check.close("Rosenbrock gradient by hand vs torch.autograd", rosen_grad(np.array(ROSEN_START)),
                p.grad, atol=1e-12)
    # The Hessian sets the step-size limit 2/L below, so check it too: at the start and at
    # the minimum (1, 1), the point whose L decides whether GD can settle.
    for point in (ROSEN_START, (1.0, 1.0)):
        H_ref = torch.autograd.functional.hessian(
            lambda t: (1 - t[0]) ** 2 + 100 * (t[1] - t[0] ** 2) ** 2,
            torch.tensor(point, dtype=torch.float64))
        check.close(f"Rosenbrock Hessian by hand vs torch.autograd at {point}",
                    rosen_hessian(point), H_ref, atol=1e-10)
    mu_min, L_min = np.linalg.eigvalsh(rosen_hessian((1.0, 1.0)))
    print(f"Rosenbrock: L at the minimum = {L_min:.1f}, 2/L = {2 / L_min:.5f}; mu there = "
          f"{mu_min:.4f} (condition number {L_min / mu_min:.0f})")
    check.true("Rosenbrock is not convex: Hessian at (0, 1) has a negative eigenvalue",
               np.linalg.eigvalsh(rosen_hessian((0.0, 1.0)))[0] < 0,
               f"eigenvalues {np.linalg.eigvalsh(rosen_hessian((0.0, 1.0))).round(1)}")
    steps = ROSEN_STEPS_QUICK if run.quick else ROSEN_STEPS_FULL
    rosen_paths = {lr: gradient_descent(rosen_grad, ROSEN_START, lr, steps, rosen)
                   for lr in ROSEN_LRS}
    for lr, xs in rosen_paths.items():
        print(f"  lr = {lr:g}: after {len(xs) - 1} steps at ({xs[-1][0]:.4f}, {xs[-1][1]:.4f}), "
              f"f = {rosen(xs[-1]):.2e}")
    below, above = ROSEN_LRS[1], ROSEN_LRS[2]
    check.less(f"Rosenbrock, lr {below:g} < 2/L: distance to (1, 1)",
               np.linalg.norm(rosen_paths[below][-1] - 1), 1e-2)
    check.greater(f"Rosenbrock, lr {above:g} > 2/L: distance to (1, 1)",
                  np.linalg.norm(rosen_paths[above][-1] - 1), 3e-2)

    # 3b. The same valley with scipy.optimize. First the lesson's own formulas at random
    # points: f against scipy's reference Rosenbrock, the gradient against approx_fprime's
    # forward differences. Those have truncation error ~ h/2 |f_ii| and round-off
    # ~ 2 eps |f| / h per component; with scipy's step h = sqrt(eps) that is
    # h (|f_ii| / 2 + 2 |f|), allowed here with a factor 4 of margin.
    pts = np.random.default_rng(run.seed).uniform(-2, 2, (GRAD_POINTS, 2))
    check.close("rosen(p) vs scipy.optimize.rosen at random points", rosen(pts),
                [optimize.rosen(pt) for pt in pts], atol=1e-9)
    h = np.sqrt(np.finfo(float).eps)
    errs = [np.abs(rosen_grad(pt) - optimize.approx_fprime(pt, rosen, h))
            / (4 * h * (np.abs(np.diag(rosen_hessian(pt))) / 2 + 2 * abs(rosen(pt))))
            for pt in pts]
    check.less(f"Rosenbrock gradient by hand vs approx_fprime at {GRAD_POINTS} random points "
               "(error / bound)", np.max(errs), 1.0)
    print(f"  scipy.optimize.check_grad |grad - finite diff| at those points: max "
          f"{max(optimize.check_grad(rosen, rosen_grad, pt) for pt in pts):.1e}")
    # Now the race to within OPT_TOL of (1, 1). GD's step is capped by the steepest curvature
    # (lr < 2/L across the valley), so along the valley's floor (curvature mu at the minimum,
    # printed above) it crawls at a rate of about 1 - lr mu per step. BFGS builds an estimate
    # of the inverse Hessian from the gradients it has seen and takes Newton-like steps that
    # rescale both directions; Nelder-Mead uses no gradient at all.
    lr = ROSEN_LRS[1]
    gd = gradient_descent(rosen_grad, ROSEN_START, lr, GD_MAX_STEPS)
    gd_steps = steps_to_reach(gd, (1.0, 1.0), OPT_TOL)
    check.true(f"hand GD (lr {lr:g}) gets within {OPT_TOL:g} of (1, 1)", gd_steps is not None,
               f"after {gd_steps} steps (cap {GD_MAX_STEPS})")
    check.less(f"hand GD at step {gd_steps}: distance to (1, 1)", np.linalg.norm(gd[gd_steps] - 1),
               OPT_TOL)
    print(f"  {'method':12s} {'iterations':>10s} {'f evals':>8s} {'grad evals':>10s} "
          f"{'|x - (1, 1)|':>13s}")
    print(f"  {'hand GD':12s} {gd_steps:10d} {'-':>8s} {gd_steps:10d} "
          f"{np.linalg.norm(gd[gd_steps] - 1):13.1e}")
    scipy_paths, results = {}, {}
    for method in SCIPY_METHODS:
        path = [np.array(ROSEN_START)]
        opts = {"xatol": OPT_TOL / 100, "fatol": 1e-12} if method == "Nelder-Mead" else {}
        res = results[method] = optimize.minimize(
            rosen, ROSEN_START, method=method, options=opts,
            jac=None if method == "Nelder-Mead" else rosen_grad,     # the lesson's gradient
            callback=lambda xk: path.append(np.array(xk)))
        scipy_paths[method] = np.array(path)                          # (iterations + 1, 2)
        print(f"  {method:12s} {res.nit:10d} {res.nfev:8d} {res.get('njev', '-')!s:>10s} "
              f"{np.linalg.norm(res.x - 1):13.1e}")
        check.less(f"scipy {method} reaches (1, 1): distance", np.linalg.norm(res.x - 1), OPT_TOL)
    check.greater("hand GD needs > 100x the BFGS iterations (ill-conditioned valley): ratio",
                  gd_steps / results["BFGS"].nit, 100)

    # 4. Convex vs non-convex in 1-D: two starts, two different valleys. First the hand
    # derivative against lesson 03's central differences: the stationarity check below uses
    # q' itself, so a wrong q' would pass it at the wrong points.
    xq = np.linspace(-2, 2, 41)
    rel = derivatives.relative_error(dq(xq), derivatives.central_diff(q, xq, 1e-6))
    check.less("q'(x) by hand vs central differences on 41 points (relative error)", rel,
               derivatives.GRAD_CHECK_TOL)
    q_runs = {x0: gradient_descent(dq, [x0], 0.02, 300)[:, 0] for x0 in (-2.0, 2.0)}
    ends = [xs[-1] for xs in q_runs.values()]
    check.close("both GD runs end at stationary points (q'(x) = 0)", dq(np.array(ends)),
                np.zeros(2), atol=1e-8)
    check.greater("non-convex q: the two ends are different minima (distance)",
                  abs(ends[0] - ends[1]), 1.0)
    print(f"q: from -2 ends at {ends[0]:.4f} (q = {q(ends[0]):.4f}); from 2 ends at "
          f"{ends[1]:.4f} (q = {q(ends[1]):.4f}): only one is the global minimum")

    figure(run, H, paths, sweep, rosen_paths, q_runs, scipy_paths)
    gap_101 = gaps[len(SWEEP) + checked.index(1.01)]
    ratio = gd_steps / results["BFGS"].nit
    global_start = min(q_runs, key=lambda x0: q(q_runs[x0][-1]))
    return cli.finish(run, {"rows": n, "L_lsq": float(L_lsq), "L_rosenbrock_min": float(L_min),
                            "rosen_dist_above": float(np.linalg.norm(rosen_paths[above][-1] - 1)),
                            "gd_steps_to_tol": gd_steps,
                            "bfgs_iterations": int(results["BFGS"].nit)}, answers={
        "converges_101": ("yes" if gap_101 < 1e-6 else "no",
                          f"relative loss gap after {LSQ_STEPS} steps at lr = 1.01 x 2/L: "
                          f"{gap_101:.1e} (gradient_descent.png, upper right)"),
        "gd_vs_bfgs": ("under 10x" if ratio < 10 else "10x to 100x" if ratio <= 100
                       else "over 100x", f"hand GD {gd_steps} steps, BFGS {results['BFGS'].nit} "
                       f"iterations: {ratio:.0f}x (gradient_descent.png, lower left)"),
        "global_start": (f"{global_start:g}", ", ".join(
            f"from {x0:g} ends at {xs[-1]:.4f}, q = {q(xs[-1]):.4f}" for x0, xs in q_runs.items())
            + " (gradient_descent.png, lower right)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 02.05`) before running it;
# `python -m dlcourse check 02.05` compares your answers with what the run measures.
# PREDICT converges_101 (yes / no): on diabetes least squares, does gradient descent at lr = 1.01 x 2/L converge?
# ANSWER converges_101:
# PREDICT gd_vs_bfgs (under 10x / 10x to 100x / over 100x): to reach 1e-4 of Rosenbrock's minimum, how many times more iterations does hand GD need than BFGS?
# ANSWER gd_vs_bfgs:
# PREDICT global_start (-2 / 2): q(x) = x^4 - 3x^2 + x; GD from which start ends in the global minimum?
# ANSWER global_start:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
