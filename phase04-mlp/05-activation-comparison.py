"""05 - Comparing activations; dead ReLUs (phase 04, week 5)

Goal: train the same 3-hidden-layer MLP (same initial weights, same batches) on MNIST-1D with
      six activations, compare the training curves, and count ReLU units that have died.
Run:  python phase04-mlp/05-activation-comparison.py            (about 3 min on a shared 2-core CPU, the paper's table included)
      python phase04-mlp/05-activation-comparison.py --quick    (seconds, offline; the tests)
Expect: after 20 epochs (seed 0, full, CPU) ReLU reaches train loss 0.29 while Sigmoid is still
        at 1.72 (saturating units slow SGD down); the ReLU run at lr 0.5 ends with 106 dead
        units and train loss 2.53; dead units get exactly zero gradient; validation picks
        GELU (val acc 0.620), whose test accuracy, measured once, is 0.580.
        The MNIST-1D paper's table (Greydanus 2020), reproduced on its default split (4000 train
        / 1000 test) with its models and recipe (Adam 1e-2, batch 100, 6000 steps): test acc
        logistic 0.308 / MLP 0.678 / CNN 0.928 here vs the paper's 0.32 / 0.68 / 0.94 (within
        1.2 points; 8 s / 22 s / 108 s on a shared 2-core CPU). --quick checks only the
        ordering logistic < MLP < CNN after 120 steps on its small data (seeds 0-4).
Also:   load_mnist1d(), the train / validation / test loader that lessons 06-08 import.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

EPOCHS = 20          # full run ...
QUICK_EPOCHS = 4     # ... and --quick


def parse_args(argv=None):
    return cli.parser(__doc__, epochs=(EPOCHS, QUICK_EPOCHS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcourse import check, data, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks a headless backend

DEPTH = 3            # hidden layers: deep enough for saturation to compound
WIDTH = 128          # units per hidden layer
LR = 0.1             # SGD step size for every activation ...
HOT_LR = 0.5         # ... and a too-large one for an extra ReLU run, to kill units
MOMENTUM = 0.9       # SGD momentum
BATCH = 128          # examples per SGD step ...
QUICK_BATCH = 64     # ... --quick: smaller batches, so its few epochs still take enough steps
MNIST1D_SIZE = 4000  # signals made by mnist1d (it keeps 20% apart as its test split) ...
QUICK_MNIST1D_SIZE = 1000  # ... and --quick
VAL_FRACTION = 0.2   # share of mnist1d's training signals held out for validation
PAPER_ACC = {"logistic": 0.32, "MLP": 0.68, "CNN": 0.94}   # MNIST-1D paper (Greydanus 2020), test acc
PAPER_STEPS = 6000   # the paper's recipe: Adam, lr 1e-2, batches of 100, 6000 steps, no validation
QUICK_PAPER_STEPS = 120  # --quick: enough to order the three models (seeds 0-4), far from their scores
PAPER_LR = 1e-2      # Adam learning rate of the paper's training script
PAPER_BATCH = 100    # examples per step in the paper's script
PAPER_SEED = 42      # mnist1d's default data seed: 5000 signals -> the paper's 4000 train / 1000 test
ACTIVATIONS = {"ReLU": nn.ReLU, "LeakyReLU": nn.LeakyReLU, "Sigmoid": nn.Sigmoid,
               "Tanh": nn.Tanh, "GELU": nn.GELU, "SiLU": nn.SiLU}


class MLP(nn.Module):
    """40 -> WIDTH x DEPTH -> 10, with one activation class used after every hidden layer."""

    def __init__(self, act_cls, n_in=40, n_out=10):
        super().__init__()
        sizes = [n_in] + [WIDTH] * DEPTH
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.acts = nn.ModuleList(act_cls() for _ in range(DEPTH))
        self.head = nn.Linear(WIDTH, n_out)

    def forward(self, x):                      # x: (B, 40)
        for linear, act in zip(self.linears, self.acts):
            x = act(linear(x))                 # (B, WIDTH)
        return self.head(x)                    # (B, 10) logits


class DeadUnitCounter:
    """Forward hooks on the hidden Linear layers remember, per unit, whether its
    pre-activation z was ever > 0. A ReLU unit with z <= 0 on every input outputs 0 and
    passes back 0 gradient (relu'(z) = 0 there): its own weights never change again, and
    only a shift in earlier layers could revive it. It is dead. For the other activations
    the same count only means "always on the negative side"."""

    def __init__(self, model):
        self.model = model
        self.ever_positive = []

    def _hook(self, i):
        def hook(module, inputs, z):           # z: (B, WIDTH)
            # EXERCISE dead_unit_hook: per unit, was z > 0 for any row of this batch? OR it into self.ever_positive[i] (store it the first time)
            seen = (z > 0).any(dim=0)
            self.ever_positive[i] = seen if self.ever_positive[i] is None else \
                self.ever_positive[i] | seen
            # END EXERCISE
        return hook

    @torch.no_grad()
    def count(self, x, batch=512):
        """Dead units per hidden layer over all rows of x, fed in batches as in training.
        The hooks exist only during this pass, so training runs without them."""
        self.ever_positive = [None] * len(self.model.linears)
        handles = [layer.register_forward_hook(self._hook(i))
                   for i, layer in enumerate(self.model.linears)]
        try:
            for i in range(0, len(x), batch):
                self.model(x[i:i + batch])
        finally:
            for h in handles:
                h.remove()
        return [int((~seen).sum()) for seen in self.ever_positive]


@torch.no_grad()
def direct_dead_masks(model, x):
    """The same question without hooks: push all of x through the weights by hand and
    return, per hidden layer, a (WIDTH,) mask of the units with z <= 0 on every row."""
    masks, h = [], x
    for linear, act in zip(model.linears, model.acts):
        z = h @ linear.weight.T + linear.bias  # (N, WIDTH)
        masks.append((z <= 0).all(dim=0))
        h = act(z)
    return masks


def load_mnist1d(run, num_samples, note=""):
    """MNIST-1D on the run's device, split three ways: ((x, y), (x_val, y_val), (x_test, y_test)).

    mnist1d makes a train and a test split. Comparing settings (activations, dropout p,
    penalties) on the test split and then quoting its score would tune on the test set, so
    a seeded random VAL_FRACTION of the training signals becomes the validation split: pick
    and compare on it, and score the test split once, at the end. x: (N, 40) float32, y: (N,)
    int64 class labels 0-9.
    """
    d = data.mnist1d(num_samples=num_samples, seed=run.seed)
    n = len(d["x_train"])
    n_val = round(VAL_FRACTION * n)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(run.seed))
    val_idx, train_idx = order[:n_val], order[n_val:]
    as_t = lambda a, dt: torch.as_tensor(a, dtype=dt).to(run.device)  # noqa: E731
    x, y = as_t(d["x_train"], torch.float32), as_t(d["y_train"], torch.long)
    x_test, y_test = as_t(d["x_test"], torch.float32), as_t(d["y_test"], torch.long)
    data.announce(f"MNIST-1D (made by the mnist1d package; {n - n_val} train / {n_val} "
                  f"validation / {len(x_test)} test signals of length 40{note})",
                  kind="generated")
    train_idx, val_idx = train_idx.to(run.device), val_idx.to(run.device)
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx]), (x_test, y_test)


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    return (model(x).argmax(1) == y).float().mean().item()


def train_epoch(model, opt, x, y, batch, order_gen, penalty=None):
    """One epoch of minibatch training on tensors already on the device: a fresh seeded order
    each epoch, cross-entropy plus an optional penalty() term. Lessons 06-08 reuse it."""
    model.train()
    order = torch.randperm(len(x), generator=order_gen).to(x.device)
    for i in range(0, len(x), batch):
        idx = order[i:i + batch]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        if penalty is not None:
            loss = loss + penalty()
        opt.zero_grad()
        loss.backward()
        opt.step()


def train_one(run, act_cls, lr, epochs, batch, train_set, val_set):
    """Train from the seed's initial weights with the seed's batch order; return the model
    and per-epoch history (full-set train loss, validation accuracy, dead units per layer)."""
    (x, y), (x_val, y_val) = train_set, val_set
    torch.manual_seed(run.seed)                # same initial weights for every activation
    model = MLP(act_cls).to(run.device)
    counter = DeadUnitCounter(model)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM)
    order_gen = torch.Generator().manual_seed(run.seed)  # same batches for every activation
    hist = {"loss": [], "val_acc": [], "dead": []}

    def record():
        model.eval()
        with torch.no_grad():
            hist["loss"].append(F.cross_entropy(model(x), y).item())
        hist["val_acc"].append(accuracy(model, x_val, y_val))
        hist["dead"].append(counter.count(x))
        model.train()

    record()                                   # epoch 0: the untrained network
    for _ in range(epochs):
        train_epoch(model, opt, x, y, batch, order_gen)
        record()
    return model, hist


def paper_models():
    """The three models of the MNIST-1D paper's table (as in its repository's models.py)."""
    return {
        "logistic": nn.Linear(40, 10),
        "MLP": nn.Sequential(nn.Linear(40, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(),
                             nn.Linear(100, 10)),
        "CNN": nn.Sequential(
            nn.Unflatten(1, (1, 40)),                                           # (B, 1, 40)
            nn.Conv1d(1, 25, 5, stride=2, padding=1), nn.ReLU(),                # (B, 25, 19)
            nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.ReLU(),               # (B, 25, 10)
            nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.ReLU(),               # (B, 25, 5)
            nn.Flatten(), nn.Linear(125, 10)),                                  # (B, 10)
    }


def paper_table(run, train_set, test_set, steps):
    """Train the paper's three models with its recipe; return {name: (test acc, seconds)}.
    Nothing is selected here (one fixed recipe per model, as in the paper), so the test split
    is scored once per model, at the end, like the paper's table."""
    (x, y), (x_test, y_test) = train_set, test_set
    torch.manual_seed(run.seed)
    out = {}
    for name, model in paper_models().items():
        start = time.perf_counter()
        model = model.to(run.device)
        opt = torch.optim.Adam(model.parameters(), lr=PAPER_LR)
        gen = torch.Generator().manual_seed(run.seed)      # the same batches for all three
        model.train()
        for _ in range(steps):
            idx = torch.randint(len(x), (PAPER_BATCH,), generator=gen).to(x.device)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        out[name] = (accuracy(model, x_test, y_test), time.perf_counter() - start)
    return out


