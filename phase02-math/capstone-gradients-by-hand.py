"""Capstone - Loss and gradient by hand (phase 02, week 3)

Goal: write logistic regression, softmax regression and a one-hidden-layer MLP in NumPy only,
      prove every gradient with finite differences, train them on three bundled data sets,
      compare with scikit-learn (accuracy and fit time), and diagnose bias vs variance.
Run:  python phase02-math/capstone-gradients-by-hand.py            (full data sets; about 8 s on a 2-core CPU)
      python phase02-math/capstone-gradients-by-hand.py --quick    (seconds, offline, used by the tests)
Expect: gradient checks with relative error ~1e-9 (bound 1e-6); test accuracy breast cancer ~0.95,
      wine ~1.0, digits ~0.97 for our models and sklearn's alike; comparison.md in the output folder;
      learning_curves.png with the digits diagnosis.
"""
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from dlcourse import check, cli, data, plot
import matplotlib.pyplot as plt

HIDDEN = 64          # MLP hidden units
LR = 0.01            # Adam step size (our models and sklearn's MLP)
BATCH = 32           # mini-batch size
L2 = 1e-4            # weight decay added to the mean loss: L2/2 * ||W||^2 (biases not penalised)
EPS = 1e-6           # finite-difference step: small enough for accuracy, large enough for float64
GRAD_TOL = 1e-6      # largest relative error a correct float64 gradient should show
PROBES = 25          # entries per parameter array that the gradient check perturbs
TARGET_ERROR = 0.02  # error we would accept on digits (the "desired performance" for the diagnosis)
DATASETS = {"breast cancer": load_breast_cancer, "wine": load_wine, "digits": load_digits}


def log_softmax(z):
    """log p_k = z_k - log sum_j e^{z_j}; subtracting max(z) first keeps exp() from overflowing
    and changes nothing (it cancels between the two terms): the log-sum-exp trick."""
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


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
        logp = log_softmax(self.scores(x))
        n, w = len(y), self.params["W"]
        loss = -logp[np.arange(n), y].mean() + L2 / 2 * np.sum(w * w)
        dz = np.exp(logp)
        dz[np.arange(n), y] -= 1.0                                   # P - Y
        dz /= n
        return loss, {"W": x.T @ dz + L2 * w, "b": dz.sum(0)}

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


def grad_check(model, x, y, rng):
    """Relative error ||g - g_fd|| / (||g|| + ||g_fd||) between the analytic gradient and central
    differences (f(t + EPS) - f(t - EPS)) / (2 EPS), whose error shrinks like EPS^2, over PROBES
    random entries of each parameter array; the worst array is returned. A wrong formula gives
    ~1e-1..1; a right one ~1e-8 or less (what is left is float rounding, ~1e-16 / EPS)."""
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
        g = grads[name].flat[probe]
        worst = max(worst, np.linalg.norm(g - fd) / max(np.linalg.norm(g) + np.linalg.norm(fd), 1e-12))
    return worst


def fit(model, x, y, epochs, rng):
    """Mini-batch Adam: m and v are running means of the gradient and its square (m_hat, v_hat
    undo their zero start); the step m_hat / (sqrt(v_hat) + 1e-8) gives every parameter its own
    scale. Returns the full-batch loss after each epoch."""
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
                m[k] = 0.9 * m[k] + 0.1 * grads[k]
                v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
                p -= lr * (m[k] / (1 - 0.9 ** t)) / (np.sqrt(v[k] / (1 - 0.999 ** t)) + 1e-8)
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
    epochs = args.epochs or (30 if run.quick else 60)
    data.announce("scikit-learn breast cancer, wine, digits", real=True,
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
            check.less(f"{name}: {label} training loss fell", losses[-1], losses[0])
            ours[label] = (np.mean(model.predict(x_te) == y_te), seconds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter = our epoch budget, on purpose
            refs = {"LogisticRegression (sklearn)": LogisticRegression(max_iter=1000),
                    "MLPClassifier (sklearn)": MLPClassifier((HIDDEN,), activation="tanh", alpha=L2,
                                                             batch_size=BATCH, learning_rate_init=LR,
                                                             max_iter=epochs, random_state=run.seed)}
            for label, ref in refs.items():
                _, seconds = timed(lambda: ref.fit(x_tr, y_tr))
                ours[label] = (ref.score(x_te, y_te), seconds)
        for label, (acc, seconds) in ours.items():
            rows.append((name, label, acc, seconds))
            if "ours" in label:
                check.greater(f"{name}: {label} beats the majority class ({majority:.2f})", acc, majority)
        tol = max(0.03, 3 / len(y_te))            # three points of accuracy, or three test rows
        for mine, theirs in ((f"{linear.__name__} (ours)", "LogisticRegression (sklearn)"),
                             ("MLP (ours)", "MLPClassifier (sklearn)")):
            check.close(f"{name}: {mine} accuracy near {theirs} (within {tol:.3f})", ours[mine][0],
                        ours[theirs][0], atol=tol)
        results[name] = {label: round(float(acc), 4) for label, (acc, _) in ours.items()}
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
    return cli.finish(run, {"accuracy": results})


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    with cli.friendly_errors():
        main(parse_args())
