"""10 - Logistic regression: the gradient by hand (phase 02, week 3)

Goal: derive the gradient (and Hessian) of the cross-entropy loss, check it against
      torch.autograd, train on breast-cancer data and draw a decision boundary.
Run:  python phase02-math/10-logistic-regression.py            (all 569 tumours, 2000 steps; about 7 s on a 2-core CPU)
      python phase02-math/10-logistic-regression.py --quick    (seconds, offline, used by the tests)
      --steps N sets the gradient-descent steps (2000; 300 with --quick)
Expect: "[check] hand gradient vs torch.autograd: max |diff| ~1e-16"; our update equals
      torch.optim.SGD's; Newton's method equals sklearn's weights (diff ~1e-6); after 2000 steps
      gradient descent reaches the minimum's loss 0.0640; test accuracy 0.959 for ours and sklearn's
      (seed 0, full); boundary.png.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

STEPS = 2000          # full-batch gradient-descent steps (--steps overrides)
QUICK_STEPS = 300     # --quick


def parse_args(argv=None):
    return cli.parser(__doc__, steps=(STEPS, QUICK_STEPS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from dlcourse import check, data, plot
import matplotlib.pyplot as plt

C = 1.0               # inverse L2 strength, sklearn's convention: loss = 1/2||w||^2 + C * sum(CE)
LR = 0.5              # gradient-descent step size on the mean loss (inputs are standardised)
SGD_CHECK_STEPS = 5   # steps replayed with torch.optim.SGD to check our update rule
NEWTON_STEPS = 25     # Newton converges quadratically; a handful of steps is plenty
BOUNDARY_FEATURES = ("mean radius", "mean texture")  # the two inputs of the 2-D picture


def load(run):
    d = load_breast_cancer()
    n = 250 if run.quick else len(d.data)
    data.announce("scikit-learn breast cancer (Wisconsin diagnostic)", kind="bundled",
                  detail=f"{n} tumours, 30 features, 1 = benign")
    x_tr, x_te, y_tr, y_te = train_test_split(d.data[:n], d.target[:n], test_size=0.3,
                                              stratify=d.target[:n], random_state=run.seed)
    mu, sd = x_tr.mean(0), x_tr.std(0)            # training statistics only
    return (x_tr - mu) / sd, (x_te - mu) / sd, y_tr, y_te, list(d.feature_names)


def sigmoid(z):
    """sigma(z) = 1 / (1 + e^{-z}), written so that neither branch overflows."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def loss_and_grad(w, b, x, y, lam):
    """Mean binary cross-entropy plus (lam/2)||w||^2, and its gradient.

    With z = Xw + b and p = sigma(z):  L = -(1/N) sum[y log p + (1-y) log(1-p)] + lam/2 ||w||^2.
    Because sigma'(z) = p(1-p), the chain rule collapses beautifully:
        dL/dz_i = (p_i - y_i) / N,  so  dL/dw = X^T (p - y) / N + lam w,  dL/db = mean(p - y).
    Prediction minus target, projected back onto the inputs: the same shape as linear regression.
    In terms of z, log p = -softplus(-z) and log(1-p) = -softplus(z); logaddexp keeps it finite.
    """
    # EXERCISE loss_and_grad: z = Xw + b; mean CE via np.logaddexp(0, -+z) plus lam/2 |w|^2; gradients X^T (p - y) / N + lam w and mean(p - y); return (loss, dw, db)
    z = x @ w + b                                                        # (N,)
    ce = np.mean(y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z))
    err = sigmoid(z) - y                                                 # (N,)
    return ce + 0.5 * lam * w @ w, x.T @ err / len(y) + lam * w, err.mean()
    # END EXERCISE


def autograd_reference(w, b, x, y, lam):
    """The same loss in torch (float64 on the CPU, a reference computation); autograd does the calculus."""
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)  # a bare float would be float32
    z = torch.tensor(x) @ wt + bt
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z, torch.tensor(y, dtype=torch.float64))
    loss = loss + 0.5 * lam * wt @ wt
    loss.backward()
    return loss.item(), wt.grad.numpy(), bt.grad.item()


