"""09 - The training loop, by hand and shared (phase 03, week 4)

Goal: write a complete train/validate loop line by line for a small 1-D CNN on MNIST-1D, keep the
      weights of the epoch with the best validation loss, and score that model on the test set
      once, at the end; then run the same training through the course's shared loop
      (dlcourse.train.fit) and show that both end with bit-identical weights and the same pick.
Run:  python phase03-pytorch/09-training-loop.py            (about 30 s on a 2-core CPU, imports included)
      python phase03-pytorch/09-training-loop.py --quick    (seconds, offline, used by the tests)
Expect: (seed 0, full, CPU) lowest validation loss 0.374 at epoch 10 of 10 (val acc 0.873); the
        test set, touched once, gives test accuracy 0.851; "[check] hand loop vs train.fit: final weights:
        max |diff| 0 <= 0" and the same for the picked epoch's weights; training_curves.png shows
        both runs as one and marks the picked epoch.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

EPOCHS_FULL = 10      # full run (--epochs)
EPOCHS_QUICK = 2      # --quick


def parse_args(argv=None):
    return cli.parser(__doc__, epochs=(EPOCHS_FULL, EPOCHS_QUICK)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import copy
import math
import time

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from dlcourse import check, data, plot, train
from dlcourse import device as devices
from dlcourse import seed as seeding
import matplotlib.pyplot as plt  # noqa: E402  (after dlcourse.plot, which picks a headless backend)

LR = 3e-3             # Adam learning rate
BATCH = 64            # examples per step
DROPOUT = 0.2         # dropout before the classifier: makes train() vs eval() matter
VAL_FRACTION = 0.2    # share of the training signals held out for validation (seeded split)


def make_model():
    """Two conv blocks and a linear classifier: (B, 1, 40) -> (B, 10)."""
    return nn.Sequential(
        nn.Conv1d(1, 32, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool1d(2),   # (B, 32, 20)
        nn.Conv1d(32, 64, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool1d(2),  # (B, 64, 10)
        nn.Flatten(),                                                             # (B, 640)
        nn.Dropout(DROPOUT),
        nn.Linear(64 * 10, 10),                                                   # (B, 10)
    )


def load(run):
    """Train / validation / test sets. Validation is split off the training signals (seeded):
    it chooses the epoch to keep. The test set is read once, after that choice (lesson 02.15)."""
    d = data.mnist1d(num_samples=500 if run.quick else 4000, seed=run.seed)
    as_set = lambda x, y: TensorDataset(torch.tensor(x, dtype=torch.float32)[:, None],  # noqa: E731
                                        torch.tensor(y, dtype=torch.long))             # (N, 1, 40), (N,)
    full_train = as_set(d["x_train"], d["y_train"])
    order = torch.randperm(len(full_train), generator=torch.Generator().manual_seed(run.seed))
    n_val = math.ceil(VAL_FRACTION * len(full_train))
    val_idx, train_idx = order[:n_val], order[n_val:]
    train_set = TensorDataset(*(t[train_idx] for t in full_train.tensors))
    val_set = TensorDataset(*(t[val_idx] for t in full_train.tensors))
    test_set = as_set(d["x_test"], d["y_test"])
    data.announce("MNIST-1D (made by the mnist1d package)", kind="generated",
                  detail=f"{len(train_set)} train / {len(val_set)} validation / {len(test_set)} test")
    return train_set, val_set, test_set


def loaders(run, train_set, val_set):
    """Fresh loaders whose shuffling starts from the same seed: same batches in both runs."""
    return (DataLoader(train_set, batch_size=BATCH, shuffle=True, generator=seeding.generator(run.seed)),
            DataLoader(val_set, batch_size=256))


# ---- the loop, written out --------------------------------------------------------------

def train_one_epoch(model, loader, loss_fn, optimizer, device):
    # EXERCISE train_one_epoch: train mode; per batch: to device, forward, loss, zero_grad, backward, step; return the example-weighted mean loss
    model.train()                                  # dropout on, batch-norm uses batch statistics
    loss_sum, seen = 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)          # (B, 1, 40), (B,)
        logits = model(x)                          # 1. forward: (B, 10)
        loss = loss_fn(logits, y)                  # 2. a scalar: mean loss over the batch
        optimizer.zero_grad(set_to_none=True)      # 3. forget the previous step's gradients
        loss.backward()                            # 4. backward: fill p.grad for every parameter
        optimizer.step()                           # 5. update: p <- p - lr * (Adam's step)
        # Keep the running sum on the device: loss.item() here would make the CPU wait for the
        # GPU at every step. detach(): the sum must not keep each step's graph alive.
        loss_sum += loss.detach() * len(y)
        seen += len(y)
    return loss_sum.item() / seen                  # mean over examples, not over batches
    # END EXERCISE


@torch.no_grad()                                   # no graph: less memory, faster
def validate(model, loader, loss_fn, device):
    # EXERCISE validate: eval mode; sum loss * batch size and the correct argmaxes over the loader; return (mean loss, accuracy)
    model.eval()                                   # dropout off: deterministic predictions
    loss_sum, correct, seen = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss_sum += loss_fn(logits, y).item() * len(y)
        correct += (logits.argmax(dim=1) == y).sum().item()
        seen += len(y)
    return loss_sum / seen, correct / seen
    # END EXERCISE


def pick_epoch(history):
    """The epoch to keep (1-based): the lowest validation loss so far, the earliest on a tie.
    Never the training loss, which keeps falling while the model starts to overfit."""
    # EXERCISE pick_epoch: the 1-based index of the smallest validation loss, the first one on a tie
    val = history["val_loss"]
    return min(range(len(val)), key=val.__getitem__) + 1
    # END EXERCISE


def hand_loop(run, train_set, val_set, epochs):
    print(f"\n-- the hand-written loop, {epochs} epochs")
    torch.manual_seed(run.seed)                    # same initial weights and dropout masks in both runs
    model = make_model().to(run.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    train_loader, val_loader = loaders(run, train_set, val_set)
    history = {"train_loss": [], "val_loss": [], "val_acc": []}
    best = {"val_loss": math.inf, "epoch": 0, "state": None}
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        train_loss = train_one_epoch(model, train_loader, loss_fn, optimizer, run.device)
        val_loss, val_acc = validate(model, val_loader, loss_fn, run.device)
        devices.synchronize(run.device)
        seconds = time.perf_counter() - start
        for key, value in zip(history, (train_loss, val_loss, val_acc)):
            history[key].append(value)
        if pick_epoch(history) == epoch:           # the model to keep: chosen on validation only
            # deepcopy: state_dict() returns the live tensors, which the next step overwrites
            best = {"val_loss": val_loss, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
        print(f"epoch {epoch}/{epochs}  train_loss {train_loss:.4f}  val_loss {val_loss:.4f}  "
              f"val_acc {val_acc:.4f}  ({seconds:.1f} s, {len(train_set) / seconds:.0f} examples/s)")
    print(f"  best val_loss {best['val_loss']:.4f} at epoch {best['epoch']}: those weights are kept")
    return model, history, best


def shared_loop(run, train_set, val_set, epochs):
    print(f"\n-- the same run through dlcourse.train.fit, {epochs} epochs")
    torch.manual_seed(run.seed)
    model = make_model().to(run.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    train_loader, val_loader = loaders(run, train_set, val_set)
    path = run.out_dir / "fit-checkpoint.pt"       # fit also writes fit-checkpoint-best.pt: the
    path.unlink(missing_ok=True)                   # epoch with the lowest validation loss
    history = train.fit(model, train_loader, nn.CrossEntropyLoss(), optimizer, device=run.device,
                        epochs=epochs, val_loader=val_loader, metrics={"acc": train.accuracy},
                        checkpoint=path)
    best = train.load_checkpoint(path.with_name(path.stem + "-best.pt"))
    return model, history, best


def figure(run, hand, shared, best_epoch):
    epochs = range(1, len(hand["train_loss"]) + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for key, style in (("train_loss", "-"), ("val_loss", "--")):
        ax1.plot(epochs, shared[key], style, lw=5, alpha=0.3, color="C0" if key == "train_loss" else "C1")
        ax1.plot(epochs, hand[key], style, marker=".", color="C0" if key == "train_loss" else "C1",
                 label=f"{key} (thick: train.fit)")
    ax1.axvline(best_epoch, color="grey", ls=":", label=f"kept: epoch {best_epoch} (lowest val_loss)")
    ax1.set(xlabel="epoch", ylabel="cross-entropy", title="Loss: hand loop over train.fit")
    ax1.legend()
    ax2.plot(epochs, shared["val_acc"], lw=5, alpha=0.3, color="C2", label="train.fit")
    ax2.plot(epochs, hand["val_acc"], marker=".", color="C2", label="hand loop")
    ax2.axvline(best_epoch, color="grey", ls=":")
    ax2.set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy")
    ax2.legend()
    plot.save(fig, run, "training_curves.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    # On a GPU some kernels (e.g. cuDNN's convolution backward) add partial sums in whatever order
    # threads finish, so two identical runs differ in the last bits, and Adam magnifies that.
    # For a bit-for-bit comparison, ask for deterministic kernels (a little slower).
    seeding.seed_everything(run.seed, deterministic=True)
    train_set, val_set, test_set = load(run)
    hand_model, hand, best = hand_loop(run, train_set, val_set, run.epochs)
    fit_model, shared, fit_best = shared_loop(run, train_set, val_set, run.epochs)
    print()
    gap = lambda a, b: max((a[k] - b[k]).abs().max().item() for k in a)  # noqa: E731
    # Same seed, same batches, same operations in the same order: the floats must be identical.
    check.close("hand loop vs train.fit: final weights", gap(hand_model.state_dict(), fit_model.state_dict()),
                0.0, atol=0)
    # The running loss is a float32 sum in both loops; 1e-6 allows for a different summation order.
    check.close("hand loop vs train.fit: per-epoch train loss", hand["train_loss"], shared["train_loss"],
                atol=1e-6)
    # Validation: both weight each batch by its size; equal up to float rounding.
    check.close("hand loop vs train.fit: per-epoch val loss", hand["val_loss"], shared["val_loss"], atol=1e-6)
    check.close("hand loop vs train.fit: per-epoch val accuracy", hand["val_acc"], shared["val_acc"],
                atol=1e-6)
    check.equal("hand loop vs train.fit: epoch kept (lowest val loss)", best["epoch"], fit_best["epoch"])
    # A short run's validation loss often falls every epoch, so the pick above is the last epoch
    # and would not notice a pick made on the wrong curve. A history where the curves disagree:
    overfit = {"train_loss": [2.0, 1.2, 0.8, 0.5, 0.3], "val_loss": [1.9, 1.3, 1.1, 1.1, 1.4]}
    check.equal("pick_epoch when validation turns up (train loss still falling)", pick_epoch(overfit), 3)
    weight_gap = gap(hand_model.state_dict(), fit_model.state_dict())
    check.close("hand loop vs train.fit: kept weights", gap(best["state"], fit_best["model"]), 0.0, atol=0)
    live = {p.data_ptr() for p in hand_model.state_dict().values()}
    check.true("kept weights are a copy, not the model's live tensors",
               not live & {t.data_ptr() for t in best["state"].values()}, "no shared storage")

    # The test set, once: the kept model, chosen without ever looking at it.
    hand_model.load_state_dict(best["state"])
    test_loss, test_acc = validate(hand_model, DataLoader(test_set, batch_size=256), nn.CrossEntropyLoss(),
                                   run.device)
    majority = torch.bincount(train_set.tensors[1]).argmax()            # most common training label
    baseline = (test_set.tensors[1] == majority).float().mean().item()
    print(f"test (once, epoch {best['epoch']}'s weights): loss {test_loss:.4f}, accuracy {test_acc:.4f} "
          f"(always guessing class {int(majority)}: {baseline:.4f})")
    check.greater("test accuracy beats always guessing the majority class", test_acc, baseline)
    figure(run, hand, shared, best["epoch"])
    return cli.finish(run, {"epochs": len(hand["train_loss"]), "best_epoch": best["epoch"],
                            "val_loss": best["val_loss"], "val_acc": hand["val_acc"][best["epoch"] - 1],
                            "test_loss": test_loss, "test_acc": test_acc}, answers={
        "bit_identical": ("yes" if weight_gap == 0 else "no", f"largest |weight difference| hand loop vs "
                          f"train.fit after {len(hand['train_loss'])} epochs: {weight_gap:g} "
                          "(training_curves.png: the curves overlap)"),
        "overfit_pick": (str(pick_epoch(overfit)), f"val_loss {overfit['val_loss']}: kept epoch "
                         f"{pick_epoch(overfit)} (the pick_epoch check)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 03.09`) before running it;
# `python -m dlcourse check 03.09` compares your answers with what the run measures.
# PREDICT bit_identical (yes / no): the hand loop and train.fit, same seed and same batches: are their final weights bit-for-bit equal?
# ANSWER bit_identical:
# PREDICT overfit_pick (3 / 4 / 5): train losses 2.0 1.2 0.8 0.5 0.3, validation losses 1.9 1.3 1.1 1.1 1.4: which epoch's weights are kept?
# ANSWER overfit_pick:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
