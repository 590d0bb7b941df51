"""18 - Generative vs discriminative models; EM for a Gaussian mixture (phase 02, week 3)

Goal: write Gaussian naive Bayes and LDA (generative: model p(x | y) and p(y), then Bayes' rule)
      from scratch, race them against logistic regression (discriminative: model p(y | x) directly)
      as the training set grows, then fit a Gaussian mixture with EM from scratch and watch its
      log-likelihood climb at every iteration.
Run:  python phase02-math/18-generative-vs-discriminative.py            (about 10 s on a shared 2-core CPU)
      python phase02-math/18-generative-vs-discriminative.py --quick    (seconds, offline, used by the tests)
      --steps N sets the EM iterations (100; 40 with --quick)
Expect: our naive Bayes and LDA probabilities equal GaussianNB's and LinearDiscriminantAnalysis's
      on wine (max diff ~1e-14); learning curves on generated data that break naive Bayes'
      independence: logistic regression ends clearly ahead (full, seed 0: error 0.158 vs naive
      Bayes 0.208 at n = 1024), while at n = 24-48 naive Bayes is ahead on average (0.298 vs
      0.320 at n = 24; seeds 0-4 quick agree, but by less than the spread between training sets,
      so it is printed, not checked); EM's log-likelihood never decreases, and from the same
      start our weights, means, covariances and every iteration's log-likelihood equal sklearn
      GaussianMixture's (diff ~1e-15); learning_curves.png, gmm.png.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

EM_STEPS = 100        # EM iterations (--steps overrides); each is one E-step and one M-step
QUICK_EM_STEPS = 40   # --quick


def parse_args(argv=None):
    return cli.parser(__doc__, steps=(EM_STEPS, QUICK_EM_STEPS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load anything heavy:
                          # a mistyped flag fails at once with a one-line message

import warnings

import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.datasets import load_wine
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB

from dlcourse import check, data, lessons, plot
import matplotlib.pyplot as plt
from matplotlib.patches import Ellipse

knn_kmeans = lessons.load("02.13")   # kmeans_pp: k-means++ seeds start EM's means

VAR_SMOOTHING = 1e-9  # GaussianNB's default: add this fraction of the largest feature variance
                      # to every variance, so a constant feature cannot divide by zero
# Learning curves (generated data, see make_population)
N_FEATURES = 20       # features; logistic regression has to learn one weight per feature
N_BLOCK = 5           # features that are near-copies of one another (naive Bayes counts them 5 times)
RHO = 0.9             # correlation inside that block
SHIFT = 0.5           # class mean difference, in units of each feature's own standard deviation
LR_C = 1e4            # logistic regression almost unregularised, as in Ng & Jordan (2001)
SIZES = (8, 12, 24, 48, 96, 192, 384, 1024)   # training-set sizes of the learning curves
REPEATS = 20          # random training sets per size (mean and spread)
N_TEST = 4000         # fresh test points for the curves
# Gaussian mixture (generated 2-D data)
K = 3                 # mixture components
N_GMM = 1500          # points
REG_COVAR = 1e-6      # added to each covariance's diagonal in the M-step (sklearn's default)
MONOTONE_RTOL = 1e-10 # EM may not lower the log-likelihood by more than rounding

# --quick: the same lesson, smaller
QUICK = dict(REPEATS=10, N_TEST=2000, N_GMM=600)


# ---------------------------------------------------------------- generative classifiers
def softmax_rows(log_joint):
    """p(y = c | x) = exp(log p(x, c) - log sum_c' exp log p(x, c')): Bayes' rule in log space.
    The log-sum-exp subtracts the row maximum first, so a point far from every class (all joint
    densities ~1e-300) still gets probabilities that sum to 1 instead of 0/0."""
    return np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))


def fit_naive_bayes(x, y):
    """Gaussian naive Bayes: within each class, the features are independent Gaussians.
    Parameters: per class c, prior pi_c = N_c / N, means mu_cj and variances s2_cj (maximum
    likelihood, so divided by N_c, not N_c - 1), plus GaussianNB's epsilon =
    VAR_SMOOTHING * (largest variance of any feature over all of x) added to every s2_cj."""
    # EXERCISE fit_naive_bayes: per class: prior N_c / N, feature means, ML variances (ddof 0) plus eps = VAR_SMOOTHING * the largest variance of any feature over all x; return dict(mu, var, prior)
    classes = np.unique(y)
    eps = VAR_SMOOTHING * np.var(x, axis=0).max()
    mu = np.stack([x[y == c].mean(0) for c in classes])               # (C, D)
    var = np.stack([x[y == c].var(0) for c in classes]) + eps          # (C, D)
    prior = np.array([np.mean(y == c) for c in classes])               # (C,)
    return dict(mu=mu, var=var, prior=prior)
    # END EXERCISE


def naive_bayes_log_joint(model, x):
    """log p(x, c) = log pi_c + sum_j log N(x_j; mu_cj, s2_cj): independence turns the joint
    density into a sum over features of 1-D log densities."""
    mu, var = model["mu"], model["var"]
    diff2 = (x[:, None, :] - mu[None]) ** 2                                         # (N, C, D)
    log_lik = -0.5 * (np.log(2 * np.pi * var)[None] + diff2 / var[None]).sum(2)     # (N, C)
    return np.log(model["prior"])[None] + log_lik


def fit_lda(x, y):
    """LDA: Gaussian classes sharing one covariance S. The shared S makes the x^T S^-1 x terms
    cancel between classes, so log p(x, c) = w_c . x + b_c is linear in x, with
    w_c = S^-1 mu_c and b_c = -mu_c^T S^-1 mu_c / 2 + log pi_c (the same family of boundaries as
    logistic regression; LDA fits it generatively). S is the pooled maximum-likelihood estimate
    sum_c pi_c S_c, as LinearDiscriminantAnalysis computes it. lstsq, not solve, so that a
    singular S (fewer points than features) still gives an answer (the minimum-norm one)."""
    # EXERCISE fit_lda: S = sum_c pi_c S_c (ML class covariances); w_c = S^-1 mu_c via np.linalg.lstsq; b_c = -mu_c . w_c / 2 + log pi_c; return dict(w, b)
    classes = np.unique(y)
    prior = np.array([np.mean(y == c) for c in classes])                              # (C,)
    mu = np.stack([x[y == c].mean(0) for c in classes])                               # (C, D)
    cov = sum(p * np.cov(x[y == c].T, bias=True) for p, c in zip(prior, classes))     # (D, D)
    w = np.linalg.lstsq(cov, mu.T, rcond=None)[0].T                                   # (C, D)
    b = -0.5 * (mu * w).sum(1) + np.log(prior)                                        # (C,)
    return dict(w=w, b=b)
    # END EXERCISE


def lda_log_joint(model, x):
    """log p(x, c) up to a term the same for every class (which Bayes' rule cancels)."""
    return x @ model["w"].T + model["b"]


def make_population(rng_fixed):
    """Two Gaussian classes with a shared covariance, where naive Bayes' assumption is wrong:
    features have very different scales (0.1 ... 10), every feature is equally informative
    (mean shift SHIFT x its scale), and N_BLOCK of them are correlated RHO with one another.
    Naive Bayes treats the block as N_BLOCK independent pieces of evidence and overweights it;
    LDA (whose assumption holds here) and logistic regression can learn to discount it."""
    scale = np.geomspace(0.1, 10.0, N_FEATURES)[rng_fixed.permutation(N_FEATURES)]   # (D,)
    corr = np.eye(N_FEATURES)
    corr[:N_BLOCK, :N_BLOCK] = RHO + (1 - RHO) * np.eye(N_BLOCK)
    cov = corr * np.outer(scale, scale)                                               # (D, D)
    return np.linalg.cholesky(cov), SHIFT * scale


def sample(population, n, rng):
    """n points, labels 0/1 with probability 1/2 each; at least two of each class (so every
    per-class mean and variance exists)."""
    chol, shift = population
    while True:
        y = rng.integers(0, 2, n)
        if np.bincount(y, minlength=2).min() >= 2:
            break
    x = rng.normal(size=(n, len(shift))) @ chol.T + np.outer(y - 0.5, shift)    # (n, D)
    return x, y


def learning_curves(population, rng, repeats, n_test):
    """Test error of naive Bayes, LDA and logistic regression, REPEATS training sets per size."""
    x_te, y_te = sample(population, n_test, rng)
    errors = {name: np.zeros((len(SIZES), repeats)) for name in ("naive Bayes", "LDA", "logistic")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)   # separable tiny sets: weights grow
        for i, n in enumerate(SIZES):
            for r in range(repeats):
                x, y = sample(population, n, rng)
                nb = naive_bayes_log_joint(fit_naive_bayes(x, y), x_te).argmax(1)
                lda = lda_log_joint(fit_lda(x, y), x_te).argmax(1)
                lr = LogisticRegression(C=LR_C, solver="newton-cholesky", max_iter=1000).fit(x, y).predict(x_te)
                for name, pred in (("naive Bayes", nb), ("LDA", lda), ("logistic", lr)):
                    errors[name][i, r] = np.mean(pred != y_te)
    return errors


# ---------------------------------------------------------------- EM for a Gaussian mixture
def component_log_densities(x, weights, means, covs):
    """log pi_k + log N(x_i; mu_k, S_k) for every point and component, via the Cholesky factor
    S_k = L L^T: the Mahalanobis term is ||L^-1 (x - mu_k)||^2 and log det S_k = 2 sum log diag L."""
    n, d = x.shape
    out = np.empty((n, len(weights)))                                              # (N, K)
    for k in range(len(weights)):
        chol = np.linalg.cholesky(covs[k])
        z = np.linalg.solve(chol, (x - means[k]).T)                                # (d, N)
        log_det = 2.0 * np.log(np.diag(chol)).sum()
        out[:, k] = np.log(weights[k]) - 0.5 * (d * np.log(2 * np.pi) + log_det + (z * z).sum(0))
    return out


def e_step(x, weights, means, covs):
    """Responsibilities r_ik = p(component k | x_i) (each row sums to 1) and the per-point
    log-likelihood log p(x_i) = log sum_k pi_k N(x_i; mu_k, S_k), both in log space: a point
    far from every component has all K densities below 1e-308, and log(sum(exp(.))) would give
    log 0 = -inf there, then 0/0 responsibilities."""
    log_joint = component_log_densities(x, weights, means, covs)                    # (N, K)
    log_px = logsumexp(log_joint, axis=1)                                          # (N,)
    return np.exp(log_joint - log_px[:, None]), log_px


def m_step(x, resp):
    """Maximise the expected complete-data log-likelihood for fixed responsibilities: each
    component is fitted to all points, point i counting r_ik times. N_k = sum_i r_ik (sklearn adds
    10 machine epsilons so an empty component cannot divide by zero), pi_k = N_k / N,
    mu_k = sum_i r_ik x_i / N_k, S_k = sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T / N_k + REG_COVAR I
    (the small ridge keeps S_k invertible if a component collapses onto one point)."""
    # EXERCISE m_step: N_k = sum_i r_ik (+ 10 eps); mu_k = sum_i r_ik x_i / N_k; S_k = sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T / N_k + REG_COVAR I; weights N_k / N
    nk = resp.sum(0) + 10 * np.finfo(float).eps                                    # (K,)
    means = resp.T @ x / nk[:, None]                                               # (K, d)
    covs = np.empty((len(nk), x.shape[1], x.shape[1]))                             # (K, d, d)
    for k in range(len(nk)):
        diff = x - means[k]                                                        # (N, d)
        covs[k] = (resp[:, k, None] * diff).T @ diff / nk[k] + REG_COVAR * np.eye(x.shape[1])
    return nk / nk.sum(), means, covs
    # END EXERCISE


def em(x, weights, means, covs, steps):
    """steps rounds of E then M. Returns the final parameters and the mean log-likelihood seen at
    each E-step (that is, of the parameters *before* that round's M-step, as sklearn records it)."""
    history = []
    for _ in range(steps):
        resp, log_px = e_step(x, weights, means, covs)
        history.append(log_px.mean())
        weights, means, covs = m_step(x, resp)
    return weights, means, covs, np.array(history)


def make_mixture(rng, n):
    """K 2-D Gaussian clusters of unequal size, shape and tilt, overlapping a little (so the
    responsibilities are soft and EM has work to do)."""
    weights = np.array([0.5, 0.3, 0.2])
    means = np.array([[0.0, 0.0], [4.0, 3.0], [-1.0, 5.0]]) + rng.uniform(-0.5, 0.5, (K, 2))
    angles = rng.uniform(0, np.pi, K)
    sds = np.array([[2.0, 0.6], [1.2, 0.4], [0.8, 0.8]])
    z = rng.choice(K, size=n, p=weights)
    x = np.empty((n, 2))
    for k in range(K):
        c, s = np.cos(angles[k]), np.sin(angles[k])
        rot = np.array([[c, -s], [s, c]])
        m = z == k
        x[m] = means[k] + (rng.normal(size=(m.sum(), 2)) * sds[k]) @ rot.T
    return x, z


def ellipse(ax, mean, cov, color):
    """The 2-standard-deviation contour of N(mean, cov): axes along cov's eigenvectors."""
    vals, vecs = np.linalg.eigh(cov)
    angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
    ax.add_patch(Ellipse(mean, 4 * np.sqrt(vals[1]), 4 * np.sqrt(vals[0]), angle=angle,
                         fill=False, color=color, lw=2))


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    cfg = dict(REPEATS=REPEATS, N_TEST=N_TEST, N_GMM=N_GMM) | (QUICK if run.quick else {})
    rng = np.random.default_rng(run.seed)

    # 1. Naive Bayes and LDA from scratch vs sklearn, on wine: three classes of unequal size
    # (59/71/48, so the priors matter), 13 features in very different units.
    wine = load_wine()
    data.announce("scikit-learn wine", kind="bundled",
                  detail=f"{len(wine.data)} wines, 13 chemical measurements, 3 cultivars")
    x_tr, x_te, y_tr, y_te = train_test_split(wine.data, wine.target, test_size=0.3,
                                              stratify=wine.target, random_state=run.seed)
    # Test rows sit inside their classes (probabilities ~0 or 1); random points spread over the
    # data's range land between classes too, where every term of the formula shows.
    queries = np.vstack([x_te, rng.uniform(wine.data.min(0), wine.data.max(0), (300, 13))])
    ours_nb = softmax_rows(naive_bayes_log_joint(fit_naive_bayes(x_tr, y_tr), queries))
    ref_nb = GaussianNB(var_smoothing=VAR_SMOOTHING).fit(x_tr, y_tr)
    check.close("naive Bayes p(y | x) vs GaussianNB.predict_proba (test rows + 300 random points)",
                ours_nb, ref_nb.predict_proba(queries), atol=1e-10)
    ours_lda = softmax_rows(lda_log_joint(fit_lda(x_tr, y_tr), queries))
    ref_lda = LinearDiscriminantAnalysis(solver="lsqr").fit(x_tr, y_tr)
    check.close("LDA p(y | x) vs LinearDiscriminantAnalysis(solver='lsqr').predict_proba",
                ours_lda, ref_lda.predict_proba(queries), atol=1e-10)
    acc = {"naive Bayes": float(np.mean(ours_nb[:len(y_te)].argmax(1) == y_te)),
           "LDA": float(np.mean(ours_lda[:len(y_te)].argmax(1) == y_te))}
    print("wine test accuracy:", " | ".join(f"{k} {v:.3f}" for k, v in acc.items()))

    # 2. Learning curves (Ng & Jordan 2001): naive Bayes estimates 2 means and 2 variances per
    # feature, each from half the data, and approaches its (biased) limit after few points;
    # logistic regression fits all weights jointly and needs more points, but its limit is the
    # best linear rule. Same population for every seed (fixed generator), fresh samples per seed.
    population = make_population(np.random.default_rng(2001))
    data.announce("two correlated Gaussian classes", kind="generated",
                  detail=f"{N_FEATURES} features with scales 0.1-10, {N_BLOCK} of them correlated "
                         f"{RHO}; train sizes {SIZES[0]}-{SIZES[-1]}, {cfg['REPEATS']} draws each, "
                         f"{cfg['N_TEST']} test points")
    errors = learning_curves(population, rng, cfg["REPEATS"], cfg["N_TEST"])
    print("test error, mean (sd) over training sets:")
    print("      n  " + "".join(f"{name:>17}" for name in errors))
    for i, n in enumerate(SIZES):
        print(f"  {n:5d}  " + "".join(f"{e[i].mean():9.3f} ({e[i].std():.3f})" for e in errors.values()))
    nb_err, lr_err = errors["naive Bayes"].mean(1), errors["logistic"].mean(1)
    # The large-n end is robust (a gap of several points against a standard error below one);
    # the small-n end is not: at n = 24, naive Bayes is ahead on average for most seeds, but the
    # spread between training sets is larger than the gap, so it is printed, not checked.
    big_se = np.hypot(errors["naive Bayes"][-1].std(), errors["logistic"][-1].std()) / np.sqrt(cfg["REPEATS"])
    check.greater(f"n = {SIZES[-1]}: naive Bayes error exceeds logistic regression's by > 3 "
                  f"standard errors ({3 * big_se:.3f})", nb_err[-1] - lr_err[-1], 3 * big_se)
    small = SIZES.index(24)
    ahead = [n for n, a, b in zip(SIZES, nb_err, lr_err) if a < b]
    print(f"n = 24: naive Bayes {nb_err[small]:.3f} vs logistic {lr_err[small]:.3f} "
          f"({'generative ahead' if nb_err[small] < lr_err[small] else 'discriminative ahead'}); "
          f"naive Bayes has the lower mean error at n = {ahead if ahead else 'none'}")

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, e in errors.items():
        ax.errorbar(SIZES, e.mean(1), yerr=e.std(1), marker="o", capsize=3, label=name)
    ax.set(xscale="log", xlabel="training-set size n", ylabel="test error",
           title="generative vs discriminative (mean +- sd)")
    ax.legend()
    plot.save(fig, run, "learning_curves.png")

    # 3. EM for a Gaussian mixture. Start: k-means++ seeds as means, equal weights, every
    # covariance the data's overall covariance (broad, so each component sees every point).
    x, z = make_mixture(rng, cfg["N_GMM"])
    data.announce("Gaussian mixture in 2-D", kind="generated",
                  detail=f"{cfg['N_GMM']} points from {K} tilted, unequal clusters")
    w0 = np.full(K, 1.0 / K)
    m0 = knn_kmeans.kmeans_pp(x, K, rng)
    c0 = np.stack([np.cov(x.T, bias=True)] * K)
    weights, means, covs, ll = em(x, w0, m0, c0, run.steps)
    drops = np.diff(ll)
    check.true(f"log-likelihood never decreases over {run.steps} EM iterations",
               np.all(drops >= -MONOTONE_RTOL * np.abs(ll[:-1])),
               f"largest decrease {max(0.0, -drops.min()):.2g} (allowed {MONOTONE_RTOL:g} relative); "
               f"from {ll[0]:.4f} to {ll[-1]:.4f} per point")
    ref = GaussianMixture(K, covariance_type="full", weights_init=w0, means_init=m0,
                          precisions_init=np.linalg.inv(c0), reg_covar=REG_COVAR, tol=0.0,
                          max_iter=run.steps, init_params="random", random_state=run.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)   # tol=0: it never 'converges'
        ref.fit(x)
    check.close("EM log-likelihood at every iteration vs GaussianMixture.lower_bounds_",
                ll, np.array(ref.lower_bounds_), atol=1e-9)
    check.close("EM weights vs GaussianMixture.weights_ (same start)", weights, ref.weights_, atol=1e-6)
    check.close("EM means vs GaussianMixture.means_", means, ref.means_, atol=1e-6)
    check.close("EM covariances vs GaussianMixture.covariances_", covs, ref.covariances_, atol=1e-6)
    # The per-point log-likelihood, including points far from every component (where the
    # densities underflow), against scipy's multivariate normal with our final parameters.
    far = np.array([[200.0, -200.0], [-300.0, 150.0]])
    pts = np.vstack([x, far])
    ref_lp = logsumexp(np.stack([np.log(weights[k]) + multivariate_normal(means[k], covs[k]).logpdf(pts)
                                 for k in range(K)], 1), axis=1)
    resp, log_px = e_step(pts, weights, means, covs)
    check.close("log p(x) vs scipy multivariate_normal + logsumexp (2 far-away points included)",
                log_px, ref_lp, atol=1e-9, rtol=1e-12)
    check.close("responsibilities sum to 1 for every point (far ones too)", resp.sum(1),
                np.ones(len(pts)), atol=1e-12)
    print(f"EM: {run.steps} iterations, mean log-likelihood {ll[0]:.4f} -> {ll[-1]:.4f}; "
          f"weights {np.round(weights, 3).tolist()} (true 0.5, 0.3, 0.2)")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    colors = ["tab:blue", "tab:orange", "tab:green"]
    axes[0].scatter(x[:, 0], x[:, 1], s=5, c=np.array(colors)[resp[:len(x)].argmax(1)], alpha=0.5)
    for k in range(K):
        ellipse(axes[0], means[k], covs[k], colors[k])
        ellipse(axes[0], m0[k], c0[k], "gray")
    axes[0].set(title="EM fit: 2-sd ellipses (gray: start)", aspect="equal")
    axes[1].plot(np.arange(1, len(ll) + 1), ll, "o-", ms=3)
    axes[1].set(xlabel="EM iteration", ylabel="mean log-likelihood", title="never decreases")
    plot.save(fig, run, "gmm.png")
    falls = int(np.sum(drops < -MONOTONE_RTOL * np.abs(ll[:-1])))   # beyond round-off
    return cli.finish(run, {"steps": run.steps, "wine_acc": acc,
                            "nb_error": {n: round(float(e), 4) for n, e in zip(SIZES, nb_err)},
                            "lr_error": {n: round(float(e), 4) for n, e in zip(SIZES, lr_err)},
                            "lda_error": {n: round(float(e), 4)
                                          for n, e in zip(SIZES, errors["LDA"].mean(1))},
                            "em_loglik": float(ll[-1]), "em_weights": weights.tolist()}, answers={
        "large_n_winner": ("naive bayes" if nb_err[-1] < lr_err[-1] else "logistic",
                           f"test error at n = {SIZES[-1]}: naive Bayes {nb_err[-1]:.3f}, logistic "
                           f"{lr_err[-1]:.3f} (learning_curves.png)"),
        "em_decreases": ("yes" if falls else "no",
                         f"{falls} of {len(ll) - 1} EM iterations lowered the mean log-likelihood by more "
                         f"than round-off ({MONOTONE_RTOL:g} relative), "
                         f"{ll[0]:.4f} -> {ll[-1]:.4f} (gmm.png)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 02.18`) before running it;
# `python -m dlcourse check 02.18` compares your answers with what the run measures.
# PREDICT large_n_winner (naive bayes / logistic): the features are correlated in a block, against naive Bayes' assumption; at the largest training size, which has the lower test error?
# ANSWER large_n_winner:
# PREDICT em_decreases (yes / no): does EM's log-likelihood ever go down (by more than round-off) from one iteration to the next?
# ANSWER em_decreases:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
