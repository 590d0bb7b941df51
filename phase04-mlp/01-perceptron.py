"""01 - The perceptron and XOR (phase 04, week 5)

Goal: write Rosenblatt's perceptron learning rule, watch it separate a linearly separable
      cloud within the mistake bound, and watch it fail forever on XOR.
Run:  python phase04-mlp/01-perceptron.py            (about 1 s on a 2-core CPU)
      python phase04-mlp/01-perceptron.py --quick    (seconds, offline, used by the tests)
Expect: "separable: converged after 5 epoch(s), 25 mistakes <= bound 266" (seed 0, full);
        XOR still makes 75+ mistakes in every epoch (final train acc 0.53); the weights equal
        scikit-learn's Perceptron exactly (max |diff| 0); the feature x1*x2 makes XOR separable.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

MAX_EPOCHS = 100     # give up after this many passes (XOR never converges); also --quick


def parse_args(argv=None):
    return cli.parser(__doc__, epochs=MAX_EPOCHS).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Perceptron

from dlcourse import check, data, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks a headless backend

LR = 0.5             # learning rate; for a perceptron started at zero its value only rescales
                     # (w, b), so any value learns the same line. Not 1: there, an LR
                     # forgotten in one of the two updates would change nothing and pass.
MARGIN = 0.1         # gap kept empty around the planted line (sets the mistake bound)
XOR_NOISE = 0.25     # std of each XOR cluster around its corner


def separable_data(rng, n):
    """Points in [-1, 1]^2 labelled by a planted line w*.x + b* = 0, with a MARGIN-wide gap.

    Returns x (n, 2), y (n,) in {-1, +1}, and the planted (w*, b*) for the mistake bound.
    """
    w_star, b_star = np.array([1.0, -0.6]), 0.15
    x = rng.uniform(-1, 1, size=(4 * n, 2))
    dist = (x @ w_star + b_star) / np.linalg.norm(w_star)   # signed distance to the line
    keep = np.abs(dist) > MARGIN
    x, dist = x[keep][:n], dist[keep][:n]
    return x, np.where(dist > 0, 1.0, -1.0), (w_star, b_star)


def xor_data(rng, n):
    """Four noisy clusters at (+-1, +-1); label = +1 when the signs differ (XOR)."""
    corners = np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]], dtype=float)
    labels = np.array([-1.0, 1.0, 1.0, -1.0])
    pick = rng.integers(0, 4, size=n)
    return corners[pick] + XOR_NOISE * rng.standard_normal((n, 2)), labels[pick]


def train_perceptron(x, y, epochs):
    """The perceptron rule: for each point in order, if y (w.x + b) <= 0 (wrong side, or on
    the line) then w += lr y x, b += lr y. Stops after the first epoch without a mistake.

    Returns w, b and the number of mistakes in each epoch.
    """
    # EXERCISE train_perceptron: start at zero; each epoch, for every point with y (w.x + b) <= 0 do w += LR y x, b += LR y and count it; stop after an epoch with no mistake
    w, b = np.zeros(x.shape[1]), 0.0
    mistakes = []
    for _ in range(epochs):
        count = 0
        for xi, yi in zip(x, y):
            if yi * (xi @ w + b) <= 0:
                w = w + LR * yi * xi   # rotate w towards (y=+1) or away from (y=-1) the point
                b = b + LR * yi
                count += 1
        mistakes.append(count)
        if count == 0:
            break
    return w, b, mistakes
    # END EXERCISE


def sklearn_perceptron(x, y, epochs):
    """scikit-learn's Perceptron set up to follow the same rule: no shuffling, constant
    step LR, no penalty, exactly `epochs` passes (tol=None turns off its own stopping)."""
    model = Perceptron(eta0=LR, shuffle=False, tol=None, max_iter=epochs, penalty=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # XOR cannot converge: expected
        model.fit(x, y)
    return model.coef_[0], model.intercept_[0]


def accuracy(x, y, w, b):
    return float(np.mean(np.sign(x @ w + b) == y))


def draw(ax, x, y, w, b, title):
    """Scatter the two classes and the learned line w.x + b = 0."""
    ax.scatter(*x[y > 0].T, s=12, c="tab:orange", label="+1")
    ax.scatter(*x[y < 0].T, s=12, c="tab:blue", label="-1")
    lim = np.abs(x).max() * 1.1
    xs = np.linspace(-lim, lim, 2)
    if abs(w[1]) > 1e-12:
        ax.plot(xs, -(w[0] * xs + b) / w[1], "k-", lw=2, label="w.x + b = 0")
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), title=title, aspect="equal")
    ax.legend(loc="lower right", fontsize=8)


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    rng = np.random.default_rng(run.seed)
    n = 60 if run.quick else 200
    epochs = run.epochs                                   # the upper bound on passes
    data.announce("a separable 2-D cloud and four noisy XOR clusters", kind="generated")

    # 1) Separable data: the perceptron convergence theorem (Novikoff, 1962) says that with
    #    R = max ||[x, 1]|| and a unit separator with margin gamma, the rule makes at most
    #    (R / gamma)^2 mistakes in total, whatever the order. The planted line gives a gamma.
    x, y, (w_star, b_star) = separable_data(rng, n)
    w, b, mistakes = train_perceptron(x, y, epochs)
    x1 = np.hstack([x, np.ones((len(x), 1))])                  # (n, 3): bias folded into x
    u = np.append(w_star, b_star) / np.linalg.norm(np.append(w_star, b_star))
    gamma = float(np.min(y * (x1 @ u)))
    bound = (np.linalg.norm(x1, axis=1).max() / gamma) ** 2
    converged = mistakes[-1] == 0
    print(f"separable: {'converged' if converged else 'NOT converged'} after {len(mistakes)} "
          f"epoch(s), {sum(mistakes)} mistakes <= bound {bound:.0f}; mistakes per epoch "
          f"{mistakes}")
    check.less("separable: total mistakes within (R/gamma)^2", sum(mistakes), bound, strict=False)
    if converged or epochs >= MAX_EPOCHS:     # a smaller --epochs may stop it before the end
        check.equal("separable: last epoch has no mistake", mistakes[-1], 0)
        check.equal("separable: train accuracy", accuracy(x, y, w, b), 1.0)
    w_sk, b_sk = sklearn_perceptron(x, y, len(mistakes))
    check.close("separable: scratch (w, b) vs sklearn Perceptron", np.append(w, b),
                np.append(w_sk, b_sk), atol=1e-12)

    # 2) XOR: no line puts (-1,-1) and (1,1) on one side and (-1,1), (1,-1) on the other,
    #    so some point is always misclassified and the rule never stops updating.
    xx, yx = xor_data(rng, n)
    wx, bx, mistakes_x = train_perceptron(xx, yx, epochs)
    acc_x = accuracy(xx, yx, wx, bx)
    print(f"XOR: {len(mistakes_x)} epochs, mistakes in the last 5: {mistakes_x[-5:]}, "
          f"final train acc {acc_x:.2f}")
    check.true("XOR: every epoch makes a mistake", min(mistakes_x) > 0,
               f"fewest mistakes in one epoch: {min(mistakes_x)} over {len(mistakes_x)} epochs")
    check.less("XOR: the final line misclassifies points", acc_x, 1.0)
    wx_sk, bx_sk = sklearn_perceptron(xx, yx, len(mistakes_x))
    check.close("XOR: scratch (w, b) vs sklearn Perceptron", np.append(wx, bx),
                np.append(wx_sk, bx_sk), atol=1e-9)

    # 3) One hand-made feature fixes it: x1*x2 is negative exactly when the signs differ,
    #    so in 3-D the classes are separable. A hidden layer learns such features (lesson 02).
    xx3 = np.hstack([xx, xx[:, :1] * xx[:, 1:]])              # (n, 3)
    w3, b3, mistakes_3 = train_perceptron(xx3, yx, epochs)
    print(f"XOR + feature x1*x2: {len(mistakes_3)} epoch(s), acc {accuracy(xx3, yx, w3, b3):.2f}")
    if mistakes_3[-1] == 0 or epochs >= MAX_EPOCHS:
        check.equal("XOR + x1*x2: converges (last epoch without mistakes)", mistakes_3[-1], 0)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    draw(axes[0], x, y, w, b, f"separable: {'converged in' if converged else 'stopped after'} "
                              f"{len(mistakes)} epoch(s)")
    draw(axes[1], xx, yx, wx, bx, f"XOR: still wrong after {len(mistakes_x)} epochs "
                                  f"(acc {acc_x:.2f})")
    axes[2].plot(range(1, len(mistakes_x) + 1), mistakes_x, label="XOR")
    axes[2].plot(range(1, len(mistakes) + 1), mistakes, "o-", label="separable")
    axes[2].set(xlabel="epoch", ylabel="mistakes in the epoch", title="mistakes per epoch")
    axes[2].legend()
    plot.save(fig, run, "perceptron.png")
    return cli.finish(run, {"epochs": len(mistakes_x),        # XOR never stops early
                            "separable_epochs": len(mistakes),
                            "separable_mistakes": int(sum(mistakes)),
                            "mistake_bound": float(bound), "xor_train_acc": acc_x,
                            "xor_with_product_epochs": len(mistakes_3)}, answers={
        "xor_clean_epoch": ("yes" if min(mistakes_x) == 0 else "no", f"XOR: fewest mistakes in one of "
                            f"{len(mistakes_x)} epochs: {min(mistakes_x)} (perceptron.png, right)"),
        "xor_product": ("yes" if mistakes_3[-1] == 0 else "no", f"XOR + x1*x2: {mistakes_3[-1]} mistakes "
                        f"in the last of {len(mistakes_3)} epoch(s)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 04.01`) before running it;
# `python -m dlcourse check 04.01` compares your answers with what the run measures.
# PREDICT xor_clean_epoch (yes / no): on the XOR clusters, does the perceptron ever get through an epoch without a mistake?
# ANSWER xor_clean_epoch:
# PREDICT xor_product (yes / no): with the extra feature x1*x2, does the perceptron converge on XOR (an epoch without mistakes)?
# ANSWER xor_product:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
