"""10 - Saving, loading and resuming (phase 03, week 4)

Goal: save weights (state_dict) and full checkpoints (weights + optimiser + RNG + epoch), resume
      an interrupted run so that it ends exactly where an uninterrupted one does, and see what
      safe loading refuses: foreign objects, corrupt files, checkpoints of another model.
Run:  python phase03-pytorch/10-model-save-load.py            (about 15 s on a 2-core CPU, imports included)
      python phase03-pytorch/10-model-save-load.py --quick    (seconds, offline, used by the tests)
      python phase03-pytorch/10-model-save-load.py --resume-from outputs/phase03-pytorch/10-model-save-load/checkpoint.pt --epochs 8
Expect: "[check] resumed run vs uninterrupted run: max |diff| 0"; a damaged file gives one line,
        e.g. "error: checkpoint '...' is not a file written by torch.save, or it was cut short
        (N bytes)" (exit 2 with --resume-from).
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

EPOCHS_FULL = 8       # total epochs (--epochs); the "crash" happens after STOP_AFTER
EPOCHS_QUICK = 3      # and in --quick


def parse_args(argv=None):
    p = cli.parser(__doc__, epochs=(EPOCHS_FULL, EPOCHS_QUICK))
    p.add_argument("--resume-from", metavar="PATH", default=None,
                   help="continue training from a checkpoint this lesson wrote (default: none, train from the start)")
    return p.parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from dlcourse import CourseError, check, data, lessons, train
from dlcourse import seed as seeding

loop = lessons.load("03.09")  # lesson 09's hand-written loop: train_one_epoch and validate

HIDDEN = 128          # hidden units of the MLP
DROPOUT = 0.2         # dropout: the run consumes random numbers, so RNG state must be saved
LR = 3e-3             # Adam learning rate
BATCH = 64            # examples per step
STOP_AFTER = 2        # epochs before the simulated interruption
KEYS = {"model", "optimizer", "epoch", "rng_torch", "rng_device", "rng_loader", "hidden", "seed", "history"}


@dataclass
class RunNotes:
    """A custom object. Pickling it into a checkpoint makes the file unloadable with
    weights_only=True: keep checkpoints to tensors, numbers, strings, lists and dicts."""
    author: str
    comment: str


def make_model(hidden=HIDDEN):
    return nn.Sequential(nn.Linear(40, hidden), nn.ReLU(), nn.Dropout(DROPOUT), nn.Linear(hidden, 10))


def load_data(seed, quick):
    """Training signals split into train and validation (seeded, as in lesson 09), so that a
    checkpoint's seed rebuilds the same split. The test set is not needed: nothing is scored."""
    d = data.mnist1d(num_samples=500 if quick else 4000, seed=seed)
    x = torch.tensor(d["x_train"], dtype=torch.float32)                     # (N, 40)
    y = torch.tensor(d["y_train"], dtype=torch.long)                        # (N,)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_val = math.ceil(loop.VAL_FRACTION * len(y))
    return TensorDataset(x[order[n_val:]], y[order[n_val:]]), TensorDataset(x[order[:n_val]], y[order[:n_val]])


