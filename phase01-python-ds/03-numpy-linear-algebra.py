"""03 - NumPy linear algebra: solve, norms, eig, lstsq (phase 01, week 1)

Goal: use matmul, norms, det, eig and lstsq with confidence, and see on Hilbert matrices why
      np.linalg.solve(A, b) beats inv(A) @ b: same maths, very different residuals.
Run:  python phase01-python-ds/03-numpy-linear-algebra.py            (about 10 s on a 2-core CPU)
      python phase01-python-ds/03-numpy-linear-algebra.py --quick    (seconds, offline, used by the tests)
Expect: at cond(H) ~1e16 solve's relative residual stays ~1e-16 while inv's is ~1e-2 (shown
        as [demo] lines: they test LAPACK, not our code); power iteration finds the eigenvalue
        -4 of a non-symmetric matrix to ~1e-15; figure solve_vs_inv.png.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import time

import numpy as np
import scipy.linalg

from dlcourse import check, plot

import matplotlib.pyplot as plt  # after dlcourse.plot, which selects the headless backend

EPS = np.finfo(np.float64).eps   # 2.2e-16: float64's relative rounding unit
HILBERT_QUICK = [4, 6, 8, 10, 12]          # sizes n of the ill-conditioned test matrices
HILBERT_FULL = list(range(2, 15))          # full run: up to n=14, cond beyond 1/EPS
TRUE_COEF = np.array([0.5, -2.0, 3.0])     # least squares: y = c0 + c1 t + c2 t^2 + noise
NOISE = 0.2                                # std of that noise
TIMING_N = 1500                            # full run only: n for the solve-vs-inv timing
POWER_STEPS = 100                          # power-iteration steps (error shrinks by |l2/l1| each)
SPECTRUM = np.array([-4.0, 2.5, 1.5, 1.0, 0.5])  # eigenvalues of the power-iteration matrix:
                                                 # |l2/l1| = 0.625, 0.625^100 ~ 4e-21; the
                                                 # dominant one negative, so a lost sign shows
SIGMAS = 5                                 # statistical checks allow 5 standard errors


def matmul_basics(rng):
    A, B = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    # C[i, j] = sum_k A[i, k] B[k, j], written as loops once so that @ is not magic.
    C = np.zeros((3, 2))
    for i in range(3):
        for j in range(2):
            for k in range(4):
                C[i, j] += A[i, k] * B[k, j]
    check.close("A @ B vs triple loop", A @ B, C, atol=1e-12)
    # @ broadcasts over leading "batch" axes: (8, 3, 4) @ (4, 2) -> (8, 3, 2).
    batch = rng.normal(size=(8, 3, 4))
    out = batch @ B                                   # (8, 3, 2)
    check.close("batched @ vs einsum 'bik,kj->bij'", out, np.einsum("bik,kj->bij", batch, B),
                atol=1e-12, demo=True)
    print(f"  (3, 4) @ (4, 2) -> {C.shape};  (8, 3, 4) @ (4, 2) -> {out.shape};  "
          "A * B would be elementwise")


def norms(rng):
    """Each norm from its definition against np.linalg.norm."""
    v = rng.normal(size=6)
    M = rng.normal(size=(5, 4))
    ours = {
        "L1  sum|v|": np.abs(v).sum(),
        "L2  sqrt(sum v^2)": np.sqrt((v ** 2).sum()),
        "Linf max|v|": np.abs(v).max(),
        "Frobenius": np.sqrt((M ** 2).sum()),
        "spectral = sqrt(max eig M^T M)": np.sqrt(np.linalg.eigvalsh(M.T @ M).max()),
        "ord=1: max column sum": np.abs(M).sum(axis=0).max(),
        "ord=inf: max row sum": np.abs(M).sum(axis=1).max(),
    }
    ref = [np.linalg.norm(v, 1), np.linalg.norm(v), np.linalg.norm(v, np.inf),
           np.linalg.norm(M, "fro"), np.linalg.norm(M, 2), np.linalg.norm(M, 1),
           np.linalg.norm(M, np.inf)]
    for (name, value), r in zip(ours.items(), ref):
        print(f"  {name:<32} {value:9.5f}  np.linalg.norm {r:9.5f}")
    check.close("7 norms from their definitions vs np.linalg.norm", list(ours.values()), ref,
                atol=1e-12)


def power_iteration(A, x, steps):
    """Repeated x <- A x / ||A x|| turns x towards the eigenvector of the largest |eigenvalue|
    (every other component shrinks by |l_k / l_1| per step). The Rayleigh quotient
    x.Ax / x.x then reads off that eigenvalue, sign included. Returns (eigenvalue, unit x)."""
    for _ in range(steps):
        x = A @ x
        x = x / np.linalg.norm(x)       # unit length: else it grows like |l1|^steps
    return x @ A @ x / (x @ x), x


def det_and_eig(rng):
    A = rng.normal(size=(5, 5))
    w = np.linalg.eigvals(A)                     # complex in general for a non-symmetric A
    # Identities between NumPy routines: [demo] lines, shown but not counted as our checks.
    check.close("det(A) == product of eigenvalues", np.linalg.det(A), np.prod(w).real,
                atol=1e-10, demo=True)
    B = rng.normal(size=(5, 5))
    check.close("det(AB) == det(A) det(B)", np.linalg.det(A @ B),
                np.linalg.det(A) * np.linalg.det(B), atol=1e-9, demo=True)
    # det of a big matrix overflows float64; slogdet returns sign and log|det| instead.
    big = 100 * np.eye(200)                              # det = 100^200 = 10^400 > float64 max
    sign, logdet = np.linalg.slogdet(big)
    with np.errstate(over="ignore"):                     # the overflow is the point here
        plain = np.linalg.det(big)
    print(f"  det(100 I_200) = {plain};  slogdet -> sign {sign}, "
          f"log10|det| = {logdet / np.log(10):.1f}")
    check.close("slogdet of 100*I_200 gives log|det| = 200 ln 100", logdet, 200 * np.log(100),
                atol=1e-9, demo=True)

    # Symmetric matrices: eigh gives real eigenvalues (ascending) and orthonormal vectors.
    S = A + A.T                                           # (5, 5), symmetric
    lam, V = np.linalg.eigh(S)
    check.close("eigh residual ||S V - V diag(lam)||", S @ V - V * lam, np.zeros((5, 5)),
                atol=1e-12, demo=True)
    check.close("eigenvectors are orthonormal: V^T V = I", V.T @ V, np.eye(5), atol=1e-12,
                demo=True)

    # Power iteration, ours, on a matrix whose eigenpairs we know because we built it:
    # M = Q diag(SPECTRUM) Q^-1 has eigenvalue SPECTRUM[k] with eigenvector Q[:, k]. Q is not
    # orthogonal (singular values 1..3), so M is not symmetric and its left eigenvectors
    # differ from its right ones: iterating with M^T instead of M would be caught.
    U, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    W, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    Q = U @ np.diag(np.linspace(1, 3, 5)) @ W                # (5, 5), cond(Q) = 3
    M = Q @ np.diag(SPECTRUM) @ np.linalg.inv(Q)             # (5, 5), not symmetric
    value, vec = power_iteration(M, rng.normal(size=5), POWER_STEPS)
    v1 = Q[:, 0] / np.linalg.norm(Q[:, 0])                   # the known dominant eigenvector
    print(f"  power iteration on a non-symmetric M: eigenvalue {value:.12f} "
          f"(built with {SPECTRUM[0]}); ||M - M^T|| = {np.linalg.norm(M - M.T):.2f}")
    # Converged to rounding: errors ~ EPS * cond(Q) * ||M||, far below 1e-10.
    check.close(f"power iteration: dominant eigenvalue vs the built-in {SPECTRUM[0]}", value,
                SPECTRUM[0], atol=1e-10)
    check.close("power iteration: unit eigenvector vs Q[:, 0] (up to sign)",
                vec * np.sign(vec @ v1), v1, atol=1e-10)


def solve_vs_inv(sizes):
    """Hilbert matrices H[i, j] = 1 / (i + j + 1): symmetric, invertible, badly conditioned."""
    rows, ours, ref = [], [], []
    print("     n    cond(H)   residual solve   residual inv   fwd err solve   fwd err inv")
    for n in sizes:
        i = np.arange(n)
        H = 1.0 / (i[:, None] + i[None, :] + 1)      # (n, n) via broadcasting
        ours.append(H.ravel())
        ref.append(scipy.linalg.hilbert(n).ravel())
        x_true = np.ones(n)
        b = H @ x_true
        x_solve = np.linalg.solve(H, b)               # LU with pivoting, then two triangular solves
        x_inv = np.linalg.inv(H) @ b                  # forms the inverse explicitly: extra error
        rel_res = [np.linalg.norm(H @ x - b) / np.linalg.norm(b) for x in (x_solve, x_inv)]
        fwd = [np.linalg.norm(x - x_true) / np.linalg.norm(x_true) for x in (x_solve, x_inv)]
        cond = np.linalg.cond(H)
        rows.append((n, cond, *rel_res, *fwd))
        print(f"  {n:4d}  {cond:9.1e}   {rel_res[0]:13.1e}   {rel_res[1]:12.1e}   "
              f"{fwd[0]:13.1e}   {fwd[1]:11.1e}")
    check.close(f"our Hilbert matrices == scipy.linalg.hilbert (n = {sizes[0]}..{sizes[-1]})",
                np.concatenate(ours), np.concatenate(ref), atol=0, rtol=EPS)
    # What follows measures LAPACK's solve and inv, not code of ours: [demo] lines.
    res_solve = np.array([r[2] for r in rows])
    # solve is backward stable: it solves a nearby system exactly, so its residual stays near
    # EPS whatever the conditioning. (10 n EPS is the usual textbook-style allowance.)
    check.less("solve: worst relative residual <= 10 n EPS", res_solve.max(),
               10 * max(sizes) * EPS, demo=True)
    n, cond, r_s, r_i, f_s, f_i = rows[-1]
    check.greater(f"inv(H) @ b residual is >1000x solve's at n={n}", r_i, 1000 * max(r_s, EPS),
                  demo=True)
    # Forward error is bounded by conditioning times backward error:
    #   ||x - x*|| / ||x*|| <= cond(H) * ||H x - b|| / ||b||   (+ rounding of the residual itself)
    bound = np.array([r[1] * (r[2] + r[0] * EPS) for r in rows])
    fwd_solve = np.array([r[4] for r in rows])
    check.true("forward error <= cond * residual for every n", (fwd_solve <= bound).all(),
               f"largest ratio error/bound {np.max(fwd_solve / bound):.2g}", demo=True)
    return rows


def least_squares(rng):
    """Fit y ~ c0 + c1 t + c2 t^2 to noisy points: an over-determined system X c ~ y."""
    t = np.linspace(-1, 1, 40)
    noise = rng.normal(scale=NOISE, size=t.size)
    y = TRUE_COEF[0] + TRUE_COEF[1] * t + TRUE_COEF[2] * t ** 2 + noise
    X = np.stack([np.ones_like(t), t, t ** 2], axis=1)   # (40, 3) design matrix
    coef, _, rank, sv = np.linalg.lstsq(X, y)
    r = y - X @ coef
    # Our design matrix against polyfit, which builds its own (highest power first).
    check.close("lstsq on our design matrix == np.polyfit(t, y, 2)", coef,
                np.polyfit(t, y, 2)[::-1], atol=1e-10)
    # The fit recovers the coefficients we generated with, within their standard errors:
    # cov(c) = NOISE^2 (X^T X)^-1 for independent noise of std NOISE.
    se = NOISE * np.sqrt(np.diag(np.linalg.inv(X.T @ X)))
    check.less(f"|fitted - generating coefficients| / ({SIGMAS} standard errors), worst of 3",
               np.max(np.abs(coef - TRUE_COEF) / (SIGMAS * se)), 1.0)
    # Optimality: the residual is orthogonal to every column of X (normal equations X^T r = 0).
    check.close("lstsq residual is orthogonal to the columns: X^T r", X.T @ r, np.zeros(3),
                atol=1e-12, demo=True)
    check.close("lstsq == normal equations (X^T X) c = X^T y", coef,
                np.linalg.solve(X.T @ X, X.T @ y), atol=1e-10, demo=True)
    print(f"  fitted c = {np.round(coef, 3)} (generated with {TRUE_COEF.tolist()}); rank {rank}, "
          f"||r|| = {np.linalg.norm(r):.3f}")
    return coef


def time_solve_vs_inv(rng, n):
    A = rng.normal(size=(n, n))
    b = rng.normal(size=n)
    t0 = time.perf_counter()
    np.linalg.solve(A, b)
    t_solve = time.perf_counter() - t0
    t0 = time.perf_counter()
    np.linalg.inv(A) @ b
    t_inv = time.perf_counter() - t0
    print(f"  n={n}: solve {t_solve * 1e3:.1f} ms, inv @ b {t_inv * 1e3:.1f} ms "
          "(the inverse needs ~3x the flops of one LU solve)")
    return t_solve, t_inv


def figure(run, rows):
    rows = sorted(rows, key=lambda r: r[1])   # computed cond saturates near 1/EPS: sort by it
    cond = [r[1] for r in rows]
    floor = 1e-18                             # an exact 0 cannot sit on a log axis: drawn here
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for ax, (i_s, i_i), title in [(axes[0], (2, 3), "relative residual ||Hx - b|| / ||b||"),
                                  (axes[1], (4, 5), "forward error ||x - x*|| / ||x*||")]:
        ax.loglog(cond, [max(r[i_s], floor) for r in rows], "o-", label="solve(H, b)")
        ax.loglog(cond, [max(r[i_i], floor) for r in rows], "s-", label="inv(H) @ b")
        ax.set(xlabel="cond(H)", title=title)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
    axes[0].axhline(EPS, color="gray", ls=":", lw=1)
    axes[0].text(cond[0], EPS * 3, "machine epsilon (exact 0 drawn at 1e-18)", color="gray",
                 fontsize=8)
    fig.suptitle("Hilbert systems: same maths, different rounding")
    return plot.save(fig, run, "solve_vs_inv.png")


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    rng = np.random.default_rng(run.seed)
    print("1) matmul")
    matmul_basics(rng)
    print("2) norms")
    norms(rng)
    print("3) det and eig")
    det_and_eig(rng)
    print("4) solve vs inv on ill-conditioned Hilbert systems")
    rows = solve_vs_inv(HILBERT_QUICK if run.quick else HILBERT_FULL)
    print("5) least squares")
    least_squares(rng)
    n, cond, r_solve, r_inv = rows[-1][:4]
    metrics = {"hilbert_n": n, "log10_cond": round(np.log10(cond), 1),
               "log10_residual_solve": round(np.log10(max(r_solve, EPS / 1e3)), 1),
               "log10_residual_inv": round(np.log10(r_inv), 1)}
    if not run.quick:
        print("6) timing")
        t_solve, t_inv = time_solve_vs_inv(rng, TIMING_N)
        metrics.update(solve_ms=round(t_solve * 1e3, 1), inv_ms=round(t_inv * 1e3, 1))
    figure(run, rows)
    return cli.finish(run, metrics)


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
