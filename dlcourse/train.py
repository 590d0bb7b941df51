"""The shared training loop, for lessons after the learner has written one by hand
(phase03-pytorch/09-training-loop.py writes the same loop out line by line).

    history = train.fit(model, train_loader, loss_fn, optimizer, device=run.device, epochs=5,
                        val_loader=val_loader, metrics={"acc": train.accuracy})

What it adds to the bare loop, each optional: a tqdm bar (quiet when not a terminal),
mixed precision (`amp=True`), gradient clipping, gradient accumulation, a learning-rate
scheduler, early stopping, and atomic checkpoints with exact resume. Under torchrun/DDP
it sets the sampler's epoch, averages metrics over processes and saves from rank 0 only.
benchmarks/fit_overhead.py measures its cost against a bare loop.
"""
import os
import pickle
import time
import zipfile
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from dlcourse import CourseError, shorten


def accuracy(logits, targets):
    """Fraction of rows whose arg-max class equals the target."""
    return (logits.argmax(dim=-1) == targets).float().mean().item()


def _is_main():
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _mean_over_processes(values, device):
    """Average a dict of floats over DDP processes (no-op in a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist()))


def _unwrap(model):
    return model.module if hasattr(model, "module") else model  # DDP / DataParallel


def _to(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch


def amp_dtype(device):
    """The autocast dtype mixed precision uses on this device: bf16 where supported
    (no loss scaling needed), else fp16 (needs a GradScaler)."""
    if device.type == "cuda":
        # including_emulation=False: a T4 or V100 "supports" bf16 only by slow emulation
        native = torch.cuda.is_bf16_supported(including_emulation=False)
        return torch.bfloat16 if native else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.bfloat16


@torch.no_grad()
def evaluate(model, loader, loss_fn, device, metrics=None, amp=False):
    """Mean loss and metrics over `loader`, weighted by batch size, in eval mode."""
    model.eval()
    totals, count = {"loss": 0.0}, 0
    metrics = metrics or {}
    for x, y in loader:
        x, y = _to(x, device), _to(y, device)
        with torch.autocast(device.type, dtype=amp_dtype(device), enabled=amp):
            out = model(x)
            loss = loss_fn(out, y)
        n = len(y)
        totals["loss"] += loss.item() * n
        for name, fn in metrics.items():
            totals[name] = totals.get(name, 0.0) + fn(out.float(), y) * n
        count += n
    if count == 0:
        raise CourseError("evaluate() got an empty data loader")
    return _mean_over_processes({k: v / count for k, v in totals.items()}, device)


def fit(model, train_loader, loss_fn, optimizer, *, device, epochs, val_loader=None,
        metrics=None, scheduler=None, scheduler_per_batch=False, amp=False,
        clip_grad_norm=None, accum_steps=1, patience=None, checkpoint=None, resume=False,
        progress=True, log=print):
    """Train `model` for `epochs`; return the history dict of per-epoch lists.

    scheduler_per_batch: call scheduler.step() after every optimiser step (OneCycle,
        warmup) instead of once per epoch.
    accum_steps: average gradients over this many batches before each optimiser step.
    patience: stop after this many epochs without a better validation loss.
    checkpoint: path; saved atomically after every epoch (and `<name>-best.pt` at the best
        validation loss). resume=True continues from it exactly where it stopped.
    """
    if epochs < 1:
        raise CourseError(f"epochs must be at least 1, got {epochs}")
    if accum_steps < 1:
        raise CourseError(f"accum_steps must be at least 1, got {accum_steps}")
    use_scaler = amp and device.type == "cuda" and amp_dtype(device) == torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    history = {"epoch": [], "train_loss": [], "seconds": [], "lr": []}
    state = {"best": float("inf"), "bad_epochs": 0, "start": 1}
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        if resume and checkpoint.exists():
            # to the CPU first: RNG states must be CPU tensors; the model and optimizer
            # copy their own tensors onto their parameters' device
            saved = load_checkpoint(checkpoint, map_location="cpu")
            _restore(saved, model, optimizer, scheduler, scaler, train_loader)
            history = saved["history"]
            state = {"best": saved["best"], "bad_epochs": saved["bad_epochs"],
                     "start": saved["epoch"] + 1}
            log(f"resumed from {checkpoint} after epoch {saved['epoch']}")

    for epoch in range(state["start"], epochs + 1):
        sampler = getattr(train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):  # DistributedSampler reshuffles per epoch
            sampler.set_epoch(epoch)
        model.train()
        started = time.perf_counter()
        loss_sum, seen = 0.0, 0
        optimizer.zero_grad(set_to_none=True)
        bar = tqdm(train_loader, desc=f"epoch {epoch}/{epochs}", leave=False,
                   disable=None if progress and _is_main() else True)
        n_batches = len(train_loader)
        for i, (x, y) in enumerate(bar, start=1):
            x, y = _to(x, device), _to(y, device)
            with torch.autocast(device.type, dtype=amp_dtype(device), enabled=amp):
                loss = loss_fn(model(x), y)
            # average over the batches of this accumulation group; the last group of an
            # epoch may be shorter (7 batches, accum 3: groups of 3, 3 and 1), and dividing
            # it by accum_steps would under-weight it
            group_start = (i - 1) // accum_steps * accum_steps + 1
            group_size = min(accum_steps, n_batches - group_start + 1)
            scaler.scale(loss / group_size).backward()
            if i % accum_steps == 0 or i == n_batches:
                if clip_grad_norm is not None:
                    scaler.unscale_(optimizer)  # clip the true gradients, not scaled ones
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                if scheduler is not None and scheduler_per_batch:
                    scheduler.step()
            loss_sum += loss.detach() * len(y)  # stays on the device: no sync per batch
            seen += len(y)
            if not bar.disable and (i % 20 == 0 or i == n_batches):
                bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}")
        if scheduler is not None and not scheduler_per_batch:
            scheduler.step()
        row = _mean_over_processes({"train_loss": float(loss_sum) / max(seen, 1)}, device)
        if val_loader is not None:
            row.update({f"val_{k}": v for k, v in
                        evaluate(model, val_loader, loss_fn, device, metrics, amp).items()})
        row["seconds"] = time.perf_counter() - started
        row["lr"] = optimizer.param_groups[0]["lr"]
        history["epoch"].append(epoch)
        for key, value in row.items():
            history.setdefault(key, []).append(value)
        shown = "  ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in {"seconds", "lr"})
        log(f"epoch {epoch}/{epochs}  {shown}  ({row['seconds']:.1f} s)")

        improved = row.get("val_loss", row["train_loss"]) < state["best"]
        if improved:
            state["best"], state["bad_epochs"] = row.get("val_loss", row["train_loss"]), 0
        else:
            state["bad_epochs"] += 1
        if checkpoint is not None and _is_main():
            saved = _snapshot(model, optimizer, scheduler, scaler, train_loader, epoch, history,
                              state)
            save_checkpoint(checkpoint, saved)
            if improved:
                save_checkpoint(checkpoint.with_name(checkpoint.stem + "-best.pt"), saved)
        if patience is not None and state["bad_epochs"] >= patience:
            log(f"early stopping: no better loss for {patience} epoch(s)")
            history["stopped_early"] = epoch
            break
    return history


def _snapshot(model, optimizer, scheduler, scaler, loader, epoch, history, state):
    generator = getattr(loader, "generator", None)
    return {
        "model": _unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict(), "epoch": epoch, "history": history,
        "best": state["best"], "bad_epochs": state["bad_epochs"],
        "rng_torch": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "rng_loader": generator.get_state() if generator is not None else None,
    }


def _restore(saved, model, optimizer, scheduler, scaler, loader):
    restore_model(_unwrap(model), saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    if scheduler is not None and saved.get("scheduler") is not None:
        scheduler.load_state_dict(saved["scheduler"])
    scaler.load_state_dict(saved["scaler"])
    torch.set_rng_state(saved["rng_torch"])
    if saved.get("rng_cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["rng_cuda"])
    generator = getattr(loader, "generator", None)
    if generator is not None and saved.get("rng_loader") is not None:
        generator.set_state(saved["rng_loader"])


def save_checkpoint(path, state):
    """torch.save to a temporary file, then rename: a crash mid-save never leaves a
    half-written checkpoint where the last good one was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path, map_location="cpu"):
    """Load with weights_only=True (no arbitrary code from the file); a missing, damaged or
    unsafe file is a one-line CourseError that says which."""
    path = Path(path)
    if path.is_dir():
        raise CourseError(f"checkpoint '{path}' is a folder, not a file: give the .pt file in it")
    if not path.is_file():
        raise CourseError(f"checkpoint '{path}' not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types here (IndexError, UnpicklingError...)
        size = path.stat().st_size
        if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
            raise CourseError(f"checkpoint '{path}' is not a file written by torch.save, or it "
                              f"was cut short ({size:,} bytes)") from None
        if isinstance(err, pickle.UnpicklingError) and "weights_only" in str(err):
            raise CourseError(f"checkpoint '{path}' holds Python objects, not only tensors and "
                              "plain containers, so weights_only=True refuses to load it (it "
                              "could run code); save state_dict()s instead") from None
        raise CourseError(f"checkpoint '{path}' is damaged ({size:,} bytes): "
                          f"{type(err).__name__}") from None


def restore_model(model, state_dict):
    """load_state_dict with a one-line CourseError when the shapes or keys do not match."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0]
        raise CourseError(f"checkpoint does not fit this model: {shorten(detail, 200)}") from None
    return model
