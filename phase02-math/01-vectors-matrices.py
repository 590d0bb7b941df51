"""01 - Vectors and matrices: projections, rank, linear maps (phase 02, week 2)

Goal: project a vector onto a line and onto a subspace by hand, build an orthonormal basis
      (Gram-Schmidt), count a matrix's rank, and watch 2x2 matrices bend the plane.
Run:  python phase02-math/01-vectors-matrices.py            (442 rows; about 4 s on a 2-core CPU)
      python phase02-math/01-vectors-matrices.py --quick    (150 rows; about 4 s, offline)
Expect: "[check] residual is orthogonal to every column (A^T r / |A||r|): max |diff| ~1e-16";
        the projection of the diabetes target onto the feature columns equals
        scikit-learn's LinearRegression fit (R^2 ~0.52 on all 442 rows); Gram-Schmidt rank
        equals np.linalg.matrix_rank; figure vectors_and_maps.png shows the right angle of
        a projection and a grid bent by four matrices.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression

from dlcourse import check, data, plot
import matplotlib.pyplot as plt

N_QUICK = 150                   # diabetes rows in --quick (the full run uses all 442)
K_COLS = 6                      # size of the random square / low-rank matrices
RANK_TRUE = 3                   # the low-rank matrix is built as a product through 3 dims
RANK_TOL = 1e-10                # a Gram-Schmidt residual below this (relative) counts as zero
TOL = 1e-9                      # float64 agreement for the checks (round-off is ~1e-13)


# --- 1. Vectors: dot product, angle, projection onto a line ---------------------------
# a . b = sum_i a_i b_i = |a| |b| cos(theta). Two vectors are orthogonal when a . b = 0.
# Projecting b onto the line through a keeps the part of b that points along a:
#     proj_a(b) = (a . b / a . a) a,      residual r = b - proj_a(b),   a . r = 0.
# The residual is what is left after the best approximation of b by a multiple of a; it is
# orthogonal to a because any component along a could still be removed.
def project_onto_line(b, a):
    # EXERCISE project_onto_line: proj_a(b) = (a . b / a . a) a: the multiple of a whose residual b - proj is orthogonal to a
    return (a @ b) / (a @ a) * a
    # END EXERCISE


# --- 2. Projection onto a subspace (the column space of A) -----------------------------
# We want the point A x in span(columns of A) closest to b. The residual r = b - A x must be
# orthogonal to every column:  A^T (b - A x) = 0  =>  A^T A x = A^T b  (the normal equations).
# So x = (A^T A)^{-1} A^T b, and the projection matrix P = A (A^T A)^{-1} A^T.
# This is exactly least squares: linear regression *is* an orthogonal projection.
def project_onto_columns(b, A):
    # EXERCISE project_onto_columns: solve the normal equations A^T A x = A^T b (np.linalg.solve, no inverse); return (A x, x)
    x = np.linalg.solve(A.T @ A, A.T @ b)   # solve, never invert explicitly: cheaper, stabler
    return A @ x, x
    # END EXERCISE


# --- 3. Gram-Schmidt: an orthonormal basis of the column space -------------------------
# Walk through the columns; subtract from each its projection onto the basis built so far
# (what is left is orthogonal to all of them), then normalise. A column whose residual is
# (nearly) zero was a combination of earlier ones: it adds no new direction. The number of
# directions kept is the rank. ("Modified" GS: subtract one basis vector at a time, which
# loses less orthogonality to round-off than subtracting all projections at once.)
def gram_schmidt(A, rel_tol=RANK_TOL):
    # EXERCISE gram_schmidt: for each column subtract (q . v) q for every basis q so far; keep v / |v| if |v| > rel_tol * the largest column norm
    scale = np.linalg.norm(A, axis=0).max()
    basis = []
    for j in range(A.shape[1]):
        v = A[:, j].astype(float).copy()
        for q in basis:
            v -= (q @ v) * q
        if np.linalg.norm(v) > rel_tol * scale:
            basis.append(v / np.linalg.norm(v))
    return np.stack(basis, axis=1) if basis else np.zeros((A.shape[0], 0))   # (n, rank)
    # END EXERCISE


def polygon_area(xy):
    """Shoelace formula for the area of a closed polygon, xy of shape (n, 2)."""
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def figure(run, a, b, maps):
    fig, axes = plt.subplots(1, 1 + len(maps), figsize=(4 * (1 + len(maps)), 4))
    ax = axes[0]
    p = project_onto_line(b, a)
    t = np.linspace(-0.5, 2.5, 2)
    ax.plot(t * a[0], t * a[1], color="0.7", lw=1, label="line through a")
    for vec, start, colour, name in [(p, (0, 0), "tab:green", "proj_a(b)"),
                                     (a, (0, 0), "tab:blue", "a"), (b, (0, 0), "k", "b"),
                                     (b - p, p, "tab:red", "residual r")]:
        ax.annotate("", xy=np.add(start, vec), xytext=start,
                    arrowprops=dict(arrowstyle="->", color=colour, lw=2))
        ax.plot([], [], color=colour, lw=2, label=name)
    u, n = a / np.linalg.norm(a), (b - p) / np.linalg.norm(b - p)   # right-angle marker
    s = 0.15
    ax.plot(*np.array([p - s * u, p - s * u + s * n, p + s * n]).T, color="tab:red", lw=1)
    ax.set(aspect="equal", xlim=(-0.5, 3.2), ylim=(-0.5, 3.2), title="projection: a . r = 0")
    ax.legend(loc="upper left", fontsize=8)
    # A matrix is a linear map: it sends grid lines to grid lines (straight, evenly spaced,
    # origin fixed) and the unit square to a parallelogram of area |det M|.
    g = np.linspace(-1, 1, 9)
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], float)
    for ax, (name, M) in zip(axes[1:], maps.items()):
        for v in g:   # faint: the original grid; grey: its image under M
            const = np.full_like(g, v)
            for line in (np.stack([g, const], 1), np.stack([const, g], 1)):   # (9, 2) each
                ax.plot(*line.T, color="0.93", lw=0.8)
                ax.plot(*(line @ M.T).T, color="0.65", lw=0.8)
        ax.fill(*(square @ M.T).T, color="tab:orange", alpha=0.5)
        for e, colour in zip(np.eye(2), ("tab:blue", "tab:green")):   # images of e1, e2
            ax.annotate("", xy=M @ e, xytext=(0, 0),
                        arrowprops=dict(arrowstyle="->", color=colour, lw=2))
        ax.set(aspect="equal", xlim=(-2.2, 2.2), ylim=(-2.2, 2.2),
               title=f"{name}\ndet = {np.linalg.det(M):.2f}")
    fig.suptitle("left: projecting b onto a line; right: matrices as maps of the plane "
                 "(blue = M e1, green = M e2, orange = image of the unit square)")
    return plot.save(fig, run, "vectors_and_maps.png")


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    rng = np.random.default_rng(run.seed)
    X, y = load_diabetes(return_X_y=True)                      # (442, 10), (442,)
    n = N_QUICK if run.quick else len(X)
    X, y = X[:n], y[:n]
    data.announce(f"scikit-learn diabetes, {n} rows x 10 features", kind="bundled")
    data.announce("random Gaussian vectors and matrices (numpy)", kind="generated",
                  detail="the low-rank product and the linearity example")

    # 1. Dot product and projection onto a line.
    a, b = np.array([1.2, 0.6]), np.array([1.0, 2.5])
    cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    print(f"a . b = {a @ b:.3f}, |a| = {np.linalg.norm(a):.3f}, |b| = {np.linalg.norm(b):.3f}, "
          f"angle = {np.degrees(np.arccos(cos)):.1f} deg")
    r_line = b - project_onto_line(b, a)
    check.close("line: residual is orthogonal to a (a . r)", a @ r_line, 0.0, atol=TOL)
    # A line is the one-column case of a subspace: both routes must give the same point,
    # here for random vectors in R^5 (not only for the hand-picked pair above).
    a5, b5 = rng.normal(size=K_COLS - 1), rng.normal(size=K_COLS - 1)
    check.close("projection onto a line vs onto the one-column subspace span(a)",
                project_onto_line(b5, a5), project_onto_columns(b5, a5[:, None])[0], atol=TOL)

    # 2. Projection onto a subspace. Each column of A is one feature over n patients, i.e.
    # a vector in R^n; a column of ones lets the fit shift up and down (the intercept).
    # The target y (disease progression) is another vector in R^n. Its projection onto the
    # 11-dimensional column space is the best linear prediction of y from the features.
    A = np.column_stack([np.ones(n), X])                       # (n, 11)
    p, x = project_onto_columns(y, A)
    r = y - p
    # Relative scale: A^T r sums n products, so compare with |A| |r| rather than with 1.
    ortho = np.abs(A.T @ r).max() / (np.linalg.norm(A, axis=0).max() * np.linalg.norm(r))
    check.close("residual is orthogonal to every column (A^T r / |A||r|)", ortho, 0.0, atol=TOL)
    scale = np.abs(x).max()                                    # compare relative to the largest
    check.close("normal-equation coefficients vs np.linalg.lstsq (relative)", x / scale,
                np.linalg.lstsq(A, y, rcond=None)[0] / scale, atol=TOL)
    sk = LinearRegression().fit(X, y)
    check.close("projection Py vs scikit-learn LinearRegression predictions (relative)",
                p / np.abs(y).max(), sk.predict(X) / np.abs(y).max(), atol=TOL)
    # The coefficients too: x[0] multiplies the column of ones, so it is the intercept.
    check.close("coefficients x vs LinearRegression (intercept_, coef_) (relative)", x / scale,
                np.append(sk.intercept_, sk.coef_) / scale, atol=TOL)
    # Pythagoras: |y|^2 = |p|^2 + |r|^2 because p and r are orthogonal.
    check.close("Pythagoras |y|^2 = |Py|^2 + |r|^2 (relative)",
                (p @ p + r @ r) / (y @ y), 1.0, atol=TOL)
    # Projecting twice changes nothing (P^2 = P): the projection already lies in the subspace.
    p2, _ = project_onto_columns(p, A)
    check.close("projecting twice: P(Py) = Py (relative)", p2 / np.abs(p).max(),
                p / np.abs(p).max(), atol=TOL)
    # R^2 is the same geometry: the share of y's spread around its mean that the
    # projection explains, 1 - |r|^2 / |y - mean(y)|^2.
    r2 = 1 - (r @ r) / np.sum((y - y.mean()) ** 2)
    print(f"R^2 of the projection (= least-squares fit) on {n} rows: {r2:.4f}")
    check.close("R^2 from the residual vs LinearRegression.score", r2, sk.score(X, y), atol=TOL)

    # 3. Orthonormal basis and rank.
    Q = gram_schmidt(A)                                        # (n, 11)
    check.close("Gram-Schmidt basis is orthonormal (Q^T Q = I)", Q.T @ Q, np.eye(Q.shape[1]),
                atol=TOL)
    # With an orthonormal basis the projection needs no solve: P = Q Q^T.
    check.close("projection via Q Q^T y vs normal equations (relative)",
                Q @ (Q.T @ y) / np.abs(p).max(), p / np.abs(p).max(), atol=TOL)
    # A product (n, 3) @ (3, k) has rank at most 3 even though it has k columns: every
    # column is a combination of the same 3 directions.
    low = rng.normal(size=(n, RANK_TRUE)) @ rng.normal(size=(RANK_TRUE, K_COLS))   # (n, 6)
    for name, M in [("A", A), ("low-rank product", low)]:
        rank = gram_schmidt(M).shape[1]
        print(f"rank({name}) by Gram-Schmidt = {rank} (shape {M.shape})")
        check.equal(f"rank of {name}: Gram-Schmidt vs np.linalg.matrix_rank", rank,
                    int(np.linalg.matrix_rank(M)))

    # 4. Matrices as linear maps: M e_j is column j, and areas scale by |det M|.
    theta = np.pi / 6
    maps = {"rotate 30 deg": np.array([[np.cos(theta), -np.sin(theta)],
                                       [np.sin(theta), np.cos(theta)]]),
            "scale (1.5, 0.5)": np.diag([1.5, 0.5]),
            "shear": np.array([[1.0, 1.0], [0.0, 1.0]]),
            "project onto x=y": np.full((2, 2), 0.5)}   # rank 1: squashes the plane to a line
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    areas = np.array([polygon_area(square @ M.T) for M in maps.values()])
    dets = np.array([abs(np.linalg.det(M)) for M in maps.values()])
    check.close("area of mapped unit square (shoelace) vs |det M|", areas, dets, atol=TOL)
    # Linearity, the defining property: M(alpha u + beta v) = alpha M u + beta M v.
    M = rng.normal(size=(K_COLS, K_COLS))
    u, v = rng.normal(size=K_COLS), rng.normal(size=K_COLS)
    check.close("linearity M(2u - 3v) = 2Mu - 3Mv", M @ (2 * u - 3 * v),
                2 * (M @ u) - 3 * (M @ v), atol=TOL, demo=True)   # numpy against numpy

    figure(run, a, b, maps)
    names = ["rotate", "scale", "shear", "project"]             # the order of maps above
    changed = [nm for nm, area in zip(names[:3], areas) if abs(area - 1.0) > TOL]
    low_rank = gram_schmidt(low).shape[1]
    return cli.finish(run, {"rows": n, "r2": float(r2)}, answers={
        "area_changer": (" and ".join(changed) or "none",
                         "mapped unit-square areas: " + ", ".join(
                             f"{nm} {area:.2f}" for nm, area in zip(names, areas))
                         + " (vectors_and_maps.png, orange squares)"),
        "low_rank": (str(low_rank), f"Gram-Schmidt keeps {low_rank} of the {low.shape[1]} "
                     f"columns of the ({n}, {RANK_TRUE}) @ ({RANK_TRUE}, {K_COLS}) product"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 02.01`) before running it;
# `python -m dlcourse check 02.01` compares your answers with what the run measures.
# PREDICT area_changer (rotate / scale / shear): of these three maps, which one changes the area of the unit square?
# ANSWER area_changer:
# PREDICT low_rank (3 / 6): a (n, 3) @ (3, 6) product has 6 columns; how many directions does Gram-Schmidt keep?
# ANSWER low_rank:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