def main(args) -> dict:
    run = cli.start(args, __file__)
    # Float sums on a CPU are split between threads, and the split changes the rounding;
    # SGD amplifies a 1e-7 difference into a different second digit after a few epochs.
    # One thread makes the seeded numbers the same on a 2-core laptop and a 64-core server
    # (and costs these small matmuls little).
    torch.set_num_threads(1)
    epochs = run.epochs
    batch, size = (QUICK_BATCH, QUICK_MNIST1D_SIZE) if run.quick else (BATCH, MNIST1D_SIZE)
    train_set, val_set, test_set = load_mnist1d(run, size)
    x, y = train_set

    runs = {name: (cls, LR) for name, cls in ACTIVATIONS.items()}
    runs[f"ReLU, lr {HOT_LR}"] = (nn.ReLU, HOT_LR)
    results = {}
    print(f"{'run':14s} {'loss start':>10s} {'loss end':>9s} {'val acc':>9s}  dead per layer")
    for name, (cls, lr) in runs.items():
        model, hist = train_one(run, cls, lr, epochs, batch, train_set, val_set)
        results[name] = (model, hist)
        print(f"{name:14s} {hist['loss'][0]:10.3f} {hist['loss'][-1]:9.3f} "
              f"{hist['val_acc'][-1]:9.3f}  {hist['dead'][0]} -> {hist['dead'][-1]}", flush=True)

    # ln(10) is the loss of guessing uniformly over 10 classes: learning means going below it.
    # Sigmoid is the exception this lesson shows: its units saturate (sigma' <= 1/4 shrinks
    # the gradient at every layer), so with the same SGD it sits near ln(10) far longer.
    final = {name: results[name][1]["loss"][-1] for name in ACTIVATIONS}
    for name in ACTIVATIONS:
        if name != "Sigmoid":
            check.less(f"{name}: train loss fell below ln(10) = uniform guessing", final[name],
                       math.log(10))
    slowest = max(final, key=final.get)
    check.equal("slowest to train (highest final loss) of the six", slowest, "Sigmoid")

    # The hook-based counter and the by-hand count must agree, layer by layer, for every run.
    hooks = {n: h["dead"][-1] for n, (_, h) in results.items()}
    masks = {n: direct_dead_masks(m, x) for n, (m, _) in results.items()}
    direct = {n: [int(m.sum()) for m in layer_masks] for n, layer_masks in masks.items()}
    check.equal("dead units: forward-hook counter vs direct count (all runs, all layers)",
                hooks, direct)

    # Too large a step pushes some biases/weights so far that z <= 0 for every input ...
    hot_name = f"ReLU, lr {HOT_LR}"
    hot_model, hot_hist = results[hot_name]
    check.greater(f"{hot_name}: some units died", sum(hot_hist["dead"][-1]), 0)
    # ... and a dead unit's incoming weights then get exactly zero gradient: it cannot recover.
    hot_model.zero_grad()
    F.cross_entropy(hot_model(x), y).backward()
    dead_grads = torch.cat([torch.cat([layer.weight.grad[mask].flatten(), layer.bias.grad[mask]])
                            for layer, mask in zip(hot_model.linears, masks[hot_name])])
    check.equal(f"{hot_name}: largest |gradient| into its {len(dead_grads)} dead-unit weights",
                dead_grads.abs().max().item(), 0.0)

    # Pick the activation on validation accuracy; the test split is scored once, for it alone.
    chosen = max(ACTIVATIONS, key=lambda n: results[n][1]["val_acc"][-1])
    test_acc = accuracy(results[chosen][0], *test_set)
    print(f"chosen on validation: {chosen} (val acc {results[chosen][1]['val_acc'][-1]:.3f}); "
          f"its test accuracy, measured once: {test_acc:.3f}")

    # Where do these models stand? The MNIST-1D paper's table, on its own split and recipe.
    if run.quick:          # quick: the lesson's small data set, a few hundred steps
        paper_train, paper_test, steps = (x, y), test_set, QUICK_PAPER_STEPS
    else:                  # full: mnist1d's defaults, i.e. the paper's 4000 / 1000 split
        d = data.mnist1d(num_samples=5000, seed=PAPER_SEED)
        as_t = lambda a, dt: torch.as_tensor(a, dtype=dt).to(run.device)  # noqa: E731
        paper_train = as_t(d["x_train"], torch.float32), as_t(d["y_train"], torch.long)
        paper_test = as_t(d["x_test"], torch.float32), as_t(d["y_test"], torch.long)
        data.announce(f"MNIST-1D, the paper's default split ({len(paper_train[0])} train / "
                      f"{len(paper_test[0])} test, data seed {PAPER_SEED})", kind="generated")
        steps = PAPER_STEPS
    table = paper_table(run, paper_train, paper_test, steps)
    print(f"MNIST-1D paper's table vs ours ({steps} Adam steps, batch {PAPER_BATCH}, "
          f"{run.device.type}):")
    for name, (acc, secs) in table.items():
        print(f"  {name:9s} paper {PAPER_ACC[name]:.2f}   ours {acc:.3f}   ({secs:.1f} s)")
    acc = {name: a for name, (a, _) in table.items()}
    # The ordering is what --quick can guard in seconds: a linear model cannot undo the
    # random shifts of the digits, an MLP partly can, a CNN's shared filters are made for it.
    check.greater("paper table: logistic test accuracy vs 1.5 x chance (0.1)", acc["logistic"], 0.15)
    check.less("paper table: logistic vs MLP test accuracy", acc["logistic"], acc["MLP"])
    check.less("paper table: logistic vs CNN test accuracy", acc["logistic"], acc["CNN"])
    check.less("paper table: MLP vs CNN test accuracy", acc["MLP"], acc["CNN"])

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    colour = dict(zip(results, plt.cm.tab10.colors))     # one colour per run in every panel
    for name, (_, hist) in results.items():
        style = ":" if name == hot_name else "-"
        axes[0].plot(hist["loss"], style, color=colour[name], label=name)
        axes[1].plot(hist["val_acc"], style, color=colour[name], label=name)
    axes[0].axhline(math.log(10), color="0.6", lw=0.8)
    axes[0].set(xlabel="epoch", ylabel="train cross-entropy", title="training loss "
                "(grey: ln 10, uniform guessing)")
    axes[1].set(xlabel="epoch", ylabel="validation accuracy", title="validation accuracy")
    axes[0].legend(fontsize=8)
    for name in ("ReLU", "LeakyReLU", hot_name):
        axes[2].plot([sum(d) for d in results[name][1]["dead"]], "o-", color=colour[name],
                     label=name)
    axes[2].set(xlabel="epoch", ylabel=f"units with z <= 0 on every input (of {WIDTH * DEPTH})",
                title="dead ReLUs (LeakyReLU: still get gradient)")
    axes[2].legend(fontsize=8)
    plot.save(fig, run, "activation_comparison.png")
    metrics = {"epochs": len(hot_hist["loss"]) - 1}          # history starts at epoch 0
    metrics.update({f"{n}_final_loss": h["loss"][-1] for n, (_, h) in results.items()})
    metrics.update({f"{n}_val_acc": h["val_acc"][-1] for n, (_, h) in results.items()})
    metrics.update({"chosen_on_val": chosen, "chosen_test_acc": test_acc,
                    "hot_relu_dead_units": sum(hot_hist["dead"][-1]),
                    **{f"paper_{n}_test_acc": a for n, a in acc.items()}})
    best_paper = max(acc, key=acc.get)
    return cli.finish(run, metrics, answers={
        "slowest": (slowest.lower() if slowest.lower() in ("relu", "tanh", "sigmoid", "gelu") else "other",
                    "final train loss: " + ", ".join(f"{n} {v:.3f}" for n, v in final.items())
                    + " (activation_comparison.png, left)"),
        "best_paper_model": (best_paper.lower(), "test accuracy with the paper's recipe: " + ", ".join(
            f"{n} {a:.3f}" for n, a in acc.items()) + f" ({steps} Adam steps)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 04.05`) before running it;
# `python -m dlcourse check 04.05` compares your answers with what the run measures.
# PREDICT slowest (relu / tanh / sigmoid / gelu): same depth-3 MLP, same SGD: which activation ends with the highest training loss?
# ANSWER slowest:
# PREDICT best_paper_model (logistic / mlp / cnn): on MNIST-1D (shifted, scaled 1-D digits), which model scores best on the test split?
# ANSWER best_paper_model:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
