"""The common lesson flags and the start/finish of a lesson run.

Every lesson does the same three things:

    args = cli.parser(__doc__, epochs=(60, 20)).parse_args()   # --quick --device --seed
                                                # --out --offline, and --epochs 60 (20 quick)
    run = cli.start(args, __file__)             # seeds, picks the device, makes the output folder
    ...teach, check, plot...
    return cli.finish(run, metrics)             # prints the check count, saves metrics, records progress

and runs its main under `with cli.friendly_errors():` so that a learner's mistake
(bad flag, missing file) is one clear line and a non-zero exit, not a traceback.
"""
import argparse
import contextlib
import json
import os
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


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the lesson's docstring as written and shows every flag's default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or any(action.default is v for v in (None, False, argparse.SUPPRESS)):
            return text
        return text + " (default %(default)s)"


def _count_flag(p, flag, value, what):
    """--epochs / --steps: value is the full-run default, or (full, quick)."""
    full, quick = value if isinstance(value, tuple) else (value, value)
    p.add_argument(f"--{flag}", type=positive_int, default=None, metavar="N",
                   help=f"{what} (default {full}" + (f"; {quick} with --quick)" if quick != full
                                                      else ")"))
    p.set_defaults(**{f"_{flag}_defaults": (full, quick)})


def parser(doc=None, epochs=None, steps=None):
    """The argument parser with the course's common flags; a lesson may add its own.

    Only flags a lesson honours exist: pass `epochs=` if it trains for a number of epochs,
    `steps=` if it counts optimiser steps, each as the full default or (full, quick).
    `cli.start` puts the value to use in `run.epochs` / `run.steps`; the lesson reports
    the count it really ran in its metrics ('epochs' / 'steps'), which the tests compare.
    argparse rejects any other flag with a one-line message and exit 2.
    """
    description = (doc or "").strip() or None
    p = argparse.ArgumentParser(description=description, formatter_class=_HelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="tiny, offline, seconds: what the tests run")
    p.add_argument("--device", default=None,
                   help="auto (default), cpu, cuda, cuda:N, mps or npu; also DLCOURSE_DEVICE")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    if epochs is not None:
        _count_flag(p, "epochs", epochs, "training epochs")
    if steps is not None:
        _count_flag(p, "steps", steps, "optimiser steps")
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
    epochs: int = None     # --epochs, else the lesson's default for this mode (if it offers it)
    steps: int = None      # --steps, likewise
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
    counts = {}
    for flag in ("epochs", "steps"):
        defaults = getattr(args, f"_{flag}_defaults", None)
        given = getattr(args, flag, None)
        counts[flag] = given if given is not None else (
            defaults[1 if quick else 0] if defaults else None)
    run = Run(lesson_id, title, out, quick, offline, seed, device, **counts)
    parts = [f"== {lesson_id} {title}", f"seed {seed}",
             "quick" if quick else "full", "offline" if offline else "online allowed"]
    if device is not None:
        parts.insert(1, f"device {devices.describe(device)}")
    print(" | ".join(parts), flush=True)
    print(f"outputs: {out}", flush=True)
    return run


def process_seconds():
    """Wall seconds since this Python process started, imports included; None where the
    system does not say (the Linux /proc file; elsewhere cli.finish reports lesson time)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            started_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def finish(run, metrics=None, answers=None):
    """Print the checks and metrics, save metrics.json, record progress; return metrics.

    answers: what the run measured for the lesson's '# PREDICT name (options): ...' questions,
    {name: (answer, evidence)}; printed, and kept in metrics.json for `dlcourse check`."""
    metrics = dict(metrics or {})
    elapsed = time.perf_counter() - run.started
    metrics.setdefault("seconds", round(elapsed, 2))
    metrics["checks_passed"] = len(check.PASSED)
    print(check.summary(), flush=True)
    if not check.PASSED:
        raise CourseError("this lesson ran no self-check, so it cannot be marked done")
    stand_in_for = data.stand_ins()
    if stand_in_for:
        metrics["stand_in_for"] = ", ".join(stand_in_for)
    shown = {k: (float(f"{v:.4g}") if isinstance(v, float) else v)  # 4 significant digits:
             for k, v in metrics.items()}                             # 1.4e-06 stays visible
    print("metrics:", json.dumps(shown), flush=True)
    if answers:
        for name, (answer, evidence) in answers.items():
            print(f"[answer] {name}: {answer} - {evidence}", flush=True)
        metrics["answers"] = {name: {"answer": str(answer), "evidence": str(evidence)}
                              for name, (answer, evidence) in answers.items()}
    progress.atomic_write_text(run.out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    if syllabus.find(run.lesson_id):
        progress.record(run.lesson_id, quick=run.quick, checks=len(check.PASSED),
                        seconds=elapsed, metrics=metrics, stand_in_for=stand_in_for)
        if stand_in_for and not run.quick:
            print(f"progress: recorded as done on stand-in data (not {', '.join(stand_in_for)}); "
                  "a run on the real data set marks it done")
    total = process_seconds()
    print(f"done in {elapsed:.1f} s" + (f" ({total:.1f} s with Python start-up and imports)"
                                        if total is not None else ""), flush=True)
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

