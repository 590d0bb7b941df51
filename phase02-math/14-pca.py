"""14 - PCA by SVD (phase 02, week 3)

Goal: compute principal components of the 8x8 digits with one SVD, measure how much variance
      each keeps, and look at 64-D digits in 2-D.
Run:  python phase02-math/14-pca.py            (all 1797 digits; a few seconds on a 2-core CPU)
      python phase02-math/14-pca.py --quick    (seconds, offline, used by the tests)
Expect: components equal sklearn's PCA up to sign (diff ~1e-14); the first 2 components keep 28.5%
      of the variance and 29 components keep 95% (full run, as PCA(n_components=0.95) finds);
      figure pca.png shows digit clusters in the 2-D view and the components as images.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from dlcourse import check, data, plot
import matplotlib.pyplot as plt

N_COMPONENTS = 10      # components compared with sklearn
KEEP_VARIANCE = 0.95   # report how many components keep this share of the variance
RECON_K = 2            # k for the reconstruction-error check (the 2-D view)


def pca_svd(x):
    """PCA = SVD of the centred data.

    Centre: X_c = X - mean. Then X_c = U S V^T, and the covariance is
        C = X_c^T X_c / (N - 1) = V diag(S^2 / (N - 1)) V^T,
    so the rows of V^T are the eigenvectors of C (the principal directions, orthonormal),
    and S^2 / (N - 1) are the variances along them, largest first. Projecting onto the first k
    directions, Z = X_c V_k = U_k S_k, keeps the most variance any k-D linear view can keep
    (Eckart-Young: it is the best rank-k approximation of X_c).
    Working on X_c directly, not on C, avoids squaring the condition number.
    """
    # EXERCISE pca_svd: centre by the column means, thin SVD of the centred data; variances along the rows of V^T are S^2 / (N - 1); return (mean, vt, var, s)
    mean = x.mean(0)
    u, s, vt = np.linalg.svd(x - mean, full_matrices=False)   # u (N, r), s (r,), vt (r, D)
    var = s ** 2 / (len(x) - 1)
    return mean, vt, var, s
    # END EXERCISE


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    d = load_digits()
    n = 500 if run.quick else len(d.data)
    x, y = d.data[:n], d.target[:n]                            # (N, 64) pixel intensities 0..16
    data.announce("scikit-learn digits (8x8 scans of handwritten digits)", kind="bundled",
                  detail=f"{n} of {len(d.data)} images, 64 pixels")

    mean, vt, var, s = pca_svd(x)
    ratio = var / var.sum()
    ref = PCA(n_components=N_COMPONENTS, svd_solver="full").fit(x)
    # An eigenvector's sign is arbitrary (v and -v are both unit eigenvectors): align ours to
    # sklearn's before comparing, one component at a time.
    signs = np.sign((vt[:N_COMPONENTS] * ref.components_).sum(1))  # (k,)
    ours = vt[:N_COMPONENTS] * signs[:, None]
    check.close("components vs sklearn PCA (up to sign)", ours, ref.components_, atol=1e-8)
    check.close("explained variance vs explained_variance_", var[:N_COMPONENTS],
                ref.explained_variance_, atol=1e-8, rtol=1e-10)
    check.close("explained variance ratio vs explained_variance_ratio_", ratio[:N_COMPONENTS],
                ref.explained_variance_ratio_, atol=1e-12)
    z = (x - mean) @ ours.T                                    # (N, k) coordinates
    check.close("projection vs PCA.transform", z, ref.transform(x), atol=1e-8)

    # The covariance route gives the same directions (eigh returns ascending eigenvalues).
    eigval, eigvec = np.linalg.eigh(np.cov(x, rowvar=False))
    check.close("eigenvalues of the covariance matrix vs S^2/(N-1)", eigval[::-1][:N_COMPONENTS],
                var[:N_COMPONENTS], atol=1e-8, rtol=1e-10)

    # Reconstruction: going down to k dims and back loses exactly the discarded variance:
    # ||X_c - Z_k V_k^T||_F^2 = sum_{i>k} s_i^2.
    recon = z[:, :RECON_K] @ ours[:RECON_K] + mean
    err = np.sum((x - recon) ** 2)
    check.close(f"rank-{RECON_K} reconstruction error vs sum of dropped s_i^2", err,
                np.sum(s[RECON_K:] ** 2), atol=1e-6, rtol=1e-10)

    cum = np.cumsum(ratio)
    k95 = int(np.searchsorted(cum, KEEP_VARIANCE) + 1)   # first k whose cumulative share reaches it
    check.equal(f"components needed for {KEEP_VARIANCE:.0%} vs PCA(n_components={KEEP_VARIANCE})",
                k95, int(PCA(n_components=KEEP_VARIANCE, svd_solver="full").fit(x).n_components_))
    print(f"variance kept: 2 components {cum[1]:.1%} | 10 components {cum[9]:.1%} | "
          f"{k95} components reach {KEEP_VARIANCE:.0%} (of 64 pixels)")
    check.less(f"{KEEP_VARIANCE:.0%} of the variance needs far fewer than 64 dims", k95, 48)

    fig = plt.figure(figsize=(15, 4.8))
    grid = fig.add_gridspec(4, 8, wspace=0.6, hspace=0.5)
    ax = fig.add_subplot(grid[:, :3])
    ax.scatter(z[:, 0], z[:, 1], c=y, cmap="tab10", s=8)
    for digit in range(10):                                    # label each class at its centre
        cx, cy = np.median(z[y == digit, :2], axis=0)
        ax.text(cx, cy, str(digit), fontsize=14, weight="bold", ha="center", va="center",
                bbox=dict(boxstyle="circle", fc="white", alpha=0.8))
    ax.set(xlabel="PC 1", ylabel="PC 2", title=f"digits in 2-D ({cum[1]:.0%} of the variance)")
    ax = fig.add_subplot(grid[:, 3:6])
    ax.plot(np.arange(1, len(cum) + 1), cum, ".-")
    ax.axhline(KEEP_VARIANCE, ls="--", c="gray")
    ax.axvline(k95, ls="--", c="gray")
    ax.set(xlabel="components kept", ylabel="cumulative explained variance",
           title=f"{k95} components keep {KEEP_VARIANCE:.0%}")
    lim = np.abs(ours[:8]).max()
    for i in range(8):                                         # the first principal directions as images
        sub = fig.add_subplot(grid[i // 2, 6 + i % 2])
        sub.imshow(ours[i].reshape(8, 8), cmap="RdBu", vmin=-lim, vmax=lim)  # (64,) -> (8, 8)
        sub.set_title(f"PC {i + 1}", fontsize=8)
        sub.set(xticks=[], yticks=[])
    plot.save(fig, run, "pca.png")
    return cli.finish(run, {"var_2d": float(cum[1]), "k_95": k95}, answers={
        "var_2d": ("under 10%" if cum[1] < 0.1 else "10% to 50%" if cum[1] <= 0.5 else "over 50%",
                   f"the first 2 components keep {cum[1]:.1%} of the variance (pca.png, middle)"),
        "k_95": ("under 10" if k95 < 10 else "10 to 40" if k95 <= 40 else "over 40",
                 f"{k95} of 64 components reach {KEEP_VARIANCE:.0%} (pca.png, middle)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 02.14`) before running it;
# `python -m dlcourse check 02.14` compares your answers with what the run measures.
# PREDICT var_2d (under 10% / 10% to 50% / over 50%): the 2-D view of the 64-pixel digits keeps what share of their variance?
# ANSWER var_2d:
# PREDICT k_95 (under 10 / 10 to 40 / over 40): how many of the 64 principal components are needed to keep 95% of the variance?
# ANSWER k_95:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