def fit_gd(x, y, lam, steps, w=None, b=0.0):
    """Full-batch gradient descent from (w, b) (zeros by default); returns the loss before each step."""
    # EXERCISE fit_gd: start from w (zeros if None, copied) and b; each step record the loss, then move both w and b by -LR times their gradient
    w, losses = np.zeros(x.shape[1]) if w is None else w.copy(), []
    for _ in range(steps):
        loss, gw, gb = loss_and_grad(w, b, x, y, lam)
        losses.append(loss)
        w, b = w - LR * gw, b - LR * gb
    return w, b, losses
    # END EXERCISE


def sgd_reference(w, b, x, y, lam, steps):
    """torch.optim.SGD (plain steps, no momentum) on the autograd loss: the reference update."""
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([wt, bt], lr=LR)
    xt, yt = torch.tensor(x), torch.tensor(y, dtype=torch.float64)
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ wt + bt, yt) + 0.5 * lam * wt @ wt
        opt.zero_grad()
        loss.backward()
        opt.step()
    return wt.detach().numpy(), bt.item()


def fit_newton(x, y, lam):
    """Newton's method: theta <- theta - H^{-1} g, with the Hessian derived by hand.

    Differentiating the gradient once more: H = X_1^T diag(p(1-p)) X_1 / N + lam P, where X_1 has
    a column of ones for the bias and P leaves the bias unpenalised. p(1-p) > 0, so H is positive
    definite: the loss is convex, and there is a single minimum for sklearn and us to agree on.
    """
    # EXERCISE fit_newton: theta = (b, w) on X_1 with a ones column; each step solve H d = g with H = X_1^T diag(p(1-p)) X_1 / N + lam P (P[0, 0] = 0) and subtract d
    x1 = np.hstack([np.ones((len(x), 1)), x])           # (N, 1 + D)
    theta = np.zeros(x1.shape[1])
    pen = lam * np.eye(x1.shape[1])
    pen[0, 0] = 0.0
    for _ in range(NEWTON_STEPS):
        p = sigmoid(x1 @ theta)
        grad = x1.T @ (p - y) / len(y) + pen @ theta
        hess = (x1 * (p * (1 - p))[:, None]).T @ x1 / len(y) + pen
        theta -= np.linalg.solve(hess, grad)
    return theta[1:], theta[0]
    # END EXERCISE


