"""05 - Loss functions from scratch (phase 03, week 4)

Goal: write MSE, L1, Huber, binary cross-entropy (on probabilities and on logits) and
      cross-entropy with label smoothing and ignore_index from their formulas, with torch's
      three reductions, check each value and gradient against torch, and see why the logits
      form of BCE exists.
Run:  python phase03-pytorch/05-loss-functions.py            (about 7 s on a 2-core CPU, imports included)
      python phase03-pytorch/05-loss-functions.py --quick    (seconds, offline, used by the tests)
Expect: every "[check] <loss> (<reduction>) vs torch" OK for mean, sum and none, and each gradient
        (max |diff| 0 to ~1e-6); naive BCE gives inf from logit 16.7 on and at 30, where the logits
        form gives 30.0; figure losses.png.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import torch
import torch.nn.functional as F

from dlcourse import check, plot
import matplotlib.pyplot as plt  # noqa: E402  (after dlcourse.plot, which picks a headless backend)

BATCH_QUICK = 64         # rows per comparison in --quick
BATCH_FULL = 4096        # and in a full run
CLASSES = 10             # for the cross-entropy tests
HUBER_DELTA = 1.5        # where Huber switches from quadratic to linear; not 1.0, where Huber
                         # equals SmoothL1 and a formula missing its delta factors would pass
SMOOTHING = 0.1          # label smoothing epsilon
IGNORE = -100            # ignore_index: torch's default marker for "no label here" (padding)
LOGIT_CLIP = 12.0        # |logit| bound for the BCE comparisons: beyond ~16.6 float32 rounds
                         # sigmoid(z) to 1 and the naive form gives inf (shown separately)
REDUCTIONS = ("mean", "sum", "none")  # every loss offers all three, as torch's do
ATOL, RTOL = 1e-6, 1e-5  # float32: sums in a different order differ in the last bits


def reduce(per_item, reduction, count=None):
    """'none': the per-item losses; 'sum': their total; 'mean': the total / count (the number
    of items unless given: cross-entropy counts only labelled rows)."""
    if reduction == "none":
        return per_item
    total = per_item.sum()
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / (per_item.numel() if count is None else count)
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


# ---- regression losses: r = prediction - target --------------------------------------------

def mse(pred, target, reduction="mean"):
    return reduce((pred - target) ** 2, reduction)          # r^2: punishes outliers hard


def l1(pred, target, reduction="mean"):
    return reduce((pred - target).abs(), reduction)         # |r|: robust, kinked at 0


def huber(pred, target, delta=HUBER_DELTA, reduction="mean"):
    """0.5 r^2 for |r| <= delta, delta (|r| - 0.5 delta) beyond: MSE near 0, L1 in the tails.
    (torch's SmoothL1 with beta is this divided by beta: the two agree only at delta = beta = 1.)"""
    # EXERCISE huber: with r = |pred - target|, 0.5 r^2 where r <= delta, else delta (r - 0.5 delta); then reduce
    r = (pred - target).abs()
    return reduce(torch.where(r <= delta, 0.5 * r ** 2, delta * (r - 0.5 * delta)), reduction)
    # END EXERCISE


# ---- binary classification: z = logit, p = sigmoid(z), y in {0, 1} ---------------------------

def bce_naive(z, y, reduction="mean"):
    """-[y log p + (1 - y) log(1 - p)] with p = sigmoid(z): the formula as written.

    In float32, sigmoid(z) rounds to exactly 1.0 once z > ~17, so log(1 - p) = log(0) = -inf.
    """
    p = torch.sigmoid(z)
    return reduce(-(y * torch.log(p) + (1 - y) * torch.log(1 - p)), reduction)


def bce_logits(z, y, reduction="mean"):
    """The same loss rewritten in z: max(z, 0) - z y + log(1 + e^{-|z|}).

    Derivation: -log sigmoid(z) = log(1 + e^{-z}) and -log(1 - sigmoid(z)) = log(1 + e^{z});
    factor out e^{max(z, 0)} so that the exponent is never positive and nothing overflows.
    """
    # EXERCISE bce_logits: max(z, 0) - z y + log1p(e^{-|z|}) per item, then reduce
    return reduce(z.clamp(min=0) - z * y + torch.log1p(torch.exp(-z.abs())), reduction)
    # END EXERCISE


# ---- multi-class: logits (B, C), target (B,) of class indices --------------------------------

def cross_entropy(logits, target, label_smoothing=0.0, ignore_index=IGNORE, reduction="mean"):
    """-sum_c q_c log softmax(logits)_c per labelled row, with the smoothed target
    q = (1 - eps) onehot(y) + eps / C. That splits into (1 - eps) NLL + eps * mean_c(-log p_c).
    Ignored rows give 0 ('none'), add nothing ('sum') and are not counted ('mean')."""
    # EXERCISE cross_entropy: log-softmax via logsumexp; per row (1 - eps) (-log p_y) + eps mean_c(-log p_c); zero the ignored rows and divide by the kept count
    log_p = logits - logits.logsumexp(dim=1, keepdim=True)   # (B, C): log-softmax, stable
    keep = target != ignore_index                             # (B,): rows that count
    safe = torch.where(keep, target, torch.zeros_like(target))  # any valid index for gather
    nll = -log_p.gather(1, safe[:, None]).squeeze(1)          # (B,): -log p of the true class
    uniform = -log_p.mean(dim=1)                              # (B,): -mean_c log p_c
    per_row = (1 - label_smoothing) * nll + label_smoothing * uniform
    return reduce(per_row * keep, reduction, count=keep.sum())
    # END EXERCISE


def compare(name, ours, ref, inputs, g):
    """A scratch loss vs torch's, for every reduction; then the gradient of the per-item losses
    against a random upstream gradient v (all ones would hide a wrong per-item weight)."""
    for reduction in REDUCTIONS:
        check.close(f"{name} ({reduction}) vs torch", ours(reduction), ref(reduction),
                    atol=ATOL, rtol=RTOL)
    per_item = ours("none")
    v = torch.randn(per_item.shape, generator=g).to(per_item.device)
    for x, g_ours, g_ref in zip(inputs, torch.autograd.grad(per_item, inputs, grad_outputs=v),
                                torch.autograd.grad(ref("none"), inputs, grad_outputs=v)):
        check.close(f"  gradient of {name} (v . per-item losses) vs torch", g_ours, g_ref,
                    atol=ATOL, rtol=RTOL)


def main(args) -> dict:
    run = cli.start(args, __file__)
    n = BATCH_QUICK if run.quick else BATCH_FULL
    g = torch.Generator().manual_seed(run.seed)
    dev = run.device

    print("\n-- regression")
    pred = (3 * torch.randn(n, generator=g)).to(dev).requires_grad_()   # residuals up to ~10
    target = torch.randn(n, generator=g).to(dev)
    compare("MSE", lambda red: mse(pred, target, red),
            lambda red: F.mse_loss(pred, target, reduction=red), [pred], g)
    compare("L1", lambda red: l1(pred, target, red),
            lambda red: F.l1_loss(pred, target, reduction=red), [pred], g)
    compare(f"Huber (delta {HUBER_DELTA})", lambda red: huber(pred, target, reduction=red),
            lambda red: F.huber_loss(pred, target, delta=HUBER_DELTA, reduction=red), [pred], g)
    # torch against torch: Huber(delta) = delta * SmoothL1(beta = delta), equal only at delta = 1.
    check.close(f"F.huber_loss(delta={HUBER_DELTA}) = {HUBER_DELTA} * F.smooth_l1_loss(beta={HUBER_DELTA})",
                F.huber_loss(pred, target, delta=HUBER_DELTA),
                HUBER_DELTA * F.smooth_l1_loss(pred, target, beta=HUBER_DELTA), atol=ATOL, rtol=RTOL,
                demo=True)

    outlier = torch.tensor([10.0], device=dev, requires_grad=True)  # for the question: residual 10
    pulls = {name: torch.autograd.grad(fn(outlier, torch.zeros(1, device=dev)), outlier)[0].item()
             for name, fn in (("mse", mse), ("l1", l1), ("huber", huber))}

    print("\n-- binary cross-entropy")
    z = (4 * torch.randn(n, generator=g)).clamp(-LOGIT_CLIP, LOGIT_CLIP).to(dev).requires_grad_()
    yb = torch.randint(0, 2, (n,), generator=g).float().to(dev)
    compare("BCE (naive, on probabilities)", lambda red: bce_naive(z, yb, red),
            lambda red: F.binary_cross_entropy(torch.sigmoid(z), yb, reduction=red), [z], g)
    compare("BCE (logits form)", lambda red: bce_logits(z, yb, red),
            lambda red: F.binary_cross_entropy_with_logits(z, yb, reduction=red), [z], g)
    # A confident wrong answer: logit 30 (p = 1 - 9e-14) for a negative example.
    z_big, y0 = torch.tensor([30.0], device=dev), torch.tensor([0.0], device=dev)
    naive, stable = bce_naive(z_big, y0), bce_logits(z_big, y0)
    print(f"  logit 30, label 0: naive {naive.item()}, logits form {stable.item()}, "
          f"torch BCE on p {F.binary_cross_entropy(torch.sigmoid(z_big), y0).item()} (clamped at 100)")
    check.true("naive BCE overflows at logit 30", torch.isinf(naive).item(), f"naive = {naive.item()}")
    check.close("logits form stays exact: loss = softplus(30) = 30", stable,
                F.binary_cross_entropy_with_logits(z_big, y0), atol=ATOL)
    check.close("...and equals the true value 30", stable, torch.tensor(30.0), atol=1e-5)

    print("\n-- cross-entropy")
    logits = (2 * torch.randn(n, CLASSES, generator=g)).to(dev).requires_grad_()  # (B, C)
    y = torch.randint(0, CLASSES, (n,), generator=g)
    y[torch.rand(n, generator=g) < 0.2] = IGNORE       # ~20% unlabelled rows, e.g. padding tokens
    y[0] = IGNORE                                       # at least one, whatever the seed
    y = y.to(dev)
    compare("cross-entropy", lambda red: cross_entropy(logits, y, reduction=red),
            lambda red: F.cross_entropy(logits, y, reduction=red), [logits], g)
    compare("CE + label smoothing", lambda red: cross_entropy(logits, y, SMOOTHING, reduction=red),
            lambda red: F.cross_entropy(logits, y, label_smoothing=SMOOTHING, reduction=red),
            [logits], g)
    kept = y != IGNORE
    check.close("ignore_index = dropping those rows", cross_entropy(logits, y),
                F.cross_entropy(logits[kept], y[kept]), atol=ATOL)
    # Cross-entropy of huge logits: logsumexp subtracts the max first, so nothing overflows.
    huge = torch.tensor([[1000.0, 0.0, -1000.0]], device=dev)
    check.close("CE with logits +-1000 is finite and exact", cross_entropy(huge, torch.tensor([1], device=dev)),
                torch.tensor(1000.0), atol=1e-3)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    r = torch.linspace(-3, 3, 301)
    zero = torch.zeros(1)
    for name, fn in [("MSE  r²", mse), ("L1  |r|", l1), (f"Huber  δ={HUBER_DELTA}", huber)]:
        ax1.plot(r, [fn(v.view(1), zero).item() for v in r], label=name)
    ax1.set(xlabel="residual r = prediction - target", ylabel="loss", ylim=(0, 4),
            title="Regression losses: how hard outliers pull")
    ax1.legend()
    zs = torch.linspace(-5, 40, 451)
    naive_curve = [bce_naive(v.view(1), zero).item() for v in zs]
    ax2.plot(zs, [bce_logits(v.view(1), zero).item() for v in zs], lw=4, alpha=0.5,
             label="logits form (finite everywhere)")
    ax2.plot(zs, naive_curve, label="naive -log(1 - sigmoid(z))")
    first_inf = next(v.item() for v, c in zip(zs, naive_curve) if c == float("inf"))
    ax2.axvspan(first_inf, 40, color="red", alpha=0.1, label=f"naive = inf (z ≥ {first_inf:.1f})")
    ax2.set(xlabel="logit z (true label 0)", ylabel="BCE", title="float32 BCE: naive vs logits form")
    ax2.legend()
    plot.save(fig, run, "losses.png")
    return cli.finish(run, {"naive_bce_first_inf_logit": first_inf}, answers={
        "naive_inf": (min(("5", "17", "40", "89"), key=lambda o: abs(float(o) - first_inf)),
                      f"naive BCE (label 0) is first inf at logit {first_inf:.1f} (losses.png, right)"),
        "outlier_pull": (min(pulls, key=pulls.get), "dLoss/dpred at residual 10: " + ", ".join(
            f"{k} {v:g}" for k, v in pulls.items()) + " (losses.png, left: the slopes)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 03.05`) before running it;
# `python -m dlcourse check 03.05` compares your answers with what the run measures.
# PREDICT naive_inf (5 / 17 / 40 / 89): for label 0, from about which logit z does float32 -log(1 - sigmoid(z)) become inf?
# ANSWER naive_inf:
# PREDICT outlier_pull (mse / l1 / huber): at residual r = 10, which loss's gradient pulls the prediction least (Huber delta 1.5)?
# ANSWER outlier_pull:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
