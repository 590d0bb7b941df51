"""06 - Probability: distributions, CLT, Bayes (phase 02, week 2)

Goal: build samplers for four distributions from uniform random numbers, check their sample
      moments against the formulas, watch the central limit theorem happen, and apply Bayes;
      then write t intervals, one- and two-sample (Welch and pooled) t-tests and a bootstrap,
      check them against scipy.stats, and measure by simulation how often a 95% interval
      really covers the true mean, and how p-values behave when the null is true.
Run:  python phase02-math/06-probability-basics.py            (2M draws; about 12 s on a 2-core CPU)
      python phase02-math/06-probability-basics.py --quick    (50k draws; about 1.5 s + imports)
Expect: every sample mean and variance lies within 5 standard errors of the formula
        ("[check] exponential(rate 2) mean: |z| = |sample - exact| / SE: 2.092 < 5" in the
        full run, seed 0; 0.629 with --quick), and every sampler's whole CDF within the DKW
        bound of the exact one; the CLT histograms turn into the bell curve as n grows
        (figure distributions.png); the disease-test posterior P(sick | positive) = 0.161
        by Bayes matches a simulated population of a million people. Section 4: the t interval
        and the t-tests (t, df, p) equal scipy.stats.t.interval / ttest_1samp / ttest_ind to
        ~1e-15; Welch's df is ~6 where the pooled df is 35. 95% t intervals cover the mean
        95% of the time for normal data, but only ~0.88 for n = 5 exponential samples (the
        bootstrap percentile interval ~0.78; both improve with n; figure
        confidence_intervals.png). With the null true, one-sample and Welch p-values are
        uniform (5% false positives); the pooled test, small noisy group, gives ~27%.
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
from scipy import stats     # Student t quantiles/CDF, and the references for section 4

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
CONF = 0.95            # confidence level of every interval in section 4
ALPHA = 1 - CONF       # significance level of the tests: reject when p < ALPHA
CI_N = 12              # size of the sample the formulas are checked on (small: t != z)
GROUPS = ((7, 1.0, 3.0), (30, 0.0, 1.0))   # Welch test: (size, mean, sd) of groups a and b;
                       # unequal sizes AND sds, so the pooled formula gives other numbers
N_BOOT = 20_000        # bootstrap resamples for the checked interval
COVER_NS = (5, 10, 30)                    # sample sizes in the coverage experiment
COVER_SIMS_QUICK, COVER_SIMS_FULL = 4_000, 40_000   # simulated samples per t-interval coverage
BOOT_SIMS_QUICK, BOOT_SIMS_FULL = 400, 1_000        # simulated samples per bootstrap coverage
BOOT_B_QUICK, BOOT_B_FULL = 400, 1_000              # resamples per interval in that experiment
NULL_SIMS = 20_000     # simulated tests under the null hypothesis (both modes: ~0.1 s)


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
    # EXERCISE sample_normal: Box-Muller: two uniforms (u1 in (0, 1] so log is finite), Z = sqrt(-2 ln U1) cos(2 pi U2), return mu + sigma Z
    u1, u2 = 1 - rng.random(n), rng.random(n)                  # u1 in (0, 1]: log is finite
    return mu + sigma * np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)
    # END EXERCISE


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


# --- Confidence intervals and t-tests ------------------------------------------------------
# The mean of n draws has standard error sigma / sqrt(n); sigma is unknown, so estimate it by
# s (ddof = 1: the n - 1 undoes the bias of measuring spread around the sample's own mean).
# For normal data T = (mean - mu) / (s / sqrt(n)) follows Student's t with n - 1 degrees of
# freedom, heavier-tailed than N(0, 1) because s itself is noisy. Hence the interval
#   mean +- t_{n-1, (1 + conf)/2} * s / sqrt(n)
# covers the true mu with probability conf. The z quantile (1.96) is only right as n -> inf.
def t_interval(x, conf=CONF):
    """Student t confidence interval for the mean, along the last axis of x: (lo, hi)."""
    # EXERCISE t_interval: mean +- t_{n-1, (1 + conf)/2} * s / sqrt(n), with s the ddof = 1 standard deviation (stats.t.ppf gives the quantile)
    n = x.shape[-1]
    se = x.std(axis=-1, ddof=1) / np.sqrt(n)
    q = stats.t.ppf((1 + conf) / 2, df=n - 1)
    m = x.mean(axis=-1)
    return m - q * se, m + q * se
    # END EXERCISE


def p_two_sided(t, df):
    """P(|T| >= |t|) for T ~ Student t(df): the chance, if the null is true, of a statistic
    at least this far from 0 in either direction."""
    return 2 * stats.t.sf(np.abs(t), df)


def t_test_1samp(x, mu0):
    """H0: the mean is mu0. Returns (t, df, p), along the last axis."""
    n = x.shape[-1]
    t = (x.mean(axis=-1) - mu0) / (x.std(axis=-1, ddof=1) / np.sqrt(n))
    return t, n - 1, p_two_sided(t, n - 1)


# Two samples, H0: equal means. The difference of means has variance s_a^2/n_a + s_b^2/n_b.
# Welch: use exactly that, and approximate the statistic's distribution by a t whose df
# matches the variance of that estimate (Welch-Satterthwaite):
#   df = (v_a + v_b)^2 / (v_a^2 / (n_a - 1) + v_b^2 / (n_b - 1)),  v = s^2 / n.
# Student's pooled test assumes equal variances: one s_p^2 from both groups, df = n_a + n_b - 2.
# When the small group is the noisy one, pooling underestimates the SE, and the test
# rejects a true null far more often than ALPHA (section 4 measures it).
def t_test_2samp(a, b, welch=True):
    """H0: mean(a) = mean(b). Returns (t, df, p), along the last axis."""
    # EXERCISE t_test_2samp: v = s^2 / n per group; Welch: se = sqrt(v_a + v_b), df = Welch-Satterthwaite; pooled: s_p^2 weighted by n - 1, df = n_a + n_b - 2; t = diff of means / se
    na, nb = a.shape[-1], b.shape[-1]
    va, vb = a.var(axis=-1, ddof=1) / na, b.var(axis=-1, ddof=1) / nb
    if welch:
        se = np.sqrt(va + vb)
        df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
    else:
        pooled = ((na - 1) * a.var(axis=-1, ddof=1) + (nb - 1) * b.var(axis=-1, ddof=1)) \
            / (na + nb - 2)
        se = np.sqrt(pooled * (1 / na + 1 / nb))
        df = na + nb - 2
    t = (a.mean(axis=-1) - b.mean(axis=-1)) / se
    return t, df, p_two_sided(t, df)
    # END EXERCISE


# The bootstrap: no formula for the SE, no normality. Treat the sample as the population,
# draw n points from it WITH replacement, recompute the statistic; repeat B times. The spread
# of those B values estimates the statistic's sampling spread; the percentile interval is
# their (1 - conf)/2 and (1 + conf)/2 quantiles. For the mean, the resampled means have
# exactly mean x_bar and variance m2 / n, with m2 = mean((x - x_bar)^2) (ddof = 0: the
# bootstrap population is the sample itself), so their SE is s / sqrt(n) * sqrt((n - 1) / n).
def bootstrap_means(rng, x, n_boot):
    """Means of n_boot resamples of x's last axis: x (..., n) -> (..., n_boot)."""
    n = x.shape[-1]
    idx = rng.integers(0, n, size=x.shape[:-1] + (n_boot, n))           # (..., B, n)
    return np.take_along_axis(x[..., None, :], idx, axis=-1).mean(axis=-1)


