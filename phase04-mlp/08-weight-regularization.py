"""08 - L1/L2 penalties and decoupled weight decay (phase 04, week 5)

Goal: add L1 and L2 penalties to the loss, prove L2 + SGD is torch's weight_decay, write AdamW
      by hand and show it is not Adam + L2; then compare them on an overfitting MLP.
Run:  python phase04-mlp/08-weight-regularization.py            (18 s on a busy 2-core CPU)
      python phase04-mlp/08-weight-regularization.py --quick    (seconds, offline; the tests)
Expect: SGD + L2 penalty == SGD(weight_decay) and scratch AdamW == optim.AdamW to ~1e-16, while
        Adam + L2 and AdamW end 0.37 apart; on 640 MNIST-1D training signals (seed 0, full,
        CPU) val loss is 3.02 without regularisation, 1.70 / 2.12 / 1.51 with L2 / AdamW / L1;
        validation picks L1 (test loss 1.36, acc 0.450, measured once), which leaves 86% of
        first-layer weights below 0.01 in size (none: 5%).
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

EPOCHS = 60          # full run ...
QUICK_EPOCHS = 10    # ... and --quick


def parse_args(argv=None):
    return cli.parser(__doc__, epochs=(EPOCHS, QUICK_EPOCHS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcourse import check, lessons, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks a headless backend

mnist1d = lessons.load("04.05")   # lesson 05: the MNIST-1D loader and the epoch loop

WIDTH = 256          # hidden units: enough to memorise 800 signals
LR = 1e-3            # Adam / AdamW learning rate
BATCH = 64           # examples per step
MNIST1D_SIZE = 1000  # signals made by mnist1d: a small training set, so that an MLP overfits
QUICK_MNIST1D_SIZE = 500  # --quick
L2 = 1e-2            # lambda of the penalty (lambda/2) sum w^2
L1 = 1e-3            # lambda of the penalty lambda sum |w|
DECAY = 1.0          # AdamW's decoupled decay: w <- w (1 - LR * DECAY) every step
SMALL = 1e-2         # a weight counts as "near zero" below this size
PARITY_STEPS = 20    # optimiser steps in the equivalence checks


def l2_penalty(params, lam):
    """(lambda/2) sum w^2: its gradient is lambda * w, which pulls each weight towards 0."""
    # EXERCISE l2_penalty: (lambda / 2) times the sum of every parameter's squared entries
    return lam / 2 * sum(p.pow(2).sum() for p in params)
    # END EXERCISE


def l1_penalty(params, lam):
    """lambda sum |w|: its gradient is lambda * sign(w), the same push for big and small
    weights, so small ones reach (and hover around) 0: a sparse network."""
    # EXERCISE l1_penalty: lambda times the sum of every parameter's absolute entries
    return lam * sum(p.abs().sum() for p in params)
    # END EXERCISE


def adamw_step(params, state, lr, decay, betas=(0.9, 0.999), eps=1e-8):
    """AdamW (Loshchilov & Hutter): shrink w directly, then the ordinary Adam step.
    In Adam + L2 the term lambda*w goes through the gradient and is divided by sqrt(v), so
    weights with large gradients are barely decayed; AdamW decays all at rate lr*decay."""
    # EXERCISE adamw_step: t += 1; per parameter: p *= 1 - lr decay, then the Adam moments of p.grad, bias-corrected, and p -= lr m_hat / (sqrt(v_hat) + eps)
    state["t"] = state.get("t", 0) + 1
    t, (b1, b2) = state["t"], betas
    with torch.no_grad():
        for i, p in enumerate(params):
            m, v = state.setdefault(i, (torch.zeros_like(p), torch.zeros_like(p)))
            p.mul_(1 - lr * decay)                         # decoupled weight decay
            m.mul_(b1).add_(p.grad, alpha=1 - b1)          # first moment (momentum)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)  # second moment
            m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)  # bias correction
            p.sub_(lr * m_hat / (v_hat.sqrt() + eps))
    # END EXERCISE


def tiny_problem():
    """A small float64 regression net and data for the optimiser identities (CPU)."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(64, 5, generator=g, dtype=torch.float64)
    y = torch.randn(64, 1, generator=g, dtype=torch.float64)
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1)).double()
    return net, x, y


def run_steps(make_opt, penalty=None, scratch_adamw=None):
    """PARITY_STEPS full-batch steps from the same start; returns all parameters flattened."""
    net, x, y = tiny_problem()
    params = list(net.parameters())
    opt = make_opt(params) if make_opt else None
    state = {}
    for _ in range(PARITY_STEPS):
        loss = F.mse_loss(net(x), y)
        if penalty is not None:
            loss = loss + penalty(params)
        for p in params:
            p.grad = None
        loss.backward()
        if scratch_adamw is not None:
            adamw_step(params, state, **scratch_adamw)
        else:
            opt.step()
    return torch.cat([p.detach().flatten() for p in params])


