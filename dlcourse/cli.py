"""The common lesson flags and the start/finish of a lesson run.

Every lesson does the same three things:

    args = cli.parser(__doc__).parse_args()     # --quick --device --seed --epochs --out --offline
    run = cli.start(args, __file__)             # seeds, picks the device, makes the output folder
    ...teach, check, plot...
    return cli.finish(run, metrics)             # prints the check count, saves metrics, records progress

and runs its main under `with cli.friendly_errors():` so that a learner's mistake
(bad flag, missing file) is one clear line and a non-zero exit, not a traceback.
"""
import argparse
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dlcourse import CourseError, check, data, progress, syllabus
from dlcourse import seed as seeding

REPO = syllabus.REPO


def positive_int(text):
    """argparse type: an integer >= 1 (epochs, steps)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def writable_dir(text):
    """argparse type: a folder we can create and write into."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"'{text}' exists and is not a folder")
    return path


def parser(doc=None, epochs=None):
    """The argument parser with the course's common flags; a lesson may add its own."""
    description = (doc or "").strip().splitlines()[0] if doc else None
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="tiny, offline, seconds: what the tests run")
    p.add_argument("--device", default=None,
                   help="auto (default), cpu, cuda, cuda:N or mps; also DLCOURSE_DEVICE")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--epochs", type=positive_int, default=epochs,
                   help="training epochs" + (f" (default {epochs})" if epochs else ""))
    p.add_argument("--out", type=writable_dir, default=None,
                   help="output folder (default outputs/<phase>/<lesson>/)")
    p.add_argument("--offline", action="store_true",
                   help="never touch the network (also DLCOURSE_OFFLINE=1)")
    return p


@dataclass
class Run:
    """What a lesson needs to know about this run."""
    lesson_id: str        # e.g. '01.03'
    title: str
    out_dir: Path         # figures, reports, metrics.json and checkpoints go here
    quick: bool
    offline: bool         # True: use only bundled or generated data
    seed: int
    device: object = None  # torch.device, or None for lessons that do not use torch
    started: float = field(default_factory=time.perf_counter)


def start(args, lesson_file, use_torch=True):
    """Seed, pick the device, make the output folder and print a one-line header."""
    lesson = syllabus.find_by_path(lesson_file)
    lesson_id = lesson.id if lesson else Path(lesson_file).stem
    title = lesson.title if lesson else Path(lesson_file).stem
    quick = bool(getattr(args, "quick", False))
    offline = data.offline_mode(getattr(args, "offline", False)) or quick
    out = getattr(args, "out", None)
    if out is None:
        out = REPO / "outputs" / Path(lesson_file).resolve().parent.name / Path(lesson_file).stem
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CourseError(f"cannot create output folder '{out}': {err.strerror}") from None
    seed = getattr(args, "seed", 0)
    seeding.seed_everything(seed, use_torch=use_torch)
    from dlcourse import device as devices
    requested = getattr(args, "device", None)
    if use_torch:
        device = devices.pick(requested)
    else:
        devices.validate(requested)  # a typo fails even where torch is unused
        device = None
    run = Run(lesson_id, title, out, quick, offline, seed, device)
    parts = [f"== {lesson_id} {title}", f"seed {seed}",
             "quick" if quick else "full", "offline" if offline else "online allowed"]
    if device is not None:
        parts.insert(1, f"device {devices.describe(device)}")
    print(" | ".join(parts), flush=True)
    print(f"outputs: {out}", flush=True)
    return run


def finish(run, metrics=None):
    """Print the checks and metrics, save metrics.json, record progress; return metrics."""
    metrics = dict(metrics or {})
    elapsed = time.perf_counter() - run.started
    metrics.setdefault("seconds", round(elapsed, 2))
    metrics["checks_passed"] = len(check.PASSED)
    print(check.summary(), flush=True)
    if not check.PASSED:
        raise CourseError("this lesson ran no self-check, so it cannot be marked done")
    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()}
    print("metrics:", json.dumps(shown), flush=True)
    progress.atomic_write_text(run.out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    if syllabus.find(run.lesson_id):
        progress.record(run.lesson_id, quick=run.quick, checks=len(check.PASSED),
                        seconds=elapsed, metrics=metrics)
    print(f"done in {elapsed:.1f} s", flush=True)
    return metrics


@contextlib.contextmanager
def friendly_errors():
    """Turn a learner-fixable error into one line and a non-zero exit.

    CourseError -> 'error: ...', exit 2.  CheckFailed -> 'CHECK FAILED: ...', exit 1.
    Ctrl-C -> exit 130. Anything else is a bug in the lesson: the traceback is kept.
    """
    try:
        yield
    except CourseError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    except check.CheckFailed as err:
        print(f"CHECK FAILED: {err}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        sys.exit(130)

