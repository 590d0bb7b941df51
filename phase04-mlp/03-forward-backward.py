"""03 - Forward and backward by hand (phase 04, week 5)

Goal: write the forward pass of a two-layer MLP and its backward pass with the chain rule,
      prove the gradients equal autograd's, then train on the digits with those gradients.
Run:  python phase04-mlp/03-forward-backward.py            (5 s on a busy 2-core CPU)
      python phase04-mlp/03-forward-backward.py --quick    (seconds, offline, used by the tests)
Expect: "[check] manual dW1 vs autograd: max |diff| ~1e-17" (float64); 50 SGD steps with
        manual gradients track optim.SGD + autograd to ~1e-16; after 30 epochs (seed 0, full)
        digits val acc 0.962, and the test accuracy, measured once at the end, 0.964;
        weights.png shows first-layer units as 8x8 stroke detectors.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

EPOCHS = 30          # full run ...
QUICK_EPOCHS = 3     # ... and --quick


def parse_args(argv=None):
    return cli.parser(__doc__, epochs=(EPOCHS, QUICK_EPOCHS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from dlcourse import check, data, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks a headless backend

HIDDEN = 100         # hidden ReLU units. Not 64 = the 8x8 input size, nor the batch size:
                     # with every dimension different, a transposed gradient cannot pass
LR = 0.3             # plain SGD step size (the loss is a mean over the batch)
BATCH = 50           # examples per step
QUICK_IMAGES = 600   # --quick keeps the first 600 of the 1797 digits
TEST_FRACTION = 0.2  # of all images, kept apart and scored once at the end
VAL_FRACTION = 0.2   # of the rest, watched every epoch
PARITY_STEPS = 50    # SGD steps compared against optim.SGD + autograd


def init_params(n_in, n_hidden, n_out, dtype, device, generator):
    """W (out, in) ~ U(-1/sqrt(in), 1/sqrt(in)), b = 0: small enough that ReLUs start alive."""
    def uniform(*shape, fan_in):
        u = torch.rand(*shape, generator=generator, dtype=torch.float64) * 2 - 1
        return (u / fan_in ** 0.5).to(dtype).to(device)   # cast on the CPU: MPS has no float64
    return {"W1": uniform(n_hidden, n_in, fan_in=n_in),
            "b1": torch.zeros(n_hidden, dtype=dtype, device=device),
            "W2": uniform(n_out, n_hidden, fan_in=n_hidden),
            "b2": torch.zeros(n_out, dtype=dtype, device=device)}


def forward(p, x, y):
    """x (B, D) -> z1 = x W1^T + b1 -> h = relu(z1) -> logits = h W2^T + b2 -> mean CE loss.

    Returns the loss and a cache of the intermediates the backward pass needs.
    """
    # EXERCISE forward: z1 = x W1^T + b1, h = relu(z1), logits = h W2^T + b2; loss = mean of -log_softmax[y] (subtract the row max first); cache x, z1, h, probs, y
    z1 = x @ p["W1"].T + p["b1"]                          # (B, H)
    h = z1.clamp_min(0)                                   # (B, H)
    logits = h @ p["W2"].T + p["b2"]                      # (B, C)
    # log-softmax with the max subtracted: exp never overflows, the result is unchanged
    shifted = logits - logits.max(dim=1, keepdim=True).values
    log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    loss = -log_probs[torch.arange(len(y)), y].mean()
    return loss, {"x": x, "z1": z1, "h": h, "probs": log_probs.exp(), "y": y}
    # END EXERCISE


def backward(p, cache):
    """The chain rule, one layer at a time, from the loss back to the inputs' weights.

    L = -1/B sum_i log softmax(logits_i)[y_i]  gives  dL/dlogits = (softmax - onehot) / B.
    For a layer out = in W^T + b:  dW = dout^T in,  db = sum_rows dout,  din = dout W.
    relu'(z) = 1 where z > 0 and 0 elsewhere (torch uses 0 at exactly z = 0, so do we).
    """
    # EXERCISE backward: d_logits = (probs - onehot) / B; dW2 = d_logits^T h, db2 = column sums; d_z1 = (d_logits W2) * (z1 > 0); dW1 = d_z1^T x, db1 = column sums
    x, z1, h, probs, y = (cache[k] for k in ("x", "z1", "h", "probs", "y"))
    B = len(y)
    d_logits = probs.clone()                              # (B, C)
    d_logits[torch.arange(B), y] -= 1
    d_logits /= B
    grads = {"W2": d_logits.T @ h,                        # (C, H)
             "b2": d_logits.sum(dim=0)}                   # (C,)
    d_h = d_logits @ p["W2"]                              # (B, H)
    d_z1 = d_h * (z1 > 0)                                 # (B, H): the gate lets gradient through
    grads["W1"] = d_z1.T @ x                              # (H, D)
    grads["b1"] = d_z1.sum(dim=0)                         # (H,)
    return grads
    # END EXERCISE


def load(run):
    """scikit-learn's bundled 8x8 digits, pixels scaled to [0, 1], split (stratified, seeded)
    into train / validation / test: float64 images (N, 64) and int64 labels (N,), on the CPU."""
    x, y = load_digits(return_X_y=True)
    if run.quick:
        x, y = x[:QUICK_IMAGES], y[:QUICK_IMAGES]
    x_rest, x_te, y_rest, y_te = train_test_split(x / 16.0, y, test_size=TEST_FRACTION,
                                                  random_state=run.seed, stratify=y)
    x_tr, x_val, y_tr, y_val = train_test_split(x_rest, y_rest, test_size=VAL_FRACTION,
                                                random_state=run.seed, stratify=y_rest)
    data.announce(f"scikit-learn digits (8x8 scans; {len(x_tr)} train / {len(x_val)} "
                  f"validation / {len(x_te)} test images)", kind="bundled")
    return [torch.tensor(a) for a in (x_tr, x_val, x_te, y_tr, y_val, y_te)]


def accuracy(p, x, y):
    return (forward(p, x, y)[1]["probs"].argmax(1) == y).float().mean().item()


def main(args) -> dict:
    run = cli.start(args, __file__)
    epochs = run.epochs
    x_tr, x_val, x_te, y_tr, y_val, y_te = load(run)
    n_in, n_out = x_tr.shape[1], 10
    gen = torch.Generator().manual_seed(run.seed)

    # 1) One batch in float64 on the CPU (exact enough to see only rounding): manual vs autograd.
    p = init_params(n_in, HIDDEN, n_out, torch.float64, "cpu", gen)
    xb, yb = x_tr[:BATCH], y_tr[:BATCH]
    loss, cache = forward(p, xb, yb)
    manual = backward(p, cache)
    initial_loss, active = loss.item(), (cache["z1"] > 0).double().mean().item()   # for the questions
    leaves = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    auto_loss = F.cross_entropy(F.relu(xb @ leaves["W1"].T + leaves["b1"]) @ leaves["W2"].T
                                + leaves["b2"], yb)       # torch's own layers and loss
    auto_loss.backward()
    check.close("forward: scratch loss vs F.cross_entropy", loss, auto_loss, atol=1e-12)
    for name in ("W1", "b1", "W2", "b2"):
        check.close(f"manual d{name} vs autograd", manual[name], leaves[name].grad, atol=1e-12)

    # 2) A central finite difference, (L(w + e) - L(w - e)) / 2e, on a few entries: the
    #    definition of a derivative, independent of both manual and automatic backprop.
    eps, picks = 1e-6, [("W1", (3, 20)), ("W1", (80, 35)), ("W2", (4, 90)), ("b1", (5,)),
                        ("b2", (7,))]
    numeric, analytic = [], []
    for name, idx in picks:
        plus, minus = dict(p), dict(p)
        plus[name], minus[name] = p[name].clone(), p[name].clone()
        plus[name][idx] += eps
        minus[name][idx] -= eps
        numeric.append((forward(plus, xb, yb)[0] - forward(minus, xb, yb)[0]) / (2 * eps))
        analytic.append(manual[name][idx])
    check.close(f"manual gradient vs central finite difference ({len(picks)} entries)",
                torch.stack(analytic), torch.stack(numeric), atol=1e-8)

    # 3) Training with the manual gradients must follow the same path as autograd + optim.SGD.
    model = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    opt = torch.optim.SGD(model.values(), lr=LR)
    for step in range(PARITY_STEPS):
        i = (step * BATCH) % (len(x_tr) - BATCH)
        xb, yb = x_tr[i:i + BATCH], y_tr[i:i + BATCH]
        g = backward(p, forward(p, xb, yb)[1])
        p = {k: p[k] - LR * g[k] for k in p}               # w <- w - lr dL/dw
        opt.zero_grad()
        forward(model, xb, yb)[0].backward()
        opt.step()
    check.close(f"params after {PARITY_STEPS} manual-SGD steps vs optim.SGD + autograd",
                torch.cat([p[k].flatten() for k in p]),
                torch.cat([model[k].detach().flatten() for k in p]), atol=1e-10)

    # 4) Now train for real in float32 on the run's device, with nothing but forward/backward.
    dev = run.device
    x_tr, x_val, x_te = (a.float().to(dev) for a in (x_tr, x_val, x_te))
    y_tr, y_val, y_te = (a.to(dev) for a in (y_tr, y_val, y_te))
    p = init_params(n_in, HIDDEN, n_out, torch.float32, dev, gen)
    shuffle_gen = torch.Generator().manual_seed(run.seed)
    history = []
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(x_tr), generator=shuffle_gen).to(dev)
        for i in range(0, len(order), BATCH):
            idx = order[i:i + BATCH]
            g = backward(p, forward(p, x_tr[idx], y_tr[idx])[1])
            p = {k: p[k] - LR * g[k] for k in p}
        train_loss = forward(p, x_tr, y_tr)[0].item()
        val_loss = forward(p, x_val, y_val)[0].item()
        val_acc = accuracy(p, x_val, y_val)
        history.append((train_loss, val_loss, val_acc))
        print(f"epoch {epoch}/{epochs}  train loss {train_loss:.4f}  val loss "
              f"{val_loss:.4f}  val acc {val_acc:.3f}", flush=True)
    test_acc = accuracy(p, x_te, y_te)                    # the test split, once, at the end
    print(f"test accuracy after {len(history)} epochs: {test_acc:.3f}")
    check.less("training with manual gradients: train loss fell below ln(10) = chance level",
               history[-1][0], torch.log(torch.tensor(10.0)).item())

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [1, 1.2]})
    epochs_axis = range(1, len(history) + 1)
    axes[0].plot(epochs_axis, [h[0] for h in history], "o-", label="train loss")
    axes[0].plot(epochs_axis, [h[1] for h in history], "o-", label="validation loss")
    axes[0].set(xlabel="epoch", ylabel="cross-entropy", title=f"manual backprop: val acc "
                f"{history[-1][2]:.3f}, test acc {test_acc:.3f}")
    axes[0].legend()
    w1 = p["W1"][:32].cpu().reshape(32, 8, 8)              # (32 units, 8, 8) pixel weights
    tiles = w1.reshape(4, 8, 8, 8).permute(0, 2, 1, 3).reshape(32, 64)  # 4x8 grid of 8x8 tiles
    axes[1].imshow(tiles, cmap="RdBu_r", vmin=-w1.abs().max(), vmax=w1.abs().max())
    axes[1].set(title="first 32 hidden units: weights on the 8x8 pixels", xticks=[], yticks=[])
    plot.save(fig, run, "weights.png")
    return cli.finish(run, {"epochs": len(history), "train_loss": history[-1][0],
                            "val_loss": history[-1][1], "val_acc": history[-1][2],
                            "test_acc": test_acc}, answers={
        "initial_loss": (min(("0", "ln 10", "10"), key=lambda o: abs({"0": 0.0, "ln 10": float(torch.tensor(10.0).log()), "10": 10.0}[o]
                                                                  - initial_loss)),
                         f"loss of the untrained net on the first batch: {initial_loss:.3f} "
                         f"(ln 10 = 2.303)"),
        "active_relus": (min(("10", "50", "90"), key=lambda o: abs(float(o) - 100 * active)),
                         f"{active:.1%} of the hidden pre-activations z1 > 0 at initialisation, first batch"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 04.03`) before running it;
# `python -m dlcourse check 04.03` compares your answers with what the run measures.
# PREDICT initial_loss (0 / ln 10 / 10): small random weights, zero biases, 10 classes: about what cross-entropy before any training?
# ANSWER initial_loss:
# PREDICT active_relus (10 / 50 / 90): weights symmetric around 0, zero biases, pixels >= 0: what percentage of hidden ReLUs are active at the start?
# ANSWER active_relus:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