def check_penalties():
    """The penalties' values and gradients against torch's norms and the calculus."""
    net, _, _ = tiny_problem()
    weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
    lam = 0.3                                              # not 1: a lost lambda shows
    flat = torch.cat([w.flatten() for w in weights])
    for name, penalty, value, grad in (
            ("L2", l2_penalty, lam / 2 * torch.linalg.vector_norm(flat) ** 2, lam * flat),
            ("L1", l1_penalty, lam * torch.linalg.vector_norm(flat, ord=1), lam * flat.sign())):
        for w in weights:
            w.grad = None
        loss = penalty(weights, lam)
        loss.backward()
        check.close(f"{name} penalty vs lambda x torch.linalg.vector_norm", loss, value,
                    atol=1e-12)
        check.close(f"{name} penalty gradient (autograd) vs " +
                    ("lambda w" if name == "L2" else "lambda sign(w)"),
                    torch.cat([w.grad.flatten() for w in weights]), grad, atol=1e-12)


def check_optimisers():
    lam, lr = 0.1, 1e-2                                    # large enough to tell apart
    sgd_pen = run_steps(lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9),
                        penalty=lambda p: l2_penalty(p, lam))
    sgd_wd = run_steps(lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9, weight_decay=lam))
    check.close(f"SGD + L2 penalty in the loss vs SGD(weight_decay), {PARITY_STEPS} steps",
                sgd_pen, sgd_wd, atol=1e-12)
    adam_pen = run_steps(lambda p: torch.optim.Adam(p, lr=lr), penalty=lambda p: l2_penalty(p, lam))
    adam_wd = run_steps(lambda p: torch.optim.Adam(p, lr=lr, weight_decay=lam))
    check.close(f"Adam + L2 penalty vs Adam(weight_decay), {PARITY_STEPS} steps: torch's Adam "
                "decay IS L2", adam_pen, adam_wd, atol=1e-12)
    ours = run_steps(None, scratch_adamw={"lr": lr, "decay": lam})
    ref = run_steps(lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=lam))
    check.close(f"scratch AdamW vs optim.AdamW, {PARITY_STEPS} steps", ours, ref, atol=1e-12)
    gap = (ref - adam_wd).abs().max().item()               # torch against torch: a demonstration
    check.greater("optim.AdamW vs optim.Adam + L2 after the same steps: max |diff| of parameters",
                  gap, 1e-3, demo=True)
    return gap


def make_optimizer(name, model):
    """Penalties and decay act on weight matrices only; biases stay free (common practice)."""
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    decay = {"AdamW": DECAY}.get(name, 0.0)
    groups = [{"params": weights, "weight_decay": decay}, {"params": biases, "weight_decay": 0.0}]
    opt = (torch.optim.AdamW if name == "AdamW" else torch.optim.Adam)(groups, lr=LR)
    penalty = {"L2 penalty": lambda: l2_penalty(weights, L2),
               "L1 penalty": lambda: l1_penalty(weights, L1)}.get(name, lambda: 0.0)
    return opt, penalty


def train(run, name, epochs, x, y, x_val, y_val):
    """Train from the seed's initial weights; return the model, its per-epoch history and
    its first-layer weights."""
    torch.manual_seed(run.seed)                            # same start for every setting
    model = nn.Sequential(nn.Linear(40, WIDTH), nn.ReLU(), nn.Linear(WIDTH, WIDTH), nn.ReLU(),
                          nn.Linear(WIDTH, 10)).to(run.device)
    opt, penalty = make_optimizer(name, model)
    order_gen = torch.Generator().manual_seed(run.seed)
    hist = {"train_loss": [], "val_loss": [], "val_acc": []}
    for _ in range(epochs):
        mnist1d.train_epoch(model, opt, x, y, BATCH, order_gen, penalty)
        with torch.no_grad():                              # data loss only, no penalty
            hist["train_loss"].append(F.cross_entropy(model(x), y).item())
            logits = model(x_val)
            hist["val_loss"].append(F.cross_entropy(logits, y_val).item())
            hist["val_acc"].append((logits.argmax(1) == y_val).float().mean().item())
    first = model[0].weight.detach().cpu().flatten()       # (WIDTH * 40,) first-layer weights
    return model, hist, first


