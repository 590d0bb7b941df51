"""The learner's progress record: which lessons finished with all their checks passing.

One JSON file, $DLCOURSE_PROGRESS or `progress/progress.json` in the course folder
(ignored by git; `dlcourse progress --markdown` writes a committable checklist instead).
Writes are atomic (a temporary file, then a rename), so a crash never leaves half a file.
A file that cannot be read is reported and kept aside as `*.corrupt-<time>`, never lost.
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


def atomic_write_text(target, text):
    """Write `text` to `target` so that readers see the old file or the new one, never half."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load():
    """{'runs': {lesson_id: {...}}}. A corrupt file is moved aside and reported."""
    p = path()
    if not p.exists():
        return {"runs": {}}
    try:
        record = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or not isinstance(record.get("runs"), dict):
            raise ValueError("not a progress record")
        return record
    except (ValueError, UnicodeDecodeError) as err:
        aside = p.with_name(f"{p.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(p, aside)
        print(f"progress: {p} could not be read ({err.__class__.__name__}); kept it as "
              f"{aside.name} and started a fresh record")
        return {"runs": {}}


def record(lesson_id, quick, checks, seconds, metrics=None):
    """Add one finished run. Full runs mark a lesson done; --quick runs are kept as 'tried'."""
    data = load()
    entry = data["runs"].setdefault(lesson_id, {"full": None, "quick": None})
    numbers = {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float, str))}
    entry["quick" if quick else "full"] = {
        "when": time.strftime("%Y-%m-%d %H:%M"), "checks": checks,
        "seconds": round(seconds, 1), "metrics": numbers}
    atomic_write_text(path(), json.dumps(data, indent=2, sort_keys=True) + "\n")
    return entry


def status(lesson_id, data=None):
    """'done' (a full run passed its checks), 'tried' (only --quick) or 'todo'."""
    data = data if data is not None else load()
    entry = data["runs"].get(lesson_id) or {}
    if entry.get("full"):
        return "done"
    return "tried" if entry.get("quick") else "todo"