def new_run(run, train_set, seed):
    """Model, optimiser and a loader with its own shuffling generator, from one seed."""
    torch.manual_seed(seed)
    model = make_model().to(run.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loader = DataLoader(train_set, batch_size=BATCH, shuffle=True, generator=seeding.generator(seed))
    return model, optimizer, loader


def train_epochs(run, model, optimizer, loader, val_set, first, last, history):
    """Lesson 09's loop, for epochs first..last (inclusive)."""
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(first, last + 1):
        loop.train_one_epoch(model, loader, loss_fn, optimizer, run.device)
        history["val_loss"].append(evaluate(run, model, val_set))
        print(f"  epoch {epoch}/{last}  val_loss {history['val_loss'][-1]:.4f}")
    return history


def evaluate(run, model, val_set):
    """Validation loss, with lesson 09's validate(). The loader gets a generator of its own:
    without one, every pass over a DataLoader draws a seed from torch's global generator, the
    one dropout uses, so validating before resuming would change the masks of the next epoch."""
    val_loader = DataLoader(val_set, batch_size=256, generator=torch.Generator())
    return loop.validate(model, val_loader, nn.CrossEntropyLoss(), run.device)[0]


def device_rng(device, state=None):
    """Get (or, given `state`, set) the random generator of a GPU: dropout on a GPU draws from
    the GPU's own generator, not the CPU's. The CPU has none besides torch's main one."""
    if device.type == "cuda":
        return torch.cuda.get_rng_state(device) if state is None else torch.cuda.set_rng_state(state, device)
    if device.type == "mps":
        return torch.mps.get_rng_state() if state is None else torch.mps.set_rng_state(state)
    return torch.empty(0, dtype=torch.uint8)


def snapshot(run, model, optimizer, loader, epoch, seed, history):
    """Everything the next epoch depends on. Leave one out and the resumed run drifts."""
    # EXERCISE snapshot: a dict with every key in KEYS: both state_dicts, the epoch done, the torch, device and loader generator states, hidden, seed, history
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
            "rng_torch": torch.get_rng_state(),              # dropout masks on the CPU
            "rng_device": device_rng(run.device),            # dropout masks on a GPU
            "rng_loader": loader.generator.get_state(),      # shuffling order
            "hidden": HIDDEN, "seed": seed, "history": history}
    # END EXERCISE


def read_checkpoint(path):
    """Load a checkpoint of this lesson; a missing, corrupt or foreign file is a one-line error."""
    # map_location="cpu": RNG states must stay CPU tensors; load_state_dict copies the weights
    # onto the model's device, and the optimiser moves its state next to its parameters.
    saved = train.load_checkpoint(path, map_location="cpu")
    if not isinstance(saved, dict) or not KEYS <= set(saved):
        missing = sorted(KEYS - set(saved)) if isinstance(saved, dict) else "everything"
        raise CourseError(f"'{path}' is not a checkpoint written by this lesson (missing: {missing})")
    if saved["hidden"] != HIDDEN:
        raise CourseError(f"'{path}' holds a model with {saved['hidden']} hidden units, this lesson "
                          f"builds {HIDDEN}")
    return saved


