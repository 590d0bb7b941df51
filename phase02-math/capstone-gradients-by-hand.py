"""Capstone - Loss and gradient by hand (phase 02, week 3)

Goal: write logistic regression, softmax regression and a one-hidden-layer MLP in NumPy only,
      prove every gradient with finite differences, train them on three bundled data sets,
      compare with scikit-learn (accuracy and fit time), and diagnose bias vs variance.
Run:  python phase02-math/capstone-gradients-by-hand.py            (full data sets; about 8 s on a 2-core CPU)
      python phase02-math/capstone-gradients-by-hand.py --quick    (seconds, offline, used by the tests)
      --epochs N sets the training epochs of every model (60; 30 with --quick)
Expect: gradient checks with relative error ~1e-9 (bound 1e-6); our Adam equals torch.optim.Adam;
      test accuracy (ours: linear / MLP, then sklearn's) breast cancer 0.971 / 0.965 vs 0.959 / 0.959,
      wine 1.000 / 1.000 vs 1.000 / 0.981, digits 0.970 / 0.980 vs 0.972 / 0.978 (seed 0, full);
      comparison.md in the output folder; learning_curves.png with the digits diagnosis.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

EPOCHS = 60          # passes over each training set (--epochs overrides)
QUICK_EPOCHS = 30    # --quick


def parse_args(argv=None):
    return cli.parser(__doc__, epochs=(EPOCHS, QUICK_EPOCHS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from dlcourse import check, data, lessons, plot
import matplotlib.pyplot as plt

calculus = lessons.load("02.03")   # relative_error: the scale-free gradient-check measure
entropy = lessons.load("02.07")    # log_softmax: the log-sum-exp trick

HIDDEN = 64          # MLP hidden units
LR = 0.01            # Adam step size (our models and sklearn's MLP)
BATCH = 32           # mini-batch size
L2 = 1e-4            # weight decay added to the mean loss: L2/2 * ||W||^2 (biases not penalised)
BETAS = (0.9, 0.999)  # Adam's decay rates for the gradient mean and its square
ADAM_EPS = 1e-8      # keeps Adam's step finite where the squared-gradient mean is ~0
ADAM_CHECK_STEPS = 5  # Adam steps replayed with torch.optim.Adam to check our update
EPS = 1e-6           # finite-difference step: small enough for accuracy, large enough for float64
GRAD_TOL = 1e-6      # largest relative error a correct float64 gradient should show
PROBES = 25          # entries per parameter array that the gradient check perturbs
TARGET_ERROR = 0.02  # error we would accept on digits (the "desired performance" for the diagnosis)
MCNEMAR_SIGMAS = 4   # ours vs sklearn: accuracies may differ by this many std of McNemar's statistic
DATASETS = {"breast cancer": load_breast_cancer, "wine": load_wine, "digits": load_digits}
log_softmax = entropy.log_softmax  # log p_k = z_k - log sum_j e^{z_j}, max subtracted first (lesson 07)


class Logistic:
    """p = sigma(x.w + b), loss = mean BCE + L2/2 ||w||^2.  dL/dz = (p - y)/N  (lesson 10)."""

    def __init__(self, d, k, rng):
        assert k == 2, "logistic regression is binary; use Softmax for k > 2"
        self.params = {"w": 0.01 * rng.normal(size=d), "b": np.zeros(1)}

    def scores(self, x):
        return x @ self.params["w"] + self.params["b"][0]           # (N,) log-odds

    def loss_and_grads(self, x, y):
        z = self.scores(x)
        loss = np.mean(np.logaddexp(0, z) - y * z) + L2 / 2 * self.params["w"] @ self.params["w"]
        dz = (1 / (1 + np.exp(-z)) - y) / len(y)                     # (N,)
        return loss, {"w": x.T @ dz + L2 * self.params["w"], "b": np.array([dz.sum()])}

    def predict(self, x):
        return (self.scores(x) > 0).astype(int)


class Softmax:
    """p = softmax(xW + b), loss = mean CE + L2/2 ||W||^2.
    With Y one-hot, dL/dZ = (P - Y)/N, the same 'prediction minus target' as the logistic case."""

    def __init__(self, d, k, rng):
        self.params = {"W": 0.01 * rng.normal(size=(d, k)), "b": np.zeros(k)}

    def scores(self, x):
        return x @ self.params["W"] + self.params["b"]               # (N, K) logits

    def loss_and_grads(self, x, y):
        # EXERCISE softmax_loss_and_grads: loss = mean of -log_softmax at the true class + L2/2 ||W||^2; dZ = (P - Y)/N; dW = X^T dZ + L2 W, db = dZ summed over rows
        logp = log_softmax(self.scores(x))
        n, w = len(y), self.params["W"]
        loss = -logp[np.arange(n), y].mean() + L2 / 2 * np.sum(w * w)
        dz = np.exp(logp)
        dz[np.arange(n), y] -= 1.0                                   # P - Y
        dz /= n
        return loss, {"W": x.T @ dz + L2 * w, "b": dz.sum(0)}
        # END EXERCISE

    def predict(self, x):
        return self.scores(x).argmax(1)


class MLP(Softmax):
    """x -> tanh(x W1 + b1) -> h W2 + b2 -> softmax. Backprop is the chain rule, layer by layer:
        dZ2 = (P - Y)/N;  dW2 = H^T dZ2;  dH = dZ2 W2^T;  dA = dH * (1 - H^2)  (tanh' = 1 - tanh^2);
        dW1 = X^T dA.
    tanh rather than ReLU: it is smooth, so finite differences agree with it everywhere
    (a ReLU kink between x - EPS and x + EPS would make a correct gradient look wrong)."""

    def __init__(self, d, k, rng):
        self.params = {"W1": rng.normal(size=(d, HIDDEN)) / np.sqrt(d), "b1": np.zeros(HIDDEN),
                       "W2": rng.normal(size=(HIDDEN, k)) / np.sqrt(HIDDEN), "b2": np.zeros(k)}

    def forward(self, x):
        h = np.tanh(x @ self.params["W1"] + self.params["b1"])      # (N, HIDDEN)
        return h, h @ self.params["W2"] + self.params["b2"]          # (N, K)

    def scores(self, x):
        return self.forward(x)[1]

    def loss_and_grads(self, x, y):
        # EXERCISE mlp_loss_and_grads: CE + L2/2 (||W1||^2 + ||W2||^2); dZ2 = (P - Y)/N; dW2 = H^T dZ2 + L2 W2; dA = dZ2 W2^T * (1 - H^2); dW1 = X^T dA + L2 W1; biases: column sums
        p = self.params
        h, z = self.forward(x)
        logp = log_softmax(z)
        n = len(y)
        loss = -logp[np.arange(n), y].mean() + L2 / 2 * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
        dz = np.exp(logp)
        dz[np.arange(n), y] -= 1.0
        dz /= n
        da = (dz @ p["W2"].T) * (1 - h * h)                          # (N, HIDDEN)
        return loss, {"W1": x.T @ da + L2 * p["W1"], "b1": da.sum(0),
                      "W2": h.T @ dz + L2 * p["W2"], "b2": dz.sum(0)}
        # END EXERCISE


def grad_check(model, x, y, rng):
    """Relative error ||g - g_fd|| / (||g|| + ||g_fd||) between the analytic gradient and central
    differences (f(t + EPS) - f(t - EPS)) / (2 EPS), whose error shrinks like EPS^2, over PROBES
    random entries of each parameter array; the worst array is returned. A wrong formula gives
    ~1e-1..1; a right one ~1e-8 or less (what is left is float rounding, ~1e-16 / EPS).
    The relative error is lesson 03's: scale-free, so one tolerance fits every array."""
    _, grads = model.loss_and_grads(x, y)
    worst = 0.0
    for name, p in model.params.items():
        probe = rng.choice(p.size, min(PROBES, p.size), replace=False)
        fd = np.empty(len(probe))
        for j, i in enumerate(probe):
            old = p.flat[i]
            p.flat[i] = old + EPS
            up = model.loss_and_grads(x, y)[0]
            p.flat[i] = old - EPS
            down = model.loss_and_grads(x, y)[0]
            p.flat[i] = old
            fd[j] = (up - down) / (2 * EPS)
        worst = max(worst, calculus.relative_error(grads[name].flat[probe], fd))
    return worst


def adam_update(p, g, m, v, t, lr):
    """One Adam step on parameter p (in place), given its gradient g and the running means m of
    g and v of g^2 (returned updated). m and v start at 0, so early on they underestimate; dividing
    by 1 - beta^t undoes that (bias correction). The step m_hat / (sqrt(v_hat) + eps) gives every
    parameter its own scale."""
    # EXERCISE adam_update: m, v = running means of g and g^2 (BETAS); p -= lr * m_hat / (sqrt(v_hat) + ADAM_EPS), hats divided by 1 - beta^t; update p in place, return (m, v)
    b1, b2 = BETAS
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g ** 2
    p -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + ADAM_EPS)
    return m, v
    # END EXERCISE


