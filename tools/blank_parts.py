"""Blank each exercise part of a lesson in turn and run the lesson with --quick: each blank
must fail, reported against its own part (the learner's starting point never passes).

    python tools/blank_parts.py 02.03            # one line per part; JSON with --json
    python tools/blank_parts.py 02.01 02.02 ...  # several lessons: torch is imported once

Starting Python and importing torch (or transformers) costs seconds, and a lesson may have
several parts, so on systems with fork() the lesson's imports run once, here, and each blank
copy runs in a forked child that inherits them. Elsewhere each copy runs in its own process
(dlcourse.exercises.run_source). With several lessons, the common imports (torch, numpy,
matplotlib) run once and each lesson is probed in a child of its own, so one lesson's imports
and globals never leak into the next. The exit status is 0 when every blank part fails as it
should.
"""
import argparse
import io
import json
import os
import runpy
import sys
import tempfile
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["DLCOURSE_OFFLINE"] = "1"
from dlcourse import exercises, lessons, syllabus  # noqa: E402


def _forked_run(lines, scratch, name):
    """Like exercises.run_source, but in a child forked from this (already importing) process."""
    scratch = Path(scratch)
    script = scratch / f"{name}.py"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out_file, err_file = scratch / f"{name}.stdout", scratch / f"{name}.stderr"
    pid = os.fork()
    if pid == 0:   # the child: run the blank copy as __main__, exit with its status
        code = 1
        try:
            with open(out_file, "w") as out, open(err_file, "w") as err:
                sys.stdout, sys.stderr = out, err
                os.environ["DLCOURSE_PROGRESS"] = str(scratch / "progress.json")
                sys.argv = [str(script), "--quick", "--offline", "--out", str(scratch / f"{name}-out")]
                try:
                    runpy.run_path(str(script), run_name="__main__")
                    code = 0
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                except BaseException:
                    traceback.print_exc()
                    code = 1
                sys.stdout.flush()
                sys.stderr.flush()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return code, out_file.read_text(), err_file.read_text()


def probe(lesson_id):
    """{part name: Outcome} for each part blanked alone."""
    lesson = syllabus.find(lesson_id)
    lines = exercises.original(lesson)
    parts = exercises.parts(lines, lesson.path)
    fork = hasattr(os, "fork")
    if fork:
        saved = sys.stdout
        sys.stdout = io.StringIO()      # the lesson's import-time output, if any, is not ours
        try:
            lessons.load(lesson.id)     # its imports (and the lessons it loads) run once, here
        finally:
            sys.stdout = saved
    results = {}
    with tempfile.TemporaryDirectory(prefix=f"blank-{lesson.id}-") as tmp:
        for part in parts:
            blank = exercises.blank(lines, lesson.id, only=part.name)
            if fork:
                code, out, err = _forked_run(blank, tmp, f"blank-{part.name}")
            else:
                code, out, err, _ = exercises.run_source(blank, tmp, f"blank-{part.name}")
            results[part.name] = exercises.outcome(code, out, err, part.name, lesson.id)
    return results


def probe_many(lesson_ids):
    """{lesson id: {part name: Outcome as a dict}}; each lesson probed in its own child."""
    if not hasattr(os, "fork") or len(lesson_ids) == 1:
        return {i: {k: vars(v) for k, v in probe(i).items()} for i in lesson_ids}
    import matplotlib  # noqa: F401  (the imports every lesson shares, once)
    import numpy  # noqa: F401
    import torch  # noqa: F401
    from dlcourse import check, data, plot  # noqa: F401
    found = {}
    with tempfile.TemporaryDirectory(prefix="blank-many-") as tmp:
        for lesson_id in lesson_ids:
            result = Path(tmp) / f"{lesson_id}.json"
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    outcomes = probe(lesson_id)
                    result.write_text(json.dumps({k: vars(v) for k, v in outcomes.items()}))
                    code = 0
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
            os.waitpid(pid, 0)
            found[lesson_id] = json.loads(result.read_text()) if result.exists() else \
                {"(probe)": {"status": "error", "detail": "the probe itself failed", "checks": 0}}
    return found


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("lessons", nargs="+")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    results = probe_many(args.lessons)
    if args.json:
        print(json.dumps(results))
    else:
        for lesson_id, parts in results.items():
            for name, o in parts.items():
                print(f"{'ok ' if o['status'] == 'not written' else 'BAD'} {lesson_id} part {name}: "
                      f"{o['status']} {o['detail']}")
    return 0 if all(o["status"] == "not written" for parts in results.values()
                    for o in parts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