def main(args) -> dict:
    run = cli.start(args, __file__)
    x_tr, x_te, y_tr, y_te, names = load(run)
    n, d = x_tr.shape
    # sklearn minimises 1/2||w||^2 + C sum_i CE_i; divide by C*N to get our mean-loss form.
    lam = 1.0 / (C * n)

    # 1. The hand-derived gradient equals autograd's at a random point. The point has a nonzero
    # bias and the data a class balance far from 50/50, so a missing or wrong bias term shows.
    rng = np.random.default_rng(run.seed)
    w0, b0 = rng.normal(size=d), float(rng.normal())
    loss, gw, gb = loss_and_grad(w0, b0, x_tr, y_tr, lam)
    t_loss, t_gw, t_gb = autograd_reference(w0, b0, x_tr, y_tr, lam)
    check.close("loss vs torch BCE-with-logits", loss, t_loss, atol=1e-12)
    check.close("hand gradient vs torch.autograd", np.append(gw, gb), np.append(t_gw, t_gb), atol=1e-12)
    # ... and our update rule equals torch.optim.SGD's, step for step, from the same random start.
    w_k, b_k, _ = fit_gd(x_tr, y_tr, lam, SGD_CHECK_STEPS, w0, b0)
    check.close(f"{SGD_CHECK_STEPS} gradient-descent steps vs torch.optim.SGD", np.append(w_k, b_k),
                np.append(*sgd_reference(w0, b0, x_tr, y_tr, lam, SGD_CHECK_STEPS)), atol=1e-12)

    # 2. Train: gradient descent, Newton, and the reference.
    w_gd, b_gd, losses = fit_gd(x_tr, y_tr, lam, run.steps)
    w_nt, b_nt = fit_newton(x_tr, y_tr, lam)
    ref = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(x_tr, y_tr)
    check.close("Newton weights vs sklearn LogisticRegression", np.append(w_nt, b_nt),
                np.append(ref.coef_[0], ref.intercept_), atol=1e-4)
    # The loss is convex with a single minimum (Newton's, confirmed by sklearn): gradient descent
    # creeps towards it from above and can never get below it.
    loss_gd, loss_min = loss_and_grad(w_gd, b_gd, x_tr, y_tr, lam)[0], loss_and_grad(w_nt, b_nt, x_tr, y_tr, lam)[0]
    print(f"training loss after {len(losses)} GD steps {loss_gd:.5f} (started at {losses[0]:.5f}); "
          f"minimum (Newton) {loss_min:.5f}")
    check.true("gradient descent fell towards the minimum and not below it",
               losses[0] > loss_gd >= loss_min - 1e-12,
               f"start {losses[0]:.5f} > GD {loss_gd:.5f} >= Newton {loss_min:.5f}")

    # Decide class 1 when p >= 0.5, i.e. when z = w.x + b >= 0: the boundary is a hyperplane.
    acc_gd = np.mean((x_te @ w_gd + b_gd >= 0) == y_te)
    acc_ref = ref.score(x_te, y_te)
    print(f"test accuracy: ours (GD, {len(losses)} steps) {acc_gd:.3f} | sklearn {acc_ref:.3f} "
          f"| majority class {max(y_te.mean(), 1 - y_te.mean()):.3f}")
    p_ours = sigmoid(x_te @ w_nt + b_nt)
    check.close("Newton probabilities vs predict_proba", p_ours, ref.predict_proba(x_te)[:, 1], atol=1e-5)

    # 3. A 2-feature model so the boundary can be drawn: w1 x1 + w2 x2 + b = 0 is a straight line.
    cols = [names.index(f) for f in BOUNDARY_FEATURES]
    w2, b2, _ = fit_gd(x_tr[:, cols], y_tr, lam, run.steps)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax1.plot(losses)
    ax1.set(xlabel="step", ylabel="mean CE + L2", title="gradient descent on all 30 features")
    g1, g2 = np.meshgrid(np.linspace(-3, 4, 200), np.linspace(-3, 4, 200))
    prob = sigmoid(w2[0] * g1 + w2[1] * g2 + b2)
    im = ax2.contourf(g1, g2, prob, levels=20, cmap="RdBu", alpha=0.6)
    ax2.contour(g1, g2, prob, levels=[0.5], colors="k")
    for label, marker in ((0, "x"), (1, "o")):
        pts = x_tr[y_tr == label][:, cols]
        ax2.scatter(pts[:, 0], pts[:, 1], s=12, marker=marker, c="k" if label else "crimson",
                    label=["malignant", "benign"][label])
    fig.colorbar(im, ax=ax2, label="p(benign)")
    ax2.set(xlabel=f"{BOUNDARY_FEATURES[0]} (std)", ylabel=f"{BOUNDARY_FEATURES[1]} (std)",
            title="decision boundary p = 0.5", xlim=(-3, 4), ylim=(-3, 4))
    ax2.legend(loc="upper right")
    plot.save(fig, run, "boundary.png")
    return cli.finish(run, {"steps": len(losses), "test_acc": float(acc_gd), "sklearn_test_acc": float(acc_ref),
                            "final_loss": float(loss_gd)}, answers={
        "test_accuracy": ("under 70%" if acc_gd < 0.7 else "70% to 90%" if acc_gd <= 0.9 else "over 90%",
                          f"test accuracy {acc_gd:.3f} (majority class {max(y_te.mean(), 1 - y_te.mean()):.3f})"),
        "radius_means": ("benign" if w2[0] > 0 else "malignant",
                         f"2-feature model: weight {w2[0]:+.2f} on {BOUNDARY_FEATURES[0]} "
                         "(boundary.png, right: p(benign) falls to the right)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 02.10`) before running it;
# `python -m dlcourse check 02.10` compares your answers with what the run measures.
# PREDICT test_accuracy (under 70% / 70% to 90% / over 90%): a linear boundary on 30 standardised tumour features; what test accuracy?
# ANSWER test_accuracy:
# PREDICT radius_means (benign / malignant): in the 2-feature model, a larger mean radius pushes the prediction toward which class?
# ANSWER radius_means:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
