"""08 - MLE and MAP: priors as regularisation (phase 02, week 2)

Goal: derive maximum-likelihood and maximum-a-posteriori estimates in closed form
      (Gaussian, Bernoulli, linear regression), confirm each by minimising the negative
      log-likelihood / log-posterior with autograd, and see that a Gaussian prior is ridge.
Run:  python phase02-math/08-mle-map.py            (about 8 s on a 2-core CPU)
      python phase02-math/08-mle-map.py --quick    (about 7 s, offline)
Expect: every closed form equals the optimiser's result ("[check] Gaussian MLE (mu, sigma):
        closed form vs gradient descent ... max |diff| ~1e-13" in float64); ridge equals
        scikit-learn's Ridge; the MAP estimate is pulled toward the prior for small n and
        meets the MLE as n grows (figure mle_map.png).
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
from sklearn.linear_model import Ridge

from dlcourse import check, data, plot
import matplotlib.pyplot as plt

TRUE_MU, TRUE_SIGMA = 3.0, 2.0      # the Gaussian the samples come from
TRUE_P = 0.3                        # the coin's P(heads)
N_QUICK, N_FULL = 500, 20_000       # Gaussian samples and coin flips
PRIOR_A, PRIOR_B = 4.0, 6.0         # Beta(a, b) prior on the coin: "probably near 0.4". a != b,
                                    # so swapping the two in a formula cannot go unnoticed
PRIOR_MU, PRIOR_TAU = 1.0, 0.5      # N(mu0, tau^2) prior on the Gaussian mean (sigma known);
                                    # mu0 != 0, so a formula that drops the mu0 term is caught
RIDGE_LAMBDA = 10.0                 # sigma^2 / tau^2 for the linear-regression prior
DIABETES_QUICK = 150                # diabetes rows in --quick (the full run uses all 442)
TOL64 = 1e-8     # closed form vs float64 optimiser: tight enough to tell n from n - 1 in sigma^2
TOL32 = 1e-4     # closed form vs float32 optimiser on the run's device (relative)


# --- The optimiser: plain gradient descent, gradients from autograd ---------------------
# Every estimate below is argmin_theta of a negative log-probability. The closed forms
# come from setting its derivative to 0 by hand; this routine finds the argmin numerically
# from the same formula, without using the derivation, so the two can check each other.
def minimise(objective, params, lr, steps):
    params = [p.clone().requires_grad_() for p in params]
    for _ in range(steps):
        grads = torch.autograd.grad(objective(*params), params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * g
    return [p.detach() for p in params]


# --- MLE: choose the parameters that make the data most probable -------------------------
# Gaussian, x_1..x_n iid N(mu, sigma^2). Negative log-likelihood (per sample):
#   NLL = log sigma + 1/(2 sigma^2) mean_i (x_i - mu)^2 + const
#   dNLL/dmu = 0     =>  mu_hat = mean(x)
#   dNLL/dsigma = 0  =>  sigma_hat^2 = mean((x - mu_hat)^2)   (divides by n: slightly biased,
#                        E[sigma_hat^2] = (n - 1)/n sigma^2; np.var's default ddof=0 is this)
# Bernoulli, k heads in n flips: NLL = -[k log p + (n - k) log(1 - p)] / n
#   dNLL/dp = 0  =>  p_hat = k / n.
# Minimising the NLL of a classifier's labels is minimising cross-entropy (lesson 07); for
# regression with Gaussian noise it is minimising squared error.
def gaussian_nll(x):
    # EXERCISE gaussian_nll: return a function of (mu, log_sigma): NLL per sample = log sigma + mean((x - mu)^2) / (2 sigma^2), written with exp(-2 log_sigma)
    return lambda mu, log_sigma: (log_sigma + 0.5 * torch.exp(-2 * log_sigma)
                                  * ((x - mu) ** 2).mean())
    # END EXERCISE


def bernoulli_nll(k, n, prior=(1.0, 1.0)):
    """Negative log-posterior under a Beta(a, b) prior; a = b = 1 (flat) gives the NLL.
    Optimised over the logit theta, p = sigmoid(theta), so p stays in (0, 1). Note: we
    minimise a *function* of p written through theta, so its argmin is the same p; a
    density over theta would pick up a Jacobian term and a different mode."""
    a, b = prior
    def objective(theta):
        log_p = torch.nn.functional.logsigmoid(theta)       # log sigmoid(t), stable
        log_1mp = torch.nn.functional.logsigmoid(-theta)    # log(1 - sigmoid(t))
        return -((k + a - 1) * log_p + (n - k + b - 1) * log_1mp) / n
    return objective


# --- MAP: add what we believed before seeing the data ------------------------------------
# Bayes: posterior(theta | data) ∝ likelihood(data | theta) * prior(theta), so
#   theta_MAP = argmin [ NLL(theta) - log prior(theta) ].
# Coin with a Beta(a, b) prior, prior ∝ p^{a-1} (1-p)^{b-1}: it acts like a - 1 extra heads
# and b - 1 extra tails:   p_MAP = (k + a - 1) / (n + a + b - 2).
# Gaussian mean with prior N(mu0, tau^2), sigma known: a precision-weighted average
#   mu_MAP = (n/sigma^2 mean(x) + mu0/tau^2) / (n/sigma^2 + 1/tau^2).
# Linear regression y = X w + noise, noise ~ N(0, sigma^2), prior w ~ N(0, tau^2 I):
#   -log posterior = |y - X w|^2 / (2 sigma^2) + |w|^2 / (2 tau^2) + const
#   => w_MAP = argmin |y - X w|^2 + lambda |w|^2 with lambda = sigma^2 / tau^2
#   => w_MAP = (X^T X + lambda I)^{-1} X^T y:  ridge regression, "L2 weight decay".
# (A Laplace prior, ∝ exp(-|w|/b), gives an L1 penalty instead: the lasso.)
# As n grows the likelihood's n terms outweigh the prior's one: MAP -> MLE.
def coin_map(k, n, a=PRIOR_A, b=PRIOR_B):
    # EXERCISE coin_map: a Beta(a, b) prior acts like a - 1 extra heads and b - 1 extra tails on top of k heads in n flips
    return (k + a - 1) / (n + a + b - 2)
    # END EXERCISE


def ridge_closed_form(X, y, lam):
    # EXERCISE ridge_closed_form: w_MAP = (X^T X + lambda I)^{-1} X^T y, computed with np.linalg.solve (no explicit inverse)
    return np.linalg.solve(X.T @ X + lam * np.eye(X.shape[1]), X.T @ y)
    # END EXERCISE


def figure(run, flips, X, y, names):
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    ax = axes[0]
    n_small = 10
    k = int(flips[:n_small].sum())
    p = np.linspace(1e-3, 1 - 1e-3, 500)
    def norm(logf):                       # scale a log-density so that its peak is 1
        return np.exp(logf - logf.max())
    lik = k * np.log(p) + (n_small - k) * np.log(1 - p)
    prior = (PRIOR_A - 1) * np.log(p) + (PRIOR_B - 1) * np.log(1 - p)
    for curve, name, colour in [(lik, f"likelihood ({k} heads in {n_small})", "tab:blue"),
                                (prior, f"prior Beta({PRIOR_A:g}, {PRIOR_B:g})", "tab:green"),
                                (lik + prior, "posterior", "tab:red")]:
        ax.plot(p, norm(curve), color=colour, label=name)
    ax.axvline(k / n_small, color="tab:blue", ls="--", label=f"MLE {k / n_small:.2f}")
    ax.axvline(coin_map(k, n_small), color="tab:red", ls="--",
               label=f"MAP {coin_map(k, n_small):.2f}")
    ax.set(xlabel="p = P(heads)", ylabel="relative to its peak", title="after 10 flips")
    ax.legend(fontsize=8)
    ax = axes[1]
    ns = np.unique(np.logspace(0, np.log10(len(flips)), 60).astype(int))
    ks = np.cumsum(flips)[ns - 1]
    ax.semilogx(ns, ks / ns, label="MLE k/n")
    ax.semilogx(ns, coin_map(ks, ns), label=f"MAP, Beta({PRIOR_A:g}, {PRIOR_B:g}) prior")
    ax.axhline(TRUE_P, color="k", ls=":", label=f"true p = {TRUE_P}")
    ax.set(xlabel="flips seen n", ylabel="estimate of p", title="the prior matters less as n grows")
    ax.legend(fontsize=8)
    ax = axes[2]
    lams = np.logspace(-2, 4, 60)
    path = np.array([ridge_closed_form(X, y, lam) for lam in lams])       # (60, 10)
    for coef, name in zip(path.T, names):
        ax.semilogx(lams, coef, label=name)
    ax.axvline(RIDGE_LAMBDA, color="k", ls=":", label=f"lambda = {RIDGE_LAMBDA:g}")
    ax.set(xlabel="lambda = sigma^2 / tau^2 (stronger prior ->)", ylabel="coefficient",
           title="diabetes: a Gaussian prior shrinks the weights (ridge)")
    ax.legend(fontsize=7, ncol=2)
    return plot.save(fig, run, "mle_map.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    rng = np.random.default_rng(run.seed)
    n = N_QUICK if run.quick else N_FULL
    # The 1-parameter problems run in float64 on the CPU (a reference computation: tight
    # tolerances, and Apple's MPS has no float64); the ridge fit runs on the run's device.
    f64 = lambda a: torch.tensor(a, dtype=torch.float64)                  # noqa: E731
    f32 = lambda a: torch.tensor(a, dtype=torch.float32, device=run.device)   # noqa: E731

    # 1. Gaussian MLE.
    x = rng.normal(TRUE_MU, TRUE_SIGMA, size=n)
    data.announce(f"{n:,} Gaussian samples and {n:,} coin flips (numpy)", kind="generated")
    mu_hat, sigma_hat = x.mean(), np.sqrt(np.mean((x - x.mean()) ** 2))
    mu_opt, log_sigma_opt = minimise(gaussian_nll(f64(x)), [f64(0.0), f64(0.0)], lr=0.05,
                                     steps=2500)
    print(f"Gaussian: mu_hat {mu_hat:.4f}, sigma_hat {sigma_hat:.4f} (true {TRUE_MU}, "
          f"{TRUE_SIGMA}) from {n:,} samples")
    check.close("Gaussian MLE (mu, sigma): closed form vs gradient descent on the NLL",
                [mu_hat, sigma_hat], [mu_opt.item(), torch.exp(log_sigma_opt).item()],
                atol=TOL64)

    # 2. Bernoulli MLE and MAP with a Beta prior.
    flips = (rng.random(n) < TRUE_P).astype(float)
    k = flips.sum()
    (theta_mle,) = minimise(bernoulli_nll(k, n), [f64(0.0)], lr=4.0, steps=100)
    (theta_map,) = minimise(bernoulli_nll(k, n, (PRIOR_A, PRIOR_B)), [f64(0.0)], lr=4.0,
                            steps=100)
    check.close("coin MLE k/n vs gradient descent", k / n, torch.sigmoid(theta_mle).item(),
                atol=TOL64)
    check.close("coin MAP (k+a-1)/(n+a+b-2) vs gradient descent on the log-posterior",
                coin_map(k, n), torch.sigmoid(theta_map).item(), atol=TOL64)
    # MAP - MLE = (n(a-1) - (a+b-2)k) / (n(n+a+b-2)), so |MAP - MLE| <= max(a-1, b-1)/(n+a+b-2):
    # the prior's pull fades like 1/n. Check the bound at every prefix of the flips.
    ns = np.arange(1, n + 1)
    ks = np.cumsum(flips)
    gap = np.abs(coin_map(ks, ns) - ks / ns)
    bound = max(PRIOR_A - 1, PRIOR_B - 1) / (ns + PRIOR_A + PRIOR_B - 2)
    check.true("|MAP - MLE| <= max(a-1, b-1)/(n+a+b-2) for every n", (gap <= bound + 1e-15).all(),
               f"after 10 flips {gap[9]:.3f}, after {n:,} flips {gap[-1]:.1e}")

    # 3. Gaussian mean with a Gaussian prior (sigma known): shrinkage toward mu0.
    m = 20                                                                  # few samples
    prec_data, prec_prior = m / TRUE_SIGMA ** 2, 1 / PRIOR_TAU ** 2
    mu_map = (prec_data * x[:m].mean() + prec_prior * PRIOR_MU) / (prec_data + prec_prior)
    (mu_map_opt,) = minimise(lambda mu: ((f64(x[:m]) - mu) ** 2).sum() / (2 * TRUE_SIGMA ** 2)
                             + (mu - PRIOR_MU) ** 2 / (2 * PRIOR_TAU ** 2), [f64(0.0)],
                             lr=0.1, steps=100)
    print(f"mean of {m} samples {x[:m].mean():.3f}; MAP with prior N({PRIOR_MU}, {PRIOR_TAU}^2) "
          f"shrinks it to {mu_map:.3f}")
    check.close("Gaussian-prior MAP of mu: closed form vs gradient descent", mu_map,
                mu_map_opt.item(), atol=TOL64)

    # 4. Linear regression: MLE = least squares, MAP with a Gaussian prior = ridge.
    diabetes = load_diabetes()
    X, y = diabetes.data, diabetes.target                                  # (442, 10), (442,)
    rows = DIABETES_QUICK if run.quick else len(X)
    data.announce(f"scikit-learn diabetes, {rows} rows x 10 standardised features",
                  kind="bundled")
    X = (X[:rows] - X[:rows].mean(0)) / X[:rows].std(0)                   # (rows, 10)
    y_raw = y[:rows]
    y = y_raw - y_raw.mean()                # centred: no intercept, so no prior on one
    w_mle, w_map = ridge_closed_form(X, y, 0.0), ridge_closed_form(X, y, RIDGE_LAMBDA)
    w_sk = Ridge(alpha=RIDGE_LAMBDA, fit_intercept=False).fit(X, y).coef_
    scale = np.abs(w_map).max()
    check.close("ridge closed form vs sklearn Ridge(alpha=lambda) (relative)", w_map / scale,
                w_sk / scale, atol=1e-10)
    # Why centring is allowed: with centred features the intercept decouples from w, so
    # centring y gives the same weights as fitting an intercept that the prior leaves alone
    # (sklearn never penalises its intercept_, which then equals mean(y)).
    sk_int = Ridge(alpha=RIDGE_LAMBDA).fit(X, y_raw)
    check.close("centred-y ridge vs Ridge with an (unpenalised) intercept on raw y: "
                "(mean y, w) (relative)", np.append(y_raw.mean(), w_map) / np.abs(y_raw).max(),
                np.append(sk_int.intercept_, sk_int.coef_) / np.abs(y_raw).max(), atol=1e-10)
    # Gradient descent on the per-sample objective (|y - Xw|^2 + lambda |w|^2) / (2 rows);
    # its Hessian is (X^T X + lambda I) / rows, and lr = 2/(L + mu) is the best fixed step
    # (lesson 05).
    eig = np.linalg.eigvalsh((X.T @ X + RIDGE_LAMBDA * np.eye(10)) / rows)
    Xt, yt = f32(X), f32(y)
    (w_opt,) = minimise(lambda w: (((yt - Xt @ w) ** 2).sum() + RIDGE_LAMBDA * (w ** 2).sum())
                        / (2 * rows), [f32(np.zeros(10))], lr=2 / (eig[0] + eig[-1]), steps=1500)
    check.close(f"ridge closed form vs gradient descent (float32, {run.device.type}, relative)",
                w_map / scale, w_opt.cpu().double() / scale, atol=TOL32)
    shrink = np.linalg.norm(w_map) / np.linalg.norm(w_mle)
    check.less("the prior shrinks the weights: |w_MAP| / |w_MLE|", shrink, 1.0)
    print(f"ridge (lambda {RIDGE_LAMBDA:g}) keeps {shrink:.3f} of the least-squares weight norm")

    figure(run, flips, X, y, diabetes.feature_names)
    grown = [nm for nm, a, b in zip(diabetes.feature_names, w_mle, w_map) if abs(b) > abs(a)]
    return cli.finish(run, {"samples": n, "mu_hat": float(mu_hat), "sigma_hat": float(sigma_hat),
                            "coin_mle": float(k / n), "coin_map": float(coin_map(k, n)),
                            "ridge_shrink": float(shrink)}, answers={
        "map_nearer": ("sample mean" if abs(mu_map - x[:m].mean()) < abs(mu_map - PRIOR_MU)
                       else "prior mean",
                       f"mean of {m} samples {x[:m].mean():.3f}, prior mean {PRIOR_MU}, MAP "
                       f"{mu_map:.3f}: precisions {prec_data:g} (data) vs {prec_prior:g} (prior)"),
        "ridge_every_weight": ("yes" if not grown else "no",
                               f"|w| grows under the prior for {', '.join(grown) or 'none'}; the "
                               f"norm shrinks to {shrink:.3f} (mle_map.png, right)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 02.08`) before running it;
# `python -m dlcourse check 02.08` compares your answers with what the run measures.
# PREDICT map_nearer (sample mean / prior mean): 20 samples with sigma = 2, prior N(1, 0.5^2) on the mean; is mu_MAP nearer the sample mean or the prior mean?
# ANSWER map_nearer:
# PREDICT ridge_every_weight (yes / no): ridge (lambda = 10) shrinks the weight vector's norm; does it shrink every single diabetes coefficient in magnitude?
# ANSWER ridge_every_weight:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
