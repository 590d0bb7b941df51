"""06 - Probability: distributions, CLT, Bayes (phase 02, week 2)

Goal: build samplers for four distributions from uniform random numbers, check their sample
      moments against the formulas, watch the central limit theorem happen, and apply Bayes.
Run:  python phase02-math/06-probability-basics.py            (2M draws; about 5 s on a 2-core CPU)
      python phase02-math/06-probability-basics.py --quick    (50k draws; about 3 s, offline)
Expect: every sample mean and variance lies within 5 standard errors of the formula
        ("[check] exponential(rate 2) mean: |z| = |sample - exact| / SE: 2.092 < 5" in the
        full run, seed 0; 0.629 with --quick), and every sampler's whole CDF within the DKW
        bound of the exact one; the CLT histograms turn into the bell curve as n grows
        (figure distributions.png); the disease-test posterior P(sick | positive) = 0.161
        by Bayes matches a simulated population of a million people.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import math

import numpy as np
from scipy import special   # exact CDFs to test against: normal, Poisson, gamma

from dlcourse import check, data, plot
import matplotlib.pyplot as plt

N_QUICK, N_FULL = 50_000, 2_000_000    # draws per distribution
CLT_REPS_QUICK, CLT_REPS_FULL = 20_000, 200_000   # sample means per n in the CLT experiment
CLT_NS = (1, 2, 5, 30)                 # sizes n of the averaged samples
Z_MAX = 5.0   # allowed |sample - exact| in standard errors. A correct sampler exceeds 5 SE
              # with probability ~6e-7 per check (normal tails), a real bug by far more.
P_FALSE_ALARM = 1e-6   # allowed chance that a correct sampler fails the whole-CDF check
PEOPLE = 1_000_000     # simulated population for Bayes' rule (both modes: it takes ~0.1 s)
BERNOULLI_P, POISSON_LAM, EXP_RATE, NORMAL_MU, NORMAL_SIGMA = 0.3, 4.0, 2.0, 1.0, 2.0
PRIOR, SENSITIVITY, FALSE_POS = 0.01, 0.95, 0.05   # disease test: P(sick), P(+|sick), P(+|healthy)


# --- Samplers built from uniforms U ~ Uniform(0, 1) -------------------------------------
# Inverse-CDF sampling: if F is a CDF and U uniform, then F^{-1}(U) has CDF F, because
# P(F^{-1}(U) <= x) = P(U <= F(x)) = F(x).
#   Exponential(rate r): F(x) = 1 - e^{-r x}  =>  X = -ln(1 - U) / r
#   Bernoulli(p): X = 1 if U < p else 0         (the inverse CDF of a two-point distribution)
#   Poisson(lam): P(X = k) = e^{-lam} lam^k / k!; X = the first k whose CDF exceeds U
# The normal CDF has no closed-form inverse; Box-Muller turns two uniforms into a normal:
#   Z = sqrt(-2 ln U1) cos(2 pi U2) ~ N(0, 1), and X = mu + sigma Z ~ N(mu, sigma^2).
def sample_exponential(rng, n, rate):
    return -np.log1p(-rng.random(n)) / rate


def sample_bernoulli(rng, n, p):
    return (rng.random(n) < p).astype(float)


def sample_poisson(rng, n, lam):
    k = np.arange(0, int(lam + 12 * math.sqrt(lam) + 12))     # P beyond this is < 1e-20
    log_pmf = -lam + k * math.log(lam) - np.array([math.lgamma(i + 1) for i in k])
    cdf = np.cumsum(np.exp(log_pmf))
    return np.searchsorted(cdf, rng.random(n), side="right").astype(float)


def sample_normal(rng, n, mu, sigma):
    u1, u2 = 1 - rng.random(n), rng.random(n)                  # u1 in (0, 1]: log is finite
    return mu + sigma * np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)


# --- Exact moments, and how far a sample may stray ----------------------------------------
# For N independent draws, the sample mean has standard error SE = sigma / sqrt(N)
# (variance of a sum adds up: Var(sum) = N sigma^2, then divide by N^2). The sample variance
# has SE ~ sqrt((mu4 - sigma^4) / N), mu4 = E[(X - mean)^4] the fourth central moment.
# So a check "|sample - exact| < 5 SE" is honest: it tightens as N grows, never hard-coded.
EXACT = {   # name: (mean, variance, fourth central moment)
    f"bernoulli(p {BERNOULLI_P})": (BERNOULLI_P, BERNOULLI_P * (1 - BERNOULLI_P),
                                    BERNOULLI_P * (1 - BERNOULLI_P)
                                    * (1 - 3 * BERNOULLI_P + 3 * BERNOULLI_P ** 2)),
    f"poisson(lam {POISSON_LAM:g})": (POISSON_LAM, POISSON_LAM,
                                      POISSON_LAM * (1 + 3 * POISSON_LAM)),
    f"exponential(rate {EXP_RATE:g})": (1 / EXP_RATE, 1 / EXP_RATE ** 2, 9 / EXP_RATE ** 4),
    f"normal(mu {NORMAL_MU:g}, sigma {NORMAL_SIGMA:g})": (NORMAL_MU, NORMAL_SIGMA ** 2,
                                                          3 * NORMAL_SIGMA ** 4),
}


def erlang_cdf(s, n):
    """P(X_1 + ... + X_n <= s) for n independent Exponential(1): 1 - sum_{k<n} e^-s s^k/k!
    (each term computed in logs: s^k and k! alone overflow floats for large k)."""
    return 1 - sum(math.exp(-s + k * math.log(s) - math.lgamma(k + 1)) for k in range(n))


def normal_cdf(z):
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


# --- The whole distribution, not just two moments -----------------------------------------
# Kolmogorov-Smirnov distance D = max_x |empirical CDF(x) - exact CDF(x)|. The
# Dvoretzky-Kiefer-Wolfowitz inequality (Massart's constant) bounds it for ANY distribution
# and ANY sample size N: P(sqrt(N) D > t) <= 2 exp(-2 t^2). Solving 2 exp(-2 t^2) = P_FALSE_ALARM
# gives the threshold: a correct sampler crosses it less than once in a million runs.
KS_MAX = math.sqrt(math.log(2 / P_FALSE_ALARM) / 2)


def ks_distance(x, cdf):
    """D for a continuous distribution: the empirical CDF jumps from i/N to (i+1)/N at the
    i-th smallest sample, so compare the exact CDF there with both sides of the jump."""
    x = np.sort(x)
    n, exact = len(x), cdf(x)
    above, below = np.arange(1, n + 1) / n, np.arange(n) / n       # the ECDF after / before
    return max(np.abs(above - exact).max(), np.abs(below - exact).max())


def ks_distance_discrete(x, cdf):
    """D for integer-valued samples: both CDFs are step functions that jump only at the
    integers, so comparing them at every integer k in range is enough."""
    k = np.arange(0, int(x.max()) + 2)
    empirical = np.searchsorted(np.sort(x), k, side="right") / len(x)    # fraction <= k
    return np.abs(empirical - cdf(k)).max()


def figure(run, samples, clt):
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.5))
    for ax, (name, x) in zip(axes[0], samples.items()):
        mean, var, _ = EXACT[name]
        if name.startswith(("bernoulli", "poisson")):           # discrete: bars vs pmf
            k = np.arange(0, int(x.max()) + 1)
            ax.bar(k, np.bincount(x.astype(int)) / len(x), color="tab:blue", alpha=0.6,
                   label="samples")
            pmf = ([1 - BERNOULLI_P, BERNOULLI_P] if name.startswith("bernoulli") else
                   [math.exp(-POISSON_LAM) * POISSON_LAM ** i / math.factorial(i) for i in k])
            ax.plot(k, pmf, "ko", label="exact pmf")
        else:                                                     # continuous: hist vs pdf
            ax.hist(x, bins=80, density=True, color="tab:blue", alpha=0.6, label="samples")
            t = np.linspace(x.min(), x.max(), 300)
            pdf = (EXP_RATE * np.exp(-EXP_RATE * t) if name.startswith("exp") else
                   np.exp(-0.5 * ((t - NORMAL_MU) / NORMAL_SIGMA) ** 2)
                   / (NORMAL_SIGMA * math.sqrt(2 * math.pi)))
            ax.plot(t, pdf, "k", label="exact pdf")
        ax.set(title=f"{name}\nmean {x.mean():.3f} (exact {mean:.3f}), var {x.var():.3f} "
               f"({var:.3f})")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=8)
    t = np.linspace(-4, 4, 200)
    for ax, (n, z) in zip(axes[1], clt.items()):
        ax.hist(z, bins=np.linspace(-4, 4, 81), density=True, color="tab:orange", alpha=0.6)
        ax.plot(t, np.exp(-t ** 2 / 2) / math.sqrt(2 * math.pi), "k", label="N(0, 1)")
        ax.set(title=f"mean of n = {n} exponentials (standardised)", xlabel="z")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=8)
    fig.suptitle("top: samplers built from uniform numbers vs the exact distributions; "
                 "bottom: averages become normal")
    return plot.save(fig, run, "distributions.png")


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    rng = np.random.default_rng(run.seed)
    n = N_QUICK if run.quick else N_FULL
    data.announce(f"{n:,} draws per distribution, made from numpy's PCG64 uniforms",
                  kind="generated")

    # 1. Sample moments vs exact moments, in units of the standard error.
    samples = {}
    for name, sampler in zip(EXACT, (
            lambda: sample_bernoulli(rng, n, BERNOULLI_P),
            lambda: sample_poisson(rng, n, POISSON_LAM),
            lambda: sample_exponential(rng, n, EXP_RATE),
            lambda: sample_normal(rng, n, NORMAL_MU, NORMAL_SIGMA))):
        x = samples[name] = sampler()
        mean, var, mu4 = EXACT[name]
        z_mean = (x.mean() - mean) / math.sqrt(var / n)
        z_var = (x.var(ddof=1) - var) / math.sqrt((mu4 - var ** 2) / n)
        check.less(f"{name} mean: |z| = |sample - exact| / SE", abs(z_mean), Z_MAX)
        check.less(f"{name} variance: |z|", abs(z_var), Z_MAX)
    # Moments can agree while the shape is wrong; the whole CDF cannot. The exact CDFs come
    # from scipy, not from our samplers' own formulas (the Poisson sampler builds its CDF
    # itself: checking it against that same CDF would prove nothing).
    exact_cdfs = {
        f"poisson(lam {POISSON_LAM:g})": (ks_distance_discrete,
                                          lambda k: special.pdtr(k, POISSON_LAM)),
        f"exponential(rate {EXP_RATE:g})": (ks_distance, lambda x: 1 - np.exp(-EXP_RATE * x)),
        f"normal(mu {NORMAL_MU:g}, sigma {NORMAL_SIGMA:g})": (
            ks_distance, lambda x: special.ndtr((x - NORMAL_MU) / NORMAL_SIGMA)),
    }
    ks = {}
    for name, (distance, cdf) in exact_cdfs.items():
        ks[name] = math.sqrt(n) * distance(samples[name], cdf)
        check.less(f"{name}: Kolmogorov-Smirnov sqrt(N) D vs DKW bound", ks[name], KS_MAX)

    # 2. The central limit theorem: the mean of n Exponential(1) draws, standardised as
    # z = (mean - 1) sqrt(n) (mean 1, sd 1 per draw), tends to N(0, 1) whatever the shape
    # of one draw. Skewness (lopsidedness) falls like 2 / sqrt(n).
    reps = CLT_REPS_QUICK if run.quick else CLT_REPS_FULL
    # Our Erlang CDF against scipy's regularised incomplete gamma function P(n, s).
    orders, points = np.array([1, 2, 5, 30, 200]), np.array([0.5, 2.0, 7.0, 33.0, 180.0])
    check.close("erlang_cdf(s, n) vs scipy.special.gammainc(n, s)",
                [erlang_cdf(s, k) for s, k in zip(points, orders)],
                special.gammainc(orders, points), atol=1e-12)
    clt = {}
    for k in CLT_NS:
        means = sample_exponential(rng, reps * k, 1.0).reshape(reps, k).mean(axis=1)  # (reps,)
        clt[k] = z = (means - 1) * math.sqrt(k)
        skew = np.mean(z ** 3) / np.mean(z ** 2) ** 1.5
        # The sum of k Exponential(1) is Gamma(k, 1) (Erlang), so P(z <= 1) is known exactly
        # for each k; the empirical fraction is a proportion with SE sqrt(p (1 - p) / reps).
        p_exact = erlang_cdf(k + math.sqrt(k), k)
        z_frac = (np.mean(z <= 1) - p_exact) / math.sqrt(p_exact * (1 - p_exact) / reps)
        print(f"  n = {k:2d}: skewness {skew:+.3f} (theory {2 / math.sqrt(k):.3f}); "
              f"P(z <= 1) = {np.mean(z <= 1):.4f}, exact {p_exact:.4f}, normal "
              f"{normal_cdf(1):.4f}")
        check.less(f"CLT n = {k}: empirical P(z <= 1) vs exact Erlang CDF, |z|", abs(z_frac),
                   Z_MAX)
    gaps = [abs(erlang_cdf(k + math.sqrt(k), k) - normal_cdf(1)) for k in (1, 10, 100, 1000)]
    check.true("exact P(z <= 1) approaches the normal value as n grows (n = 1, 10, 100, 1000)",
               all(a > b for a, b in zip(gaps, gaps[1:])), f"gaps {[f'{g:.1e}' for g in gaps]}")

    # 3. Bayes' rule: P(sick | +) = P(+ | sick) P(sick) / P(+), with
    # P(+) = P(+ | sick) P(sick) + P(+ | healthy) P(healthy). A rare disease makes most
    # positives false even for a good test. A second positive: yesterday's posterior is
    # today's prior.
    def posterior(prior):
        return SENSITIVITY * prior / (SENSITIVITY * prior + FALSE_POS * (1 - prior))
    post1 = posterior(PRIOR)
    post2 = posterior(post1)
    sick = rng.random(PEOPLE) < PRIOR
    test1 = np.where(sick, rng.random(PEOPLE) < SENSITIVITY, rng.random(PEOPLE) < FALSE_POS)
    test2 = np.where(sick, rng.random(PEOPLE) < SENSITIVITY, rng.random(PEOPLE) < FALSE_POS)
    for label, exact, mask in [("one positive test", post1, test1),
                               ("two positive tests", post2, test1 & test2)]:
        frac = sick[mask].mean()
        z = (frac - exact) / math.sqrt(exact * (1 - exact) / mask.sum())
        print(f"  P(sick | {label}) = {exact:.3f} by Bayes, {frac:.3f} among {mask.sum():,} "
              "simulated people")
        check.less(f"Bayes vs simulation, {label}: |z|", abs(z), Z_MAX)

    figure(run, samples, clt)
    return cli.finish(run, {"draws": n, "posterior_one_test": post1, "posterior_two_tests": post2,
                            "ks_sqrtN_D_exponential": ks[f"exponential(rate {EXP_RATE:g})"]})


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
