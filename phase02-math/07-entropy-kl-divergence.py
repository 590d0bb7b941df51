"""07 - Entropy, cross-entropy and KL divergence (phase 02, week 2)

Goal: compute entropy, cross-entropy and KL divergence from their definitions, prove
      CE = H + KL numerically, match torch's cross_entropy / kl_div and scikit-learn's
      log_loss, and make log-sum-exp safe against overflow.
Run:  python phase02-math/07-entropy-kl-divergence.py            (about 9 s on a 2-core CPU)
      python phase02-math/07-entropy-kl-divergence.py --quick    (about 6 s, offline)
Expect: "[check] H(p, q) = H(p) + KL(p || q) ...: max |diff| ~1e-15"; KL >= 0 on every
        random pair; our cross-entropy equals F.cross_entropy, F.kl_div and sklearn's
        log_loss to round-off (max |diff| 0 in float64); naive log-sum-exp overflows to inf
        where the stable one does not; figure entropy_kl.png shows forward KL covering both
        modes, reverse KL picking one.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import numpy as np
import torch
import torch.nn.functional as F
from scipy import special
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

from dlcourse import check, data, plot
import matplotlib.pyplot as plt

K = 10                        # classes in the random-distribution experiments
PAIRS_QUICK, PAIRS_FULL = 2_000, 200_000   # random (p, q) pairs for the KL >= 0 check
DIGITS_QUICK = 600            # digits used in --quick (the full run uses all 1797)
GRID_QUICK, GRID_FULL = 60, 240            # (mu, sigma) grid size for the Gaussian fits
MIX_MEANS, MIX_SD = (-2.5, 2.5), 0.8       # the bimodal target p(x): two equal bumps
SMOOTHING = 0.1               # label-smoothing strength for the entropy-floor example


# --- Definitions (natural log: nats; divide by ln 2 for bits) ---------------------------
# Entropy        H(p)     = -sum_i p_i log p_i   average surprise of outcomes drawn from p;
#                                                 0 for a certain outcome, log K for uniform.
# Cross-entropy  H(p, q)  = -sum_i p_i log q_i   average surprise if we *expect* q while the
#                                                 world draws from p. A classifier's loss.
# KL divergence  KL(p||q) =  sum_i p_i log(p_i / q_i)   the extra surprise from using q.
# Hence H(p, q) = H(p) + KL(p || q). Gibbs' inequality: KL >= 0, with equality iff p = q
# (log is concave, so by Jensen  -KL = sum p log(q/p) <= log sum p (q/p) = log 1 = 0).
# Training a classifier minimises H(p, q); H(p) does not depend on the model, so this is
# the same as minimising KL(p || q). With one-hot labels H(p) = 0 and CE = KL.
# Convention: 0 log 0 = 0 (the limit of x log x as x -> 0).
def entropy(p):
    # EXERCISE entropy: H(p) = -sum_i p_i log p_i in nats over the last axis, with 0 log 0 = 0 (take the log only where p > 0)
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)
    # END EXERCISE


def cross_entropy(p, q):
    return -np.sum(np.where(p > 0, p * np.log(q), 0.0), axis=-1)


def kl(p, q):
    # EXERCISE kl: KL(p || q) = sum_i p_i (log p_i - log q_i) over the last axis; terms with p_i = 0 count 0
    return np.sum(np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - np.log(q)), 0.0),
                  axis=-1)
    # END EXERCISE


# --- log-sum-exp ------------------------------------------------------------------------
# Softmax and cross-entropy need log sum_j exp(z_j). exp(1000) overflows float64 (and
# exp(89) overflows float32). Since log sum_j e^{z_j} = m + log sum_j e^{z_j - m} for any m,
# pick m = max_j z_j: every exponent is then <= 0, the largest term is exactly 1, nothing
# overflows, and the sum is >= 1 so its log is safe too.
def logsumexp_naive(z):
    return np.log(np.sum(np.exp(z), axis=-1))


def logsumexp(z):
    # EXERCISE logsumexp: LSE(z) = m + log sum_j exp(z_j - m) with m = max_j z_j over the last axis (keepdims, then drop it)
    m = np.max(z, axis=-1, keepdims=True)
    return (m + np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True)))[..., 0]
    # END EXERCISE


def log_softmax(z):
    return z - logsumexp(z)[..., None]          # log(e^{z_i} / sum e^{z_j}) = z_i - LSE(z)


def random_distributions(rng, n, k, concentration=0.5):
    """n random probability vectors over k outcomes (normalised gamma draws = Dirichlet)."""
    g = rng.gamma(concentration, size=(n, k))
    return g / g.sum(axis=1, keepdims=True)     # (n, k), rows sum to 1


def fit_gaussian_by_kl(grid_n):
    """Grid search over N(mu, sigma^2) for the bimodal p: forward KL(p||q) and reverse KL(q||p).
    Densities on a fine x grid; integrals become sums times dx."""
    x = np.linspace(-9, 9, 1200)
    dx = x[1] - x[0]
    def log_norm(x, m, s):
        return -0.5 * ((x - m) / s) ** 2 - np.log(s * np.sqrt(2 * np.pi))
    # log p(x) = log(0.5 N(x; m1) + 0.5 N(x; m2)): a log-sum-exp over the two components.
    log_p = logsumexp(np.stack([np.log(0.5) + log_norm(x, m, MIX_SD) for m in MIX_MEANS], -1))
    mus, sigmas = np.linspace(-4, 4, grid_n), np.linspace(0.3, 4, grid_n)
    p = np.exp(log_p)
    forward, reverse = np.empty((grid_n, grid_n)), np.empty((grid_n, grid_n))
    for i, mu in enumerate(mus):                  # one row of the grid at a time: less memory
        log_q = log_norm(x, mu, sigmas[:, None])                         # (G, X)
        q = np.exp(log_q)
        forward[i] = np.sum(p * (log_p - log_q), axis=-1) * dx           # KL(p || q)
        reverse[i] = np.sum(q * (log_q - log_p), axis=-1) * dx           # KL(q || p)
    best = {}
    for name, table in (("forward", forward), ("reverse", reverse)):
        i, j = np.unravel_index(np.argmin(table), table.shape)
        best[name] = (mus[i], sigmas[j])
    return x, p, best, (mus[1] - mus[0], sigmas[1] - sigmas[0])


def figure(run, x, p, best):
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    ax = axes[0]
    t = np.linspace(1e-4, 1 - 1e-4, 400)
    two = lambda a: np.stack([a, 1 - a], -1)                                # noqa: E731
    p0 = 0.3
    ax.plot(t, entropy(two(t)) / np.log(2), "k", label="entropy H(Bernoulli(p)) in bits")
    ax.plot(t, cross_entropy(two(np.full_like(t, p0)), two(t)) / np.log(2), "tab:blue",
            label=f"cross-entropy H(p={p0}, q) in bits, vs q")
    ax.axhline(entropy(two(np.array(p0))) / np.log(2), color="tab:blue", ls=":", lw=1,
               label=f"H(p={p0}): the lowest cross-entropy can go")
    q1 = 0.75
    lo, hi = entropy(two(np.array(p0))) / np.log(2), cross_entropy(two(np.array(p0)),
                                                                   two(np.array(q1))) / np.log(2)
    ax.annotate("", xy=(q1, hi), xytext=(q1, lo),
                arrowprops=dict(arrowstyle="<->", color="tab:red"))
    ax.text(q1 + 0.02, (lo + hi) / 2, f"KL(p || q={q1})", color="tab:red")
    ax.set(xlabel="p (black) or q (blue)", ylabel="bits", ylim=(0, 2.5),
           title="cross-entropy is smallest at q = p, where it equals H(p)")
    ax.legend(fontsize=8, loc="upper center")
    ax = axes[1]
    ax.fill_between(x, p, color="0.8", label="target p: two bumps")
    for (name, (m, s)), colour in zip(best.items(), ("tab:blue", "tab:red")):
        arg = "KL(p || q): mode-covering" if name == "forward" else "KL(q || p): mode-seeking"
        ax.plot(x, np.exp(-0.5 * ((x - m) / s) ** 2) / (s * np.sqrt(2 * np.pi)), color=colour,
                lw=2, label=f"best Gaussian q by {arg} (mu {m:.2f}, sigma {s:.2f})")
    ax.set(xlim=(-7, 7), xlabel="x", title="fitting one Gaussian to two bumps: KL is asymmetric")
    ax.legend(fontsize=8, loc="upper left")
    return plot.save(fig, run, "entropy_kl.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    rng = np.random.default_rng(run.seed)
    data.announce("random probability vectors and logits (numpy)", kind="generated",
                  detail="Dirichlet draws, half of the q's close to their p")

    # 1. Entropy of a few coins, in bits.
    for p in (0.5, 0.9, 0.99):
        print(f"coin P(heads) = {p}: H = {entropy(np.array([p, 1 - p])) / np.log(2):.3f} bits")
    P = random_distributions(rng, PAIRS_QUICK if run.quick else PAIRS_FULL, K)   # (N, K)
    Q = random_distributions(rng, len(P), K)
    # Make half of the q's small perturbations of their p: KL is then close to 0, where a
    # sign error or round-off would show up first.
    half = len(P) // 2
    Q[:half] = P[:half] * np.exp(0.01 * rng.normal(size=(half, K)))
    Q[:half] /= Q[:half].sum(axis=1, keepdims=True)
    H = entropy(P)
    check.true(f"0 <= H(p) <= log K on {len(P):,} random p",
               (H >= -1e-12).all() and (H <= np.log(K) + 1e-12).all(),
               f"range [{H.min():.4f}, {H.max():.4f}], log K = {np.log(K):.4f}")
    check.close("entropy of the uniform distribution = log K", entropy(np.full(K, 1 / K)),
                np.log(K), atol=1e-12)
    # scipy.special.entr(p) = -p log p with the same 0 log 0 = 0 convention. Half of the rows
    # get zeros, so the convention's branch runs (random gamma draws are never exactly 0).
    P0 = P[:100].copy()
    P0[:50, : K // 2] = 0
    P0 /= P0.sum(axis=1, keepdims=True)
    check.close("entropy vs scipy.special.entr, rows with and without zeros", entropy(P0),
                special.entr(P0).sum(axis=1), atol=1e-12)

    # 2. CE = H + KL, Gibbs' inequality, asymmetry.
    check.close("H(p, q) = H(p) + KL(p || q) on every random pair", cross_entropy(P, Q),
                H + kl(P, Q), atol=1e-12)
    kls = kl(P, Q)
    check.greater(f"Gibbs: min KL(p || q) over {len(P):,} random pairs >= 0", kls.min(), -1e-12)
    check.close("KL(p || p) = 0", kl(P, P), np.zeros(len(P)), atol=1e-12)
    a, b = np.array([0.8, 0.15, 0.05]), np.array([0.34, 0.33, 0.33])
    print(f"asymmetry: KL(a || b) = {kl(a, b):.4f} nats, KL(b || a) = {kl(b, a):.4f} nats")
    check.greater("KL is not symmetric: |KL(a||b) - KL(b||a)|", abs(kl(a, b) - kl(b, a)), 0.05)

    # 3. The same quantities from torch. F.cross_entropy takes *logits* (it applies
    # log_softmax itself) and either class indices or target probabilities. F.kl_div takes
    # log q as `input` and p as `target` (note the order) and returns KL(target || input);
    # reduction="batchmean" divides the sum by the batch size, i.e. the mean KL per row.
    logits = rng.normal(scale=3.0, size=(len(P), K))                 # (N, K)
    Qs = np.exp(log_softmax(logits))                                # model probabilities
    labels = rng.integers(0, K, size=len(P))
    lt, Pt = torch.tensor(logits), torch.tensor(P)                  # float64 on the CPU
    check.close("mean H(p, softmax(z)) vs F.cross_entropy(z, p) (soft targets, float64)",
                cross_entropy(P, Qs).mean(), F.cross_entropy(lt, Pt), atol=1e-12)
    check.close("-log softmax(z)[y] vs F.cross_entropy(z, y) (class labels, float64)",
                -log_softmax(logits)[np.arange(len(P)), labels].mean(),
                F.cross_entropy(lt, torch.tensor(labels)), atol=1e-12)
    check.close("mean KL(p || q) vs F.kl_div(log q, p, reduction='batchmean')",
                kl(P, Qs).mean(), F.kl_div(torch.log_softmax(lt, 1), Pt, reduction="batchmean"),
                atol=1e-12)
    dev = run.device   # float32 on the run's device: ~7 significant digits
    ce32 = F.cross_entropy(lt.float().to(dev), Pt.float().to(dev)).item()
    check.close(f"cross-entropy vs F.cross_entropy in float32 on {dev.type}",
                cross_entropy(P, Qs).mean(), ce32, atol=1e-5)

    # 4. log-sum-exp: large logits (common in an untrained or overconfident network).
    big = logits * 300                                              # logits in the thousands
    with np.errstate(over="ignore"):
        naive = logsumexp_naive(big)
    check.true("naive log(sum(exp(z))) overflows on large logits", np.isinf(naive).any(),
               f"{np.isinf(naive).mean():.0%} of rows are inf")
    # Relative to the largest logit; 1e-14 is a few dozen float64 ulps (round-off differs
    # between the two implementations), while a real mistake is off by O(1).
    check.close("stable logsumexp vs torch.logsumexp (relative)",
                logsumexp(big) / np.abs(big).max(), torch.logsumexp(torch.tensor(big), 1)
                / np.abs(big).max(), atol=1e-14)
    check.close("log_softmax vs F.log_softmax on large logits (relative)",
                log_softmax(big) / np.abs(big).max(),
                F.log_softmax(torch.tensor(big), 1) / np.abs(big).max(), atol=1e-14)

    # 5. A real classifier: scikit-learn's logistic regression on digits. Its test loss
    # (sklearn's log_loss) is our cross-entropy with one-hot targets.
    X, y = load_digits(return_X_y=True)
    X, y = (X[:DIGITS_QUICK], y[:DIGITS_QUICK]) if run.quick else (X, y)
    data.announce(f"scikit-learn digits, {len(X)} images (75/25 split)", kind="bundled")
    Xtr, Xte, ytr, yte = train_test_split(X / 16, y, test_size=0.25, random_state=run.seed,
                                          stratify=y)
    probs = LogisticRegression(max_iter=2000).fit(Xtr, ytr).predict_proba(Xte)   # (n_test, 10)
    onehot = np.eye(10)[yte]
    ce_test = cross_entropy(onehot, probs).mean()
    check.close("digits test cross-entropy vs sklearn.metrics.log_loss", ce_test,
                log_loss(yte, probs), atol=1e-12)
    check.close("one-hot targets: CE = KL (H(one-hot) = 0)", ce_test, kl(onehot, probs).mean(),
                atol=1e-12)
    # Label smoothing makes the target (1 - eps) one-hot + eps/K uniform; then H(p) > 0 is
    # a floor the loss can never go below, however good the model.
    smooth = (1 - SMOOTHING) * onehot + SMOOTHING / 10
    floor = entropy(smooth).mean()
    print(f"digits test CE {ce_test:.4f} nats; with label smoothing {SMOOTHING}: CE "
          f"{cross_entropy(smooth, probs).mean():.4f} = H {floor:.4f} + KL "
          f"{kl(smooth, probs).mean():.4f}")
    check.greater("smoothed-label CE stays above its entropy floor",
                  cross_entropy(smooth, probs).mean(), floor)

    # 6. Forward vs reverse KL when q cannot match p (one Gaussian, two bumps).
    x, p, best, (dmu, dsig) = fit_gaussian_by_kl(GRID_QUICK if run.quick else GRID_FULL)
    dx = x[1] - x[0]
    mean_p = np.sum(x * p) * dx
    sd_p = np.sqrt(np.sum((x - mean_p) ** 2 * p) * dx)
    # Minimising KL(p || q) over Gaussians q matches p's mean and variance (set the
    # derivatives of -E_p[log q] in mu and sigma to zero).
    check.close("forward-KL fit vs moment matching (mu, sigma), within one grid step",
                np.array(best["forward"]), [mean_p, sd_p], atol=max(dmu, dsig))
    check.less("reverse-KL sigma / forward-KL sigma (mode-seeking is narrower)",
               best["reverse"][1] / best["forward"][1], 0.5)
    print(f"forward KL fit: mu {best['forward'][0]:.2f}, sigma {best['forward'][1]:.2f};  "
          f"reverse KL fit: mu {best['reverse'][0]:.2f}, sigma {best['reverse'][1]:.2f}")

    figure(run, x, p, best)
    mu_rev = best["reverse"][0]
    near = min(abs(mu_rev - m) for m in MIX_MEANS)
    return cli.finish(run, {"pairs": len(P), "digits_test_ce": float(ce_test),
                            "forward_kl_sigma": float(best["forward"][1]),
                            "reverse_kl_sigma": float(best["reverse"][1])}, answers={
        "kl_larger": ("a first" if kl(a, b) > kl(b, a) else "b first",
                      f"KL(a || b) = {kl(a, b):.4f}, KL(b || a) = {kl(b, a):.4f} nats: b puts 0.33 "
                      "where a has only 0.05"),
        "reverse_kl_mean": ("on one bump" if near < abs(mu_rev) else "between the bumps",
                            f"reverse-KL fit mu {mu_rev:.2f}, sigma {best['reverse'][1]:.2f}; "
                            f"bumps at {MIX_MEANS} (entropy_kl.png, right)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 02.07`) before running it;
# `python -m dlcourse check 02.07` compares your answers with what the run measures.
# PREDICT kl_larger (a first / b first): a = [0.8, 0.15, 0.05], b = [0.34, 0.33, 0.33]; which is larger, KL(a || b) (a first) or KL(b || a)?
# ANSWER kl_larger:
# PREDICT reverse_kl_mean (between the bumps / on one bump): one Gaussian q fitted to two bumps by minimising KL(q || p); where does its mean end up?
# ANSWER reverse_kl_mean:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
