"""02 - Eigenvalues and SVD: low-rank approximation (phase 02, week 2)

Goal: find eigenvectors by power iteration, build the SVD from the eigendecomposition of
      A^T A, and compress the digits data set with truncated SVDs of growing rank.
Run:  python phase02-math/02-eigenvalue-svd.py            (1797 digits; about 6 s on a 2-core CPU)
      python phase02-math/02-eigenvalue-svd.py --quick    (400 digits; about 5 s, offline)
Expect: power iteration's lambda_1 (~178.9 on all 1797 digits) equals np.linalg.eigh's to
        ~1e-13; "[check] |A - A_k|_F^2 vs sum of discarded sigma_i^2, all k ...: max |diff|
        ~1e-16"; rank 10 keeps ~0.74 of the centred digits' energy; figure svd_digits.png
        shows the spectrum and digits rebuilt from rank 1..40 approximations.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import numpy as np
from sklearn.datasets import load_digits

from dlcourse import check, data, plot
import matplotlib.pyplot as plt

N_QUICK = 400          # digits used in --quick (the full run uses all 1797)
POWER_STEPS = 2000     # power-iteration steps (it stops early once converged)
POWER_TOL = 1e-13      # stop when the eigenvalue estimate changes less than this (relative)
SHOW_RANKS = (1, 2, 5, 10, 20, 40)   # ranks shown as reconstructions in the figure
TOL = 1e-9             # relative float64 agreement for the checks


# --- 1. Eigenvectors: directions a matrix only stretches ------------------------------
# A v = lambda v. For a symmetric matrix S (covariances, Hessians, A^T A) the spectral
# theorem says: real eigenvalues and an orthonormal set of eigenvectors, S = Q Lambda Q^T.
# Power iteration: keep multiplying a vector by S and renormalising. Write the start as
# sum_i c_i q_i; after t steps it is sum_i c_i lambda_i^t q_i, so the direction with the
# largest |lambda| dominates, at a speed set by the ratio |lambda_2 / lambda_1|.
def power_iteration(S, rng, steps=POWER_STEPS, tol=POWER_TOL):
    # EXERCISE power_iteration: from a random unit v repeat w = S v, lambda = v . w (Rayleigh), v = w / |w| until lambda changes < tol (relative); return (lambda, v, steps)
    v = rng.normal(size=S.shape[0])
    v /= np.linalg.norm(v)
    lam = 0.0
    for step in range(1, steps + 1):
        w = S @ v
        new_lam = v @ w                 # Rayleigh quotient v^T S v (v has unit length)
        v = w / np.linalg.norm(w)
        if abs(new_lam - lam) <= tol * abs(new_lam):
            break
        lam = new_lam
    return new_lam, v, step
    # END EXERCISE


def top_eigenpairs(S, k, rng):
    """The k largest eigenpairs by power iteration plus deflation: once (lambda, v) is found,
    S - lambda v v^T has the same eigenvectors but v's eigenvalue set to 0, so the next
    power iteration finds the next one."""
    S = S.copy()
    lams, vecs = [], []
    for _ in range(k):
        lam, v, _ = power_iteration(S, rng)
        lams.append(lam)
        vecs.append(v)
        S -= lam * np.outer(v, v)
    return np.array(lams), np.stack(vecs, axis=1)           # (k,), (d, k)


# --- 2. SVD: every matrix is rotate - stretch - rotate ---------------------------------
# A = U Sigma V^T with orthonormal U (n, r), V (d, r) and sigma_1 >= sigma_2 >= ... >= 0.
# Link to eigenvalues: A^T A = V Sigma^2 V^T, so the right singular vectors are the
# eigenvectors of A^T A and sigma_i = sqrt(lambda_i(A^T A)); then u_i = A v_i / sigma_i.
# (Fine for teaching; real SVD routines avoid forming A^T A, which squares the condition
# number and loses the small singular values to round-off.)
def svd_via_eig(A):
    # EXERCISE svd_via_eig: eigh(A^T A) sorted descending gives V and sigma = sqrt(lambda); keep sigma > 1e-6 sigma_1; u_i = A v_i / sigma_i
    lam, V = np.linalg.eigh(A.T @ A)                        # ascending eigenvalues
    order = np.argsort(lam)[::-1]
    lam, V = np.clip(lam[order], 0, None), V[:, order]
    sigma = np.sqrt(lam)
    keep = sigma > 1e-6 * sigma[0]                          # below: round-off of A^T A, not signal
    U = A @ V[:, keep] / sigma[keep]                        # (n, r)
    return U, sigma[keep], V[:, keep]
    # END EXERCISE


# --- 3. Low-rank approximation -------------------------------------------------------
# A_k = sum_{i<=k} sigma_i u_i v_i^T keeps the k strongest rank-one pieces. Eckart-Young:
# no rank-k matrix is closer to A, and the error is exactly what was thrown away:
#     |A - A_k|_F^2 = sum_{i>k} sigma_i^2,      |A - A_k|_2 = sigma_{k+1}.
def rank_k(U, s, Vt, k):
    # EXERCISE rank_k: A_k = sum over the first k of sigma_i u_i v_i^T, as one matrix product
    return (U[:, :k] * s[:k]) @ Vt[:k]                      # (n, k) * (k,) @ (k, d) -> (n, d)
    # END EXERCISE


def figure(run, s, r, A, mean, U, Vt):
    fig = plt.figure(figsize=(13, 6))
    left, right = fig.subfigures(1, 2, width_ratios=[1, 1.6])
    ax1, ax2 = left.subplots(2, 1)
    left.subplots_adjust(hspace=0.35)
    ax1.semilogy(np.arange(1, r + 1), s[:r], ".-")        # the nonzero singular values only
    ax1.set(ylabel="sigma_i", title="singular values of the centred digits matrix")
    energy = np.cumsum(s ** 2) / np.sum(s ** 2)
    ax2.plot(np.arange(1, r + 1), energy[:r], ".-")
    ax2.set(xlabel="i (or rank k)", ylabel="kept energy", ylim=(0, 1.02),
            title="sum_{i<=k} sigma_i^2 / sum_i sigma_i^2")
    ax2.grid(alpha=0.3)
    # One mosaic image (rows: example digits, columns: ranks) instead of many small axes.
    ranks = (*SHOW_RANKS, None)
    tiles = [[(A[i] if k is None else rank_k(U, s, Vt, k)[i]) + mean for k in ranks]
             for i in range(4)]                                     # four example digits
    pad = lambda t: np.pad(t.reshape(8, 8), 1, constant_values=0)   # noqa: E731  (10, 10)
    mosaic = np.block([[pad(t) for t in row] for row in tiles])     # (40, 10 * len(ranks))
    ax3 = right.subplots()
    ax3.imshow(mosaic, cmap="gray_r", vmin=0, vmax=16)
    ax3.set_xticks(10 * np.arange(len(ranks)) + 4.5,
                   [("original" if k is None else f"rank {k}") for k in ranks])
    ax3.xaxis.tick_top()
    ax3.set_yticks([])
    right.suptitle("digits rebuilt from their best rank-k approximation")
    return plot.save(fig, run, "svd_digits.png")


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    rng = np.random.default_rng(run.seed)
    X = load_digits().data                                 # (1797, 64): 8x8 images, values 0..16
    X = X[:N_QUICK] if run.quick else X
    data.announce(f"scikit-learn digits, {len(X)} images of 8x8 pixels", kind="bundled")
    mean = X.mean(axis=0)
    A = X - mean                                           # (n, 64), centred: SVD of A = PCA

    # 1. Eigenpairs of the symmetric matrix S = A^T A / n (the pixel covariance).
    S = A.T @ A / len(A)                                   # (64, 64)
    lam_ref, Q_ref = np.linalg.eigh(S)                     # ascending
    lam_ref, Q_ref = lam_ref[::-1], Q_ref[:, ::-1]
    lam1, v1, steps = power_iteration(S, rng)
    print(f"power iteration: lambda_1 = {lam1:.6f} after {steps} steps "
          f"(lambda_2 / lambda_1 = {lam_ref[1] / lam_ref[0]:.3f} sets the speed)")
    check.close("power iteration lambda_1 vs np.linalg.eigh (relative)", lam1 / lam_ref[0], 1.0,
                atol=TOL)
    # Eigenvectors are defined up to sign: compare |cos| of the angle instead.
    check.close("power-iteration eigenvector vs eigh's, |cos angle|", abs(v1 @ Q_ref[:, 0]), 1.0,
                atol=1e-6)
    # Looser than the eigenvalue: the Rayleigh quotient is accurate to the square of the
    # vector's error, so the stopping rule leaves the vector less converged than lambda.
    check.close("S v = lambda v for the power-iteration pair (relative)",
                S @ v1 / lam1, v1, atol=1e-6)
    lams, _ = top_eigenpairs(S, 5, rng)
    check.close("top-5 eigenvalues by deflation vs eigh (relative)", lams / lam_ref[0],
                lam_ref[:5] / lam_ref[0], atol=1e-8)
    check.close("spectral theorem S = Q Lambda Q^T (relative)",       # numpy against numpy
                (Q_ref * lam_ref) @ Q_ref.T / lam_ref[0], S / lam_ref[0], atol=TOL, demo=True)
    # A non-symmetric matrix need not have real eigenvalues: a rotation by 90 degrees turns
    # every vector, so no real direction is merely stretched; its eigenvalues are +-i.
    rot90 = np.array([[0.0, -1.0], [1.0, 0.0]])
    print("eigenvalues of a 90-degree rotation:", np.linalg.eigvals(rot90))

    # 2. SVD from the eigendecomposition of A^T A, against numpy's SVD.
    U, s, Vt = np.linalg.svd(A, full_matrices=False)       # (n, 64), (64,), (64, 64)
    U_e, s_e, V_e = svd_via_eig(A)
    r = len(s_e)
    print(f"numerical rank of the centred digits matrix: {r} of 64 "
          "(some border pixels are always 0)")
    check.close("singular values via eig(A^T A) vs np.linalg.svd (relative)", s_e / s[0],
                s[:r] / s[0], atol=1e-8)
    check.close("U Sigma V^T rebuilds A (relative)", (U_e * s_e) @ V_e.T / np.abs(A).max(),
                A / np.abs(A).max(), atol=1e-8)
    check.close("singular values^2 / n = eigenvalues of the covariance (relative)",
                s ** 2 / len(A) / lam_ref[0], lam_ref / lam_ref[0], atol=TOL,
                demo=True)                                   # numpy's svd against numpy's eigh

    # 3. Eckart-Young for every rank k.
    ks = np.arange(0, r + 1)
    fro2 = np.array([np.sum((A - rank_k(U, s, Vt, k)) ** 2) for k in ks])
    discarded = np.array([np.sum(s[k:] ** 2) for k in ks])
    total = np.sum(s ** 2)
    check.close("|A - A_k|_F^2 vs sum of discarded sigma_i^2, all k (relative to |A|_F^2)",
                fro2 / total, discarded / total, atol=TOL)
    k = 10
    spec = np.linalg.norm(A - rank_k(U, s, Vt, k), ord=2)
    check.close(f"spectral norm |A - A_{k}|_2 vs sigma_{k + 1} (relative)", spec / s[0],
                s[k] / s[0], atol=TOL)
    # "Best" is a real claim: another rank-k approximation, here projecting onto k random
    # orthonormal directions, must leave a larger error.
    Qr, _ = np.linalg.qr(rng.normal(size=(A.shape[1], k)))  # (64, k)
    random_err = np.sum((A - A @ Qr @ Qr.T) ** 2)
    check.greater(f"random rank-{k} error / SVD rank-{k} error", random_err / fro2[k], 1.0)
    kept = 1 - fro2[k] / total
    print(f"rank {k} keeps {kept:.3f} of the energy, storing {k * (len(A) + 64 + 1)} numbers "
          f"instead of {A.size}")

    figure(run, s, r, A, mean, U, Vt)
    band = "under half" if kept < 0.5 else "over 95%" if kept > 0.95 else "half to 95%"
    return cli.finish(run, {"images": len(A), "lambda_1": float(lam1),
                            f"energy_kept_rank{k}": float(kept)}, answers={
        "rank10_energy": (band, f"rank {k} keeps {kept:.3f} of the energy (svd_digits.png, "
                                "lower left)"),
        "full_rank": ("yes" if r == A.shape[1] else "no",
                      f"{r} of {A.shape[1]} singular values above 1e-6 sigma_1 "
                      "(svd_digits.png, upper left)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 02.02`) before running it;
# `python -m dlcourse check 02.02` compares your answers with what the run measures.
# PREDICT rank10_energy (under half / half to 95% / over 95%): of the 64 pixel directions, how much of the centred digits' energy do the best 10 keep?
# ANSWER rank10_energy:
# PREDICT full_rank (yes / no): does the centred digits matrix have all 64 singular values nonzero (full column rank)?
# ANSWER full_rank:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