def check_adam(rng):
    """Our update vs torch.optim.Adam on the same gradients and the same decaying step sizes.
    (torch only as the reference here; the models stay NumPy.) Gradients of mixed sizes, so
    the per-parameter scaling shows."""
    import torch
    p = rng.normal(size=(4, 3))
    ref = torch.tensor(p.copy(), requires_grad=True)
    opt = torch.optim.Adam([ref], lr=LR, betas=BETAS, eps=ADAM_EPS)
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t in range(1, ADAM_CHECK_STEPS + 1):
        g = rng.normal(size=p.shape) * np.logspace(-3, 1, 3)        # (4, 3), columns of different scale
        lr = LR * (1 - (t - 1) / ADAM_CHECK_STEPS)                    # a changing step, as in fit()
        m, v = adam_update(p, g, m, v, t, lr)
        opt.param_groups[0]["lr"] = lr
        ref.grad = torch.tensor(g)
        opt.step()
    check.close(f"{ADAM_CHECK_STEPS} Adam steps vs torch.optim.Adam", p, ref.detach(), atol=1e-12)


def fit(model, x, y, epochs, rng):
    """Mini-batch Adam (adam_update). Returns the full-batch loss after each epoch."""
    m = {k: np.zeros_like(v) for k, v in model.params.items()}
    v = {k: np.zeros_like(p) for k, p in model.params.items()}
    t, losses = 0, []
    for epoch in range(epochs):
        # Decay the step linearly to zero: large steps early, and a calm last epoch (with a
        # constant step, Adam on a near-zero loss can spike right before we stop).
        lr = LR * (1 - epoch / epochs)
        order = rng.permutation(len(y))
        for i in range(0, len(y), BATCH):
            rows = order[i:i + BATCH]
            _, grads = model.loss_and_grads(x[rows], y[rows])
            t += 1
            for k, p in model.params.items():
                m[k], v[k] = adam_update(p, grads[k], m[k], v[k], t, lr)
        losses.append(model.loss_and_grads(x, y)[0])
    return losses


