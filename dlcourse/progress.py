"""The learner's progress record: which lessons finished with all their checks passing.

One JSON file, $DLCOURSE_PROGRESS or `progress/progress.json` in the course folder
(ignored by git; `dlcourse progress --markdown` writes a committable checklist instead).
Writes are atomic (a temporary file, then a rename), so a crash never leaves half a file.
A file that cannot be read, or holds JSON of the wrong shape, is reported and kept aside as
`*.corrupt-<time>` (never overwriting an earlier copy), and a fresh record is started.

A full run on an offline stand-in is kept apart from a full run on the real data set: the
first shows as "done on stand-in data", and only the second counts as done.
Exercises a learner passed with `dlcourse check` are kept under 'exercises'.
"""
import json
import os
import tempfile
import time
from pathlib import Path

from dlcourse import syllabus

REPO = syllabus.REPO  # the course folder


def path():
    return Path(os.environ.get("DLCOURSE_PROGRESS") or REPO / "progress" / "progress.json")


def _default_mode():
    """The mode a plain open() would give a new file (0644 under the usual umask 022);
    mkstemp's own 0600 would hide the learner's metrics and checklists from other users."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_write(target, payload, mode, **open_args):
    """Write to `target` so that readers see the old file or the new one, never half: a
    uniquely named temporary file beside it, fsync, then rename; removed if anything fails."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, _default_mode())
        with os.fdopen(fd, mode, **open_args) as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(target, text):
    """Write `text` (UTF-8, the platform's line endings) atomically: see _atomic_write."""
    return _atomic_write(target, text, "w", encoding="utf-8")


def atomic_write_bytes(target, data):
    """Write `data` byte for byte atomically (a data file placed by `data import`)."""
    return _atomic_write(target, data, "wb")


RUN_KINDS = ("full", "full_stand_in", "quick")


def _valid(record):
    """True when `record` has the shape this module writes: {'runs': {id: {kind: dict|None}}}."""
    if not isinstance(record, dict) or not isinstance(record.get("runs"), dict):
        return False
    if not isinstance(record.get("exercises", {}), dict):
        return False
    return all(isinstance(entry, dict) and all(entry.get(k) is None or isinstance(entry[k], dict)
                                               for k in RUN_KINDS)
               for entry in record["runs"].values())


def _set_aside(p):
    """Move an unreadable record to a new `*.corrupt-<time>[-N]` name; never overwrite one."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        aside = p.with_name(f"{p.name}.corrupt-{stamp}" + (f"-{n}" if n else ""))
        try:
            os.link(p, aside)   # fails if `aside` exists: an earlier copy is never replaced
        except FileExistsError:
            continue
        except OSError:         # no hard links here (some network drives): rename instead
            if aside.exists():
                continue
            os.replace(p, aside)
            return aside
        p.unlink()
        return aside
    raise OSError(f"too many kept-aside copies of {p}")


def load():
    """{'runs': {lesson_id: {...}}}. An unreadable or wrongly shaped file is kept aside."""
    p = path()
    if not p.exists():
        return {"runs": {}}
    try:
        record = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        reason = err.__class__.__name__
    else:
        if _valid(record):
            return record
        reason = "not a progress record"
    aside = _set_aside(p)
    print(f"progress: {p} could not be read ({reason}); kept it as "
          f"{aside.name} and started a fresh record")
    return {"runs": {}}


def record(lesson_id, quick, checks, seconds, metrics=None, stand_in_for=()):
    """Add one finished run. A full run on the real data marks a lesson done; a full run on
    a stand-in is kept apart ('stand-in'); --quick runs are kept as 'tried'."""
    data = load()
    entry = data["runs"].setdefault(lesson_id, {})
    numbers = {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float, str))}
    kind = "quick" if quick else "full_stand_in" if stand_in_for else "full"
    entry[kind] = {"when": time.strftime("%Y-%m-%d %H:%M"), "checks": checks,
                   "seconds": round(seconds, 1), "metrics": numbers}
    if stand_in_for:
        entry[kind]["stand_in_for"] = list(stand_in_for)
    for k in RUN_KINDS:
        entry.setdefault(k, None)
    atomic_write_text(path(), json.dumps(data, indent=2, sort_keys=True) + "\n")
    return entry


def record_exercise(lesson_id, parts, questions, right):
    """`dlcourse check` passed: every marked part passes its checks and every question is
    answered (`right` of them as the run measured)."""
    data = load()
    data.setdefault("exercises", {})[lesson_id] = {
        "when": time.strftime("%Y-%m-%d %H:%M"), "parts": parts, "questions": questions,
        "right": right}
    atomic_write_text(path(), json.dumps(data, indent=2, sort_keys=True) + "\n")
    return data["exercises"][lesson_id]


def exercise_passed(lesson_id, data=None):
    """The record of a passed exercise ({'parts', 'questions', 'right', 'when'}), or None."""
    data = data if data is not None else load()
    entry = data.get("exercises", {}).get(lesson_id)
    return entry if isinstance(entry, dict) else None


def status(lesson_id, data=None):
    """'done' (a full run on the real data passed its checks), 'stand-in' (a full run passed,
    but on offline stand-in data), 'tried' (only --quick) or 'todo'."""
    data = data if data is not None else load()
    entry = data["runs"].get(lesson_id) or {}
    if entry.get("full"):
        return "done"
    if entry.get("full_stand_in"):
        return "stand-in"
    return "tried" if entry.get("quick") else "todo"


def milestone_status(milestone, data=None):
    """'reached' (every run that verifies it is done on real data), 'stand-in' (all done, some
    only on stand-in data), 'open' (something still to do) or 'planned' (a phase not written)."""
    data = data if data is not None else load()
    ready = {lesson.id for lesson in syllabus.lessons()}
    if any(i not in ready for i in milestone.verified_by):
        return "planned"
    states = [status(i, data) for i in milestone.verified_by]
    if all(s == "done" for s in states):
        return "reached"
    return "stand-in" if all(s in ("done", "stand-in") for s in states) else "open"