def main(args) -> dict:
    run = cli.start(args, __file__)
    torch.set_num_threads(1)  # same numbers whatever the core count (see lesson 05)
    epochs = run.epochs
    check_penalties()
    adamw_gap = check_optimisers()

    (x, y), (x_val, y_val), (x_test, y_test) = mnist1d.load_mnist1d(
        run, QUICK_MNIST1D_SIZE if run.quick else MNIST1D_SIZE,
        note="; a small training set, so that an MLP overfits")
    results = {}
    for name in ("none", "L2 penalty", "AdamW", "L1 penalty"):
        model, hist, first = train(run, name, epochs, x, y, x_val, y_val)
        small = (first.abs() < SMALL).float().mean().item()
        results[name] = {"model": model, "hist": hist, "weights": first, "small": small}
        print(f"{name:11s} train loss {hist['train_loss'][-1]:.3f}  val loss "
              f"{hist['val_loss'][-1]:.3f}  val acc {hist['val_acc'][-1]:.3f}  "
              f"first-layer |w| < {SMALL}: {small:.1%}", flush=True)
    for name in ("none", "L2 penalty", "AdamW"):
        check.greater(f"near-zero first-layer weights: L1 penalty vs {name}",
                      results["L1 penalty"]["small"], results[name]["small"])
    if run.quick:   # regularisation pays off once the plain net overfits, which takes epochs
        print("(--quick trains too briefly to overfit: the val-loss comparison runs in full mode)")
    else:
        check.less("final val loss: L2 penalty vs no regularisation",
                   results["L2 penalty"]["hist"]["val_loss"][-1],
                   results["none"]["hist"]["val_loss"][-1])
    # Pick the regulariser on validation loss; score the test split once, for it alone.
    chosen = min(results, key=lambda n: results[n]["hist"]["val_loss"][-1])
    with torch.no_grad():
        logits = results[chosen]["model"](x_test)
        test_loss = F.cross_entropy(logits, y_test).item()
        test_acc = (logits.argmax(1) == y_test).float().mean().item()
    print(f"chosen on validation: {chosen}; its test loss {test_loss:.3f}, test acc "
          f"{test_acc:.3f} (measured once)")

    fig, axes = plt.subplots(1, 2, figsize=(14, 4.8))
    colour = dict(zip(results, ("tab:red", "tab:blue", "tab:green", "tab:purple")))
    for name, r in results.items():
        axes[0].plot(r["hist"]["train_loss"], "--", color=colour[name])
        axes[0].plot(r["hist"]["val_loss"], "-", color=colour[name], label=name)
        axes[1].hist(r["weights"].numpy(), bins=120, range=(-0.4, 0.4), histtype="step",
                     lw=1.5, color=colour[name], label=f"{name} ({r['small']:.0%} near 0)")
    axes[0].set(xlabel="epoch", ylabel="cross-entropy",
                title="train (dashed) vs validation (solid)")
    axes[0].legend()
    axes[1].set(xlabel="first-layer weight", ylabel="count", yscale="log",
                title="L1 piles weights up at zero; L2 and decay only shrink them")
    axes[1].legend(fontsize=8)
    plot.save(fig, run, "regularization.png")
    metrics = {"epochs": len(results["none"]["hist"]["val_loss"])}
    metrics.update({f"val_loss_{n.split()[0]}": r["hist"]["val_loss"][-1]
                    for n, r in results.items()})
    metrics.update({f"near_zero_{n.split()[0]}": r["small"] for n, r in results.items()})
    metrics.update({"chosen_on_val": chosen, "test_loss": test_loss, "test_acc": test_acc})
    sparsest = max(results, key=lambda n: results[n]["small"])
    return cli.finish(run, metrics, answers={
        "adamw_is_l2": ("yes" if adamw_gap == 0 else "no", f"largest |parameter difference| "
                        f"optim.AdamW vs optim.Adam(weight_decay) after {PARITY_STEPS} steps: {adamw_gap:.3g}"),
        "sparsest": ({"L1 penalty": "l1", "L2 penalty": "l2", "AdamW": "adamw"}.get(sparsest, sparsest),
                     "first-layer weights below 0.01: " + ", ".join(f"{n} {r['small']:.1%}" for n, r in
                                                                   results.items()) + " (regularization.png, right)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 04.08`) before running it;
# `python -m dlcourse check 04.08` compares your answers with what the run measures.
# PREDICT adamw_is_l2 (yes / no): with the same lambda and steps, does AdamW end at the same parameters as Adam(weight_decay)?
# ANSWER adamw_is_l2:
# PREDICT sparsest (l2 / adamw / l1): which regulariser leaves the most first-layer weights near zero?
# ANSWER sparsest:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