def load(name, run):
    d = DATASETS[name]()
    n = 150 if run.quick else len(d.data)
    x_tr, x_te, y_tr, y_te = train_test_split(d.data[:n], d.target[:n], test_size=0.3,
                                              stratify=d.target[:n], random_state=run.seed)
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-8                    # digits has always-blank pixels
    return (x_tr - mu) / sd, (x_te - mu) / sd, y_tr, y_te


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def learning_curve(make, x_tr, y_tr, x_val, y_val, fractions, epochs, rng):
    """Train/validation error of a fresh model at growing training-set sizes."""
    rows = []
    for f in fractions:
        k = max(int(f * len(y_tr)), 20)
        model = make()
        fit(model, x_tr[:k], y_tr[:k], epochs, rng)
        rows.append((k, np.mean(model.predict(x_tr[:k]) != y_tr[:k]), np.mean(model.predict(x_val) != y_val)))
    return np.array(rows)


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    rng = np.random.default_rng(run.seed)
    epochs = run.epochs
    data.announce("scikit-learn breast cancer, wine and digits", kind="bundled",
                  detail="first 150 rows of each (--quick)" if run.quick else "all rows")

    # 1. Gradient checks on a small batch, at random (not zero) weights.
    x, _, y, _ = load("wine", run)
    xb, yb = x[:20], y[:20]
    for cls, yy in ((Logistic, (yb == 0).astype(float)), (Softmax, yb), (MLP, yb)):
        model = cls(x.shape[1], 2 if cls is Logistic else 3, rng)
        for p in model.params.values():
            p += 0.1 * rng.normal(size=p.shape)
        check.less(f"{cls.__name__}: analytic vs finite-difference gradient (max relative error)",
                   grad_check(model, xb, yy, rng), GRAD_TOL)
    soft = Softmax(x.shape[1], 3, rng)
    ce = soft.loss_and_grads(xb, yb)[0] - L2 / 2 * np.sum(soft.params["W"] ** 2)
    probs = np.exp(log_softmax(soft.scores(xb)))
    check.close("our cross-entropy vs sklearn log_loss", ce, log_loss(yb, probs, labels=[0, 1, 2]),
                atol=1e-12)
    check_adam(rng)

    # 2. Train ours and sklearn's on three data sets.
    rows, results = [], {}
    for name in DATASETS:
        x_tr, x_te, y_tr, y_te = load(name, run)
        k = int(y_tr.max()) + 1
        majority = np.mean(y_te == np.bincount(y_tr).argmax())
        linear = Logistic if k == 2 else Softmax
        ours = {}
        for label, cls in ((f"{linear.__name__} (ours)", linear), ("MLP (ours)", MLP)):
            model = cls(x_tr.shape[1], k, rng)
            targets = y_tr.astype(float) if cls is Logistic else y_tr      # 0/1 floats for the BCE
            losses, seconds = timed(lambda: fit(model, x_tr, targets, epochs, rng))
            epochs_run = len(losses)
            check.less(f"{name}: {label} training loss fell", losses[-1], losses[0])
            ours[label] = (model.predict(x_te), seconds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter = our epoch budget, on purpose
            refs = {"LogisticRegression (sklearn)": LogisticRegression(max_iter=1000),
                    "MLPClassifier (sklearn)": MLPClassifier((HIDDEN,), activation="tanh", alpha=L2,
                                                             batch_size=BATCH, learning_rate_init=LR,
                                                             max_iter=epochs, random_state=run.seed)}
            for label, ref in refs.items():
                _, seconds = timed(lambda: ref.fit(x_tr, y_tr))
                ours[label] = (ref.predict(x_te), seconds)
        for label, (pred, seconds) in ours.items():
            rows.append((name, label, np.mean(pred == y_te), seconds))
            if "ours" in label:
                check.greater(f"{name}: {label} beats the majority class ({majority:.2f})",
                              np.mean(pred == y_te), majority)
        # Ours vs sklearn's on the same test rows (McNemar): where exactly one of the two is right,
        # equally good models are each right about half the time, so the difference of those two
        # counts has mean 0 and std sqrt(their sum).
        for mine, theirs in ((f"{linear.__name__} (ours)", "LogisticRegression (sklearn)"),
                             ("MLP (ours)", "MLPClassifier (sklearn)")):
            right_a, right_b = ours[mine][0] == y_te, ours[theirs][0] == y_te
            b, c = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
            check.less(f"{name}: {mine} vs {theirs}: |{b} - {c}| test rows only one got right "
                       f"<= {MCNEMAR_SIGMAS} sqrt({b} + {c})", abs(b - c), MCNEMAR_SIGMAS * np.sqrt(b + c),
                       strict=False)
        results[name] = {label: round(float(np.mean(pred == y_te)), 4) for label, (pred, _) in ours.items()}
        rows.append((name, "majority class", majority, 0.0))

    # 3. Bias or variance? Learning curves of our models on digits.
    # Validation rows come out of the training split: the test split stays for the table only.
    x_tr, _, y_tr, _ = load("digits", run)
    x_tr, x_val, y_tr, y_val = train_test_split(x_tr, y_tr, test_size=0.25, stratify=y_tr,
                                                random_state=run.seed)
    fractions = (0.3, 1.0) if run.quick else (0.1, 0.2, 0.4, 0.7, 1.0)
    curves = {cls.__name__: learning_curve(lambda: cls(64, 10, rng), x_tr, y_tr, x_val, y_val,
                                           fractions, epochs, rng)
              for cls in (Softmax, MLP)}
    lines = []
    for label, c in curves.items():
        print(f"learning curve {label}: "
              + ", ".join(f"N={k:.0f} train {a:.3f} val {b:.3f}" for k, a, b in c))
        train_err, val_err = c[-1, 1], c[-1, 2]
        bias, variance = train_err > TARGET_ERROR, val_err - train_err > TARGET_ERROR
        verdict = {(True, True): "high bias and high variance: improve the model first, then regularise",
                   (True, False): "high bias: a bigger model or more training",
                   (False, True): "high variance: more data or more regularisation",
                   (False, False): "both within target: done"}[(bias, variance)]
        lines.append(f"{label}: train error {train_err:.3f}, validation error {val_err:.3f} "
                     f"(target {TARGET_ERROR}) -> {verdict}")
        print("diagnosis", lines[-1])
    check.less("more data lowers the MLP's validation error", curves["MLP"][-1, 2], curves["MLP"][0, 2])

    table = ["| data set | model | test accuracy | fit time (s) |", "|---|---|---|---|"]
    table += [f"| {d} | {m} | {a:.3f} | {s:.3f} |" for d, m, a, s in rows]
    print("\n".join(table))
    mode = "quick" if run.quick else "full"
    report = (f"# Loss and gradient by hand: comparison\n\n{mode} run, seed {run.seed}, {epochs} epochs\n\n"
              + "\n".join(table) + "\n\n## Bias-variance diagnosis (digits)\n\n"
              + "\n".join(f"- {line}" for line in lines) + "\n")
    (run.out_dir / "comparison.md").write_text(report)
    print(f"table: {run.out_dir / 'comparison.md'}")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, (label, c) in zip(axes, curves.items()):
        ax.plot(c[:, 0], c[:, 1], "o-", label="train error")
        ax.plot(c[:, 0], c[:, 2], "s-", label="validation error")
        ax.axhline(TARGET_ERROR, ls="--", c="gray", label=f"target {TARGET_ERROR}")
        ax.set(xlabel="training examples", ylabel="error rate", title=f"{label} on digits")
        ax.legend()
    plot.save(fig, run, "learning_curves.png")
    mlp = curves["MLP"]
    bias, variance = mlp[-1, 1] > TARGET_ERROR, mlp[-1, 2] - mlp[-1, 1] > TARGET_ERROR
    return cli.finish(run, {"epochs": epochs_run, "accuracy": results}, answers={
        "mlp_diagnosis": ({(True, True): "both", (True, False): "high bias", (False, True): "high variance",
                           (False, False): "neither"}[(bool(bias), bool(variance))],
                          f"MLP on digits, all {mlp[-1, 0]:.0f} training rows: train error {mlp[-1, 1]:.3f}, "
                          f"validation error {mlp[-1, 2]:.3f}, target {TARGET_ERROR} (learning_curves.png)"),
        "more_data": ("yes" if mlp[-1, 2] < mlp[0, 2] else "no",
                      f"MLP validation error {mlp[0, 2]:.3f} with {mlp[0, 0]:.0f} rows, {mlp[-1, 2]:.3f} "
                      f"with {mlp[-1, 0]:.0f} (learning_curves.png, right)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 02.capstone`) before running it;
# `python -m dlcourse check 02.capstone` compares your answers with what the run measures.
# PREDICT mlp_diagnosis (high bias / high variance / both / neither): with a 2% error target, what does the MLP's learning curve on digits diagnose?
# ANSWER mlp_diagnosis:
# PREDICT more_data (yes / no): does training the MLP on more digits lower its validation error?
# ANSWER more_data:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