def percentile_interval(boot, conf=CONF):
    lo, hi = np.quantile(boot, [(1 - conf) / 2, (1 + conf) / 2], axis=-1)
    return lo, hi


def figure_intervals(run, shown, coverage, pvals):
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.5))
    ax = axes[0]
    lo, hi, mu = shown
    hit = (lo <= mu) & (mu <= hi)
    for i in range(len(lo)):
        ax.plot([lo[i], hi[i]], [i, i], color="tab:blue" if hit[i] else "tab:red", lw=2)
    ax.axvline(mu, color="k", ls="--", label="true mean")
    ax.set(title=f"{len(lo)} t intervals (n = {COVER_NS[0]}, normal data): "
           f"{(~hit).sum()} miss (red)", xlabel="value", ylabel="simulated sample")
    ax.legend(fontsize=8)
    ax = axes[1]
    for (label, style), covs in coverage.items():
        ax.plot(COVER_NS, covs, style, label=label)
    ax.axhline(CONF, color="k", ls="--", lw=1, label=f"nominal {CONF}")
    ax.set(xscale="log", xticks=COVER_NS, xticklabels=COVER_NS, xlabel="sample size n",
           ylabel="fraction of intervals covering the true mean",
           title="coverage: small skewed samples under-cover")
    ax.minorticks_off()
    ax.legend(fontsize=8)
    ax = axes[2]
    bins = np.linspace(0, 1, 21)
    for label, p in pvals.items():
        ax.hist(p, bins=bins, density=True, histtype="step", lw=2, label=label)
    ax.axhline(1, color="k", ls="--", lw=1, label="uniform")
    ax.set(xlabel="p-value", ylabel="density", title="p-values when the null is true")
    ax.legend(fontsize=8)
    return plot.save(fig, run, "confidence_intervals.png")


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

    # 4. Confidence intervals and t-tests, checked against scipy.stats to round-off.
    x = sample_normal(rng, CI_N, NORMAL_MU, NORMAL_SIGMA)                 # (CI_N,)
    lo, hi = t_interval(x)
    ref = stats.t.interval(CONF, df=CI_N - 1, loc=x.mean(), scale=stats.sem(x))
    check.close(f"{CONF:.0%} t interval (n = {CI_N}) vs scipy.stats.t.interval", [lo, hi], ref,
                atol=1e-12)
    q_z = special.ndtri((1 + CONF) / 2)
    q_t = stats.t.ppf((1 + CONF) / 2, CI_N - 1)
    print(f"  t interval [{lo:.3f}, {hi:.3f}]: t quantile {q_t:.3f} vs z {q_z:.3f} (a z interval "
          f"would be {q_z / q_t:.0%} as wide)")
    t1, df1, p1 = t_test_1samp(x, 0.0)
    ref1 = stats.ttest_1samp(x, 0.0)
    check.close("one-sample t-test (t, df, p) vs scipy.stats.ttest_1samp", [t1, df1, p1],
                [ref1.statistic, ref1.df, ref1.pvalue], atol=1e-12)
    (na, mua, sda), (nb, mub, sdb) = GROUPS
    a, b = sample_normal(rng, na, mua, sda), sample_normal(rng, nb, mub, sdb)
    for welch, name in ((True, "Welch"), (False, "pooled (Student)")):
        t2, df2, p2 = t_test_2samp(a, b, welch=welch)
        ref2 = stats.ttest_ind(a, b, equal_var=not welch)
        check.close(f"{name} two-sample t-test (t, df, p) vs scipy.stats.ttest_ind",
                    [t2, df2, p2], [ref2.statistic, ref2.df, ref2.pvalue], atol=1e-12)
        print(f"  {name}: t = {t2:.3f}, df = {df2:.2f}, p = {p2:.4f}")

    # The bootstrap on the same sample x: its resampled means have known mean and variance
    # (see bootstrap_means), so test them like section 1 tested the samplers. The variance of
    # a variance estimate from B draws is (mu4 - v^2) / B; mu4 of a mean of n resampled points
    # is m4 / n^3 + 3 (n - 1) m2^2 / n^3 (m2, m4: the sample's central moments, ddof = 0).
    boot = bootstrap_means(rng, x, N_BOOT)                                # (N_BOOT,)
    m2, m4 = np.mean((x - x.mean()) ** 2), np.mean((x - x.mean()) ** 4)
    v = m2 / CI_N
    mu4 = m4 / CI_N ** 3 + 3 * (CI_N - 1) * m2 ** 2 / CI_N ** 3
    check.less("bootstrap means: |mean - x_bar| / SE", abs(boot.mean() - x.mean())
               / math.sqrt(v / N_BOOT), Z_MAX)
    check.less("bootstrap means: |variance - m2/n| / SE", abs(boot.var(ddof=1) - v)
               / math.sqrt((mu4 - v ** 2) / N_BOOT), Z_MAX)
    print(f"  bootstrap SE {boot.std(ddof=1):.4f} = plug-in {math.sqrt(v):.4f}; the t formula's "
          f"s/sqrt(n) = {stats.sem(x):.4f} is larger by sqrt(n/(n-1))")
    b_lo, b_hi = percentile_interval(boot)
    ref_b = stats.bootstrap((x,), np.mean, n_resamples=N_BOOT, confidence_level=CONF,
                            method="percentile", rng=np.random.default_rng(run.seed))
    # Two independent estimates of the same quantile q: each has SE ~ sqrt(p (1 - p) / B) / f(q),
    # f the bootstrap density there, taken as normal with the bootstrap SE.
    f_q = stats.norm.pdf(q_z) / math.sqrt(v)
    tol = Z_MAX * math.sqrt(2) * math.sqrt(ALPHA / 2 * (1 - ALPHA / 2) / N_BOOT) / f_q
    ci = ref_b.confidence_interval
    check.close(f"bootstrap percentile interval vs scipy.stats.bootstrap (tolerance {Z_MAX:g} SE "
                f"of {N_BOOT} resamples)", [b_lo, b_hi], [ci.low, ci.high], atol=tol)
    print(f"  bootstrap interval [{b_lo:.3f}, {b_hi:.3f}], scipy [{ci.low:.3f}, {ci.high:.3f}],"
          f" t interval [{lo:.3f}, {hi:.3f}]")

    # Coverage: does a 95% interval contain the true mean 95% of the time? Simulate. A
    # fraction from S independent trials has SE sqrt(0.95 * 0.05 / S).
    sims = COVER_SIMS_QUICK if run.quick else COVER_SIMS_FULL
    b_sims, b_b = (BOOT_SIMS_QUICK, BOOT_B_QUICK) if run.quick else (BOOT_SIMS_FULL, BOOT_B_FULL)
    coverage = {("t interval, normal data", "o-"): [], ("z interval, normal data", "s:"): [],
                ("t interval, exponential data", "o-"): [],
                ("bootstrap, exponential data", "^--"): []}
    covs = list(coverage.values())
    se_cov = math.sqrt(CONF * (1 - CONF) / sims)
    for k in COVER_NS:
        xn = sample_normal(rng, sims * k, NORMAL_MU, NORMAL_SIGMA).reshape(sims, k)
        lo_n, hi_n = t_interval(xn)
        cov_t = np.mean((lo_n <= NORMAL_MU) & (NORMAL_MU <= hi_n))
        half_z = q_z * xn.std(axis=-1, ddof=1) / math.sqrt(k)
        cov_z = np.mean(np.abs(xn.mean(axis=-1) - NORMAL_MU) <= half_z)
        check.less(f"t interval coverage, normal data, n = {k}: |coverage - {CONF}| / SE",
                   abs(cov_t - CONF) / se_cov, Z_MAX)
        if k == COVER_NS[0]:
            shown = (lo_n[:50], hi_n[:50], NORMAL_MU)
            check.less(f"z interval at n = {k} under-covers (coverage + {Z_MAX:g} SE)",
                       cov_z + Z_MAX * se_cov, CONF)
        mu_e = 1 / EXP_RATE
        xe = sample_exponential(rng, sims * k, EXP_RATE).reshape(sims, k)
        lo_e, hi_e = t_interval(xe)
        cov_te = np.mean((lo_e <= mu_e) & (mu_e <= hi_e))
        xb = xe[:b_sims]
        lo_b, hi_b = percentile_interval(bootstrap_means(rng, xb, b_b))
        cov_b = np.mean((lo_b <= mu_e) & (mu_e <= hi_b))
        for c, value in zip(covs, (cov_t, cov_z, cov_te, cov_b)):
            c.append(value)
        print(f"  n = {k:2d}: coverage t {cov_t:.3f} / z {cov_z:.3f} (normal); t {cov_te:.3f} / "
              f"bootstrap {cov_b:.3f} (exponential; {b_sims} samples for the bootstrap)")
    check.less(f"exponential data, n = {COVER_NS[0]}: the t interval under-covers "
               f"(coverage + {Z_MAX:g} SE)", covs[2][0] + Z_MAX * se_cov, CONF)

    # p-values under the null. If H0 is true and the test's distribution is right, P(p <= u)
    # = u: p is Uniform(0, 1), so a test at level ALPHA rejects a true null ALPHA of the time.
    # Checked with the KS distance of section 1 against the uniform CDF (the DKW bound).
    xs0 = sample_normal(rng, NULL_SIMS * CI_N, NORMAL_MU, NORMAL_SIGMA).reshape(NULL_SIMS, CI_N)
    p_one = t_test_1samp(xs0, NORMAL_MU)[2]
    a0 = sample_normal(rng, NULL_SIMS * na, 0.0, sda).reshape(NULL_SIMS, na)
    b0 = sample_normal(rng, NULL_SIMS * nb, 0.0, sdb).reshape(NULL_SIMS, nb)
    p_welch, p_pooled = t_test_2samp(a0, b0)[2], t_test_2samp(a0, b0, welch=False)[2]
    uniform = lambda u: u                                                 # noqa: E731
    pvals = {"one-sample t": p_one, "Welch": p_welch, "pooled (Student)": p_pooled}
    ks_p = {name: math.sqrt(NULL_SIMS) * ks_distance(p, uniform) for name, p in pvals.items()}
    for name in ("one-sample t", "Welch"):
        check.less(f"{name} p-values under the null: KS sqrt(N) D vs uniform (DKW bound)",
                   ks_p[name], KS_MAX)
    # Welch's t distribution is itself an approximation (Satterthwaite's df), so its true
    # false-positive rate is only close to ALPHA; the gap is far below this tolerance.
    reject = {name: np.mean(p < ALPHA) for name, p in pvals.items()}
    se_rej = math.sqrt(ALPHA * (1 - ALPHA) / NULL_SIMS)
    check.less(f"Welch false-positive rate at ALPHA = {ALPHA:.2f}: |rate - ALPHA| / SE",
               abs(reject["Welch"] - ALPHA) / se_rej, Z_MAX)
    check.greater("pooled test, small noisy group: false-positive rate (minus 5 SE) > ALPHA",
                  reject["pooled (Student)"] - Z_MAX * se_rej, ALPHA)
    print("  false-positive rates: " + ", ".join(f"{k} {v:.3f}" for k, v in reject.items())
          + f" (KS sqrt(N) D of the pooled p-values: {ks_p['pooled (Student)']:.1f})")

    figure(run, samples, clt)
    figure_intervals(run, shown, coverage, pvals)
    cov_small = float(covs[2][0])
    pooled_fp = float(reject["pooled (Student)"])
    return cli.finish(run, {"draws": n, "posterior_one_test": post1, "posterior_two_tests": post2,
                            "ks_sqrtN_D_exponential": ks[f"exponential(rate {EXP_RATE:g})"],
                            "coverage_t_exponential_small_n": cov_small,
                            "false_positive_pooled": pooled_fp}, answers={
        "posterior": ("under 20%" if post1 < 0.2 else "20% to 80%" if post1 <= 0.8 else "over 80%",
                      f"P(sick | +) = {post1:.3f} by Bayes, matched by {PEOPLE:,} simulated people"),
        "t_cover_skewed": ("below 95%" if cov_small + Z_MAX * se_cov < CONF else "about 95%",
                           f"coverage {cov_small:.3f} at n = {COVER_NS[0]} (SE {se_cov:.3f}; "
                           "confidence_intervals.png)"),
        "pooled_false_pos": ("about 5%" if abs(pooled_fp - ALPHA) < Z_MAX * se_rej
                             else "well above 5%" if pooled_fp > ALPHA else "well below 5%",
                             f"pooled test rejects a true null {pooled_fp:.3f} of the time, Welch "
                             f"{reject['Welch']:.3f} (confidence_intervals.png)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 02.06`) before running it;
# `python -m dlcourse check 02.06` compares your answers with what the run measures.
# PREDICT posterior (under 20% / 20% to 80% / over 80%): 1% are sick, the test catches 95% and false-alarms on 5%; after one positive, how likely is sickness?
# ANSWER posterior:
# PREDICT t_cover_skewed (below 95% / about 95%): how often does a 95% t interval cover the mean of n = 5 exponential draws?
# ANSWER t_cover_skewed:
# PREDICT pooled_false_pos (well below 5% / about 5% / well above 5%): the null is true, the small group (7) is the noisy one (sd 3 vs 1); how often does the pooled t-test at 0.05 reject?
# ANSWER pooled_false_pos:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