def resume(run, saved, train_set):
    """Rebuild model, optimiser, loader and RNG from a loaded checkpoint."""
    # EXERCISE resume: build a new run (other seed), then load weights, optimiser state, torch RNG (and the device's off the CPU) and the loader's generator state
    model, optimizer, loader = new_run(run, train_set, saved["seed"] + 999)  # other init: the file must win
    train.restore_model(model, saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    torch.set_rng_state(saved["rng_torch"])
    if run.device.type != "cpu":
        device_rng(run.device, saved["rng_device"])
    loader.generator.set_state(saved["rng_loader"])
    return model, optimizer, loader
    # END EXERCISE


def weights_gap(a, b):
    return max((p - q).abs().max().item() for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def state_dict_basics(run, train_set, val_set):
    print("\n-- weights only: state_dict")
    model, _, _ = new_run(run, train_set, run.seed)
    path = train.save_checkpoint(run.out_dir / "weights.pt", model.state_dict())
    weights_bytes = path.stat().st_size
    print(f"  {path.name}: {path.stat().st_size / 1024:.1f} KiB, keys {list(model.state_dict())}")
    fresh = train.restore_model(make_model().to(run.device), train.load_checkpoint(path, run.device))
    check.close("reloaded weights give the same eval loss", evaluate(run, fresh, val_set),
                evaluate(run, model, val_set), atol=0)
    return weights_bytes


def resume_exactly(run, train_set, val_set, epochs):
    print(f"\n-- uninterrupted: {epochs} epochs")
    model, optimizer, loader = new_run(run, train_set, run.seed)
    full = train_epochs(run, model, optimizer, loader, val_set, 1, epochs, {"val_loss": []})
    print(f"\n-- interrupted after {STOP_AFTER} epochs, checkpointed, resumed in a new model")
    m2, o2, l2 = new_run(run, train_set, run.seed)
    hist = train_epochs(run, m2, o2, l2, val_set, 1, STOP_AFTER, {"val_loss": []})
    path = train.save_checkpoint(run.out_dir / "checkpoint.pt", snapshot(run, m2, o2, l2, STOP_AFTER, run.seed, hist))
    print(f"  saved {path} ({path.stat().st_size / 1024:.1f} KiB: weights + 2 Adam moments + RNG)")
    del m2, o2, l2                                           # "the process died"
    saved = read_checkpoint(path)
    m3, o3, l3 = resume(run, saved, train_set)
    train_epochs(run, m3, o3, l3, val_set, saved["epoch"] + 1, epochs, saved["history"])
    check.close("resumed run vs uninterrupted run: final weights", weights_gap(m3, model), 0.0, atol=0)
    check.close("resumed run vs uninterrupted run: val losses", saved["history"]["val_loss"],
                full["val_loss"], atol=0)
    # What goes wrong when a piece is left out:
    gaps = {}
    for leave_out in ("optimizer", "rng_torch"):
        saved = read_checkpoint(path)
        m4, o4, l4 = resume(run, saved, train_set)
        if leave_out == "optimizer":
            o4 = torch.optim.Adam(m4.parameters(), lr=LR)    # Adam's moments start from zero again
        else:
            torch.manual_seed(12345)                         # other dropout masks (CPU and GPU)
        print(f"  resuming without '{leave_out}':")
        train_epochs(run, m4, o4, l4, val_set, saved["epoch"] + 1, epochs, {"val_loss": []})
        check.greater(f"without '{leave_out}' the weights differ from the uninterrupted run",
                      weights_gap(m4, model), 0.0)
        gaps[leave_out] = weights_gap(m4, model)
    return model, full, path.stat().st_size, gaps


def resume_with_fit(run, train_set, val_set, epochs):
    print("\n-- the same with dlcourse.train.fit(checkpoint=..., resume=True)")
    path = run.out_dir / "fit-checkpoint.pt"
    path.unlink(missing_ok=True)
    loss_fn = nn.CrossEntropyLoss()
    runs = {}
    for name, stops in (("uninterrupted", [epochs]), ("resumed", [STOP_AFTER, epochs])):
        model, optimizer, loader = new_run(run, train_set, run.seed)
        for stop in stops:                                   # 'resumed': fit twice, as after a crash
            if name == "resumed" and stop == epochs:
                model, optimizer, loader = new_run(run, train_set, run.seed + 999)
            train.fit(model, loader, loss_fn, optimizer, device=run.device, epochs=stop, progress=False,
                      checkpoint=path if name == "resumed" else None, resume=True)
        runs[name] = model
    check.close("fit: resumed vs uninterrupted final weights", weights_gap(runs["resumed"], runs["uninterrupted"]),
                0.0, atol=0)


def refusals(run):
    print("\n-- safe loading refuses bad files with one clear line")
    good = run.out_dir / "checkpoint.pt"
    notes = run.out_dir / "with-object.pt"
    torch.save({"model": make_model().state_dict(), "notes": RunNotes("me", "first try")}, notes)
    # torch.load unpickles; pickle can call any function while doing so. weights_only=True
    # (what load_checkpoint uses) allows plain data only and refuses the custom class.
    check.raises("a checkpoint holding a custom object (weights_only=True)", CourseError,
                 train.load_checkpoint, notes)
    corrupt = run.out_dir / "corrupt.pt"
    corrupt.write_bytes(good.read_bytes()[: good.stat().st_size // 2])   # a half-written file
    check.raises("a truncated checkpoint", CourseError, train.load_checkpoint, corrupt)
    check.raises("a missing checkpoint", CourseError, train.load_checkpoint, run.out_dir / "nope.pt")
    wider = make_model(hidden=2 * HIDDEN)
    state = train.load_checkpoint(good)["model"]
    check.raises("weights of a 128-unit model into a 256-unit one", CourseError,
                 train.restore_model, wider, state)


def resume_from_file(run, path, epochs):
    """--resume-from: continue a checkpoint written by this lesson."""
    saved = read_checkpoint(path)                            # missing/corrupt: one-line error, exit 2
    seed = saved["seed"]                                     # the data the checkpoint was trained on
    train_set, val_set = load_data(seed, run.quick)
    data.announce("MNIST-1D (made by the mnist1d package)", kind="generated", detail=f"seed {seed}")
    model, optimizer, loader = resume(run, saved, train_set)
    print(f"resumed {path} after epoch {saved['epoch']}")
    check.close("restored model reproduces the checkpoint's last val loss", evaluate(run, model, val_set),
                saved["history"]["val_loss"][-1], atol=1e-5)
    if epochs <= saved["epoch"]:
        print(f"  already trained for {saved['epoch']} epochs; pass --epochs N > {saved['epoch']} to go on")
        return {"epochs": saved["epoch"]}
    hist = train_epochs(run, model, optimizer, loader, val_set, saved["epoch"] + 1, epochs, saved["history"])
    out = train.save_checkpoint(run.out_dir / "checkpoint-resumed.pt",
                                snapshot(run, model, optimizer, loader, epochs, seed, hist))
    print(f"  saved {out}")
    return {"epochs": len(hist["val_loss"]), "val_loss": hist["val_loss"][-1]}


def main(args) -> dict:
    run = cli.start(args, __file__)
    # Deterministic kernels: on a GPU, "resumed == uninterrupted" to the last bit needs them.
    seeding.seed_everything(run.seed, deterministic=True)
    epochs = run.epochs
    if args.resume_from:
        return cli.finish(run, resume_from_file(run, args.resume_from, epochs))
    if epochs <= STOP_AFTER:
        raise CourseError(f"--epochs must be more than {STOP_AFTER} (the interruption happens after "
                          f"epoch {STOP_AFTER}), got {epochs}")
    train_set, val_set = load_data(run.seed, run.quick)
    data.announce("MNIST-1D (made by the mnist1d package)", kind="generated",
                  detail=f"{len(train_set)} train / {len(val_set)} validation signals")
    weights_bytes = state_dict_basics(run, train_set, val_set)
    _, full, checkpoint_bytes, gaps = resume_exactly(run, train_set, val_set, epochs)
    resume_with_fit(run, train_set, val_set, epochs)
    refusals(run)
    print(f"\ntry: python phase03-pytorch/10-model-save-load.py --resume-from {run.out_dir / 'checkpoint.pt'} "
          f"--epochs {epochs + 2}")
    ratio = checkpoint_bytes / weights_bytes
    return cli.finish(run, {"val_loss": full["val_loss"][-1], "epochs": len(full["val_loss"])}, answers={
        "checkpoint_size": (min(("1", "3", "10"), key=lambda o: abs(math.log(float(o) / ratio))),
                            f"checkpoint.pt {checkpoint_bytes / 1024:.1f} KiB vs weights.pt "
                            f"{weights_bytes / 1024:.1f} KiB: {ratio:.2f} x (the saved lines above)"),
        "without_rng": ("yes" if gaps["rng_torch"] == 0 else "no", f"largest |weight difference| "
                        f"from the uninterrupted run when resuming without 'rng_torch': "
                        f"{gaps['rng_torch']:.3g} (without 'optimizer': {gaps['optimizer']:.3g})"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 03.10`) before running it;
# `python -m dlcourse check 03.10` compares your answers with what the run measures.
# PREDICT checkpoint_size (1 / 3 / 10): a resumable Adam checkpoint is about how many times the size of the weights alone?
# ANSWER checkpoint_size:
# PREDICT without_rng (yes / no): resumed with everything but torch's RNG state, does the model still end with the uninterrupted run's exact weights?
# ANSWER without_rng:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
