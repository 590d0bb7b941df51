"""Plant realistic mistakes in the lessons' from-scratch code and check that a self-check
catches each one (mutation testing of the self-checks).

    python tools/mutate.py                 # every mutant in tools/mutants/phaseNN.py
    python tools/mutate.py --phase 2       # one phase
    python tools/mutate.py --lesson 04.06  # one lesson
    python tools/mutate.py --list          # show the planted mistakes, run nothing

Each mutant is one edit of one lesson: `find` (text that occurs exactly once in the file)
becomes `replace`. Code a lesson loads from an earlier one is mutated where it lives and
caught where it is used: `edit="04.05"` edits lesson 04.05's file and runs `lesson`. The edit goes into a temporary copy of the course (the working tree is
never touched, so Ctrl-C or a crash cannot leave a mistake behind); the mutated lesson
runs there with --quick, offline, and the result is

    killed    a self-check failed (exit 1, "CHECK FAILED"): the checks caught the mistake
    crashed   it died another way (an exception, a timeout): not a realistic mutant, fix it
    SURVIVED  every check passed although the code is wrong: a check is missing or weak
    invalid   `find` does not occur exactly once: the list is out of date

The exit status is 0 only when every selected mutant is killed by a check.
"""
import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from dlcourse import syllabus  # noqa: E402  (after the path line, so it runs from a checkout)

MUTANT_DIR = Path(__file__).resolve().parent / "mutants"


def load_mutants():
    """Every mutant from tools/mutants/phaseNN.py, in course order, each a dict with
    lesson, find, replace, why (and its 'id': '<lesson>#<n>')."""
    found, counts = [], {}   # numbered per lesson across all files, so every id is unique
    for file in sorted(MUTANT_DIR.glob("phase*.py")):
        spec = importlib.util.spec_from_file_location(file.stem, file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for m in module.MUTANTS:
            counts[m["lesson"]] = counts.get(m["lesson"], 0) + 1
            found.append({**m, "id": f"{m['lesson']}#{counts[m['lesson']]}"})
    return found


def quiet_env(home, **extra):
    """Offline, headless, single-threaded, with a private progress file and data folder."""
    env = dict(os.environ)
    env.update({"DLCOURSE_OFFLINE": "1", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1",
                "DLCOURSE_PROGRESS": str(Path(home) / "progress.json"),
                "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"})
    env.setdefault("DLCOURSE_DATA", str(Path(tempfile.gettempdir()) / "dlcourse-tools-data"))
    env.pop("DLCOURSE_DEVICE", None)
    env.update(extra)
    return env


def copy_course(dest):
    """The parts of the course a lesson run needs: the package and the lesson folders."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "dlcourse", dest / "dlcourse", ignore=ignore)
    for phase in syllabus.PHASES:
        if (REPO / phase.folder).is_dir():
            shutil.copytree(REPO / phase.folder, dest / phase.folder, ignore=ignore)
    return dest


def run_lesson(root, lesson, args, home, timeout=300):
    """Run lesson.path under `root` (a course copy, or the course itself); CompletedProcess.
    PYTHONPATH puts root's own dlcourse first, so lessons.load() reads root's lessons."""
    env = quiet_env(home, PYTHONPATH=str(root))
    return subprocess.run([sys.executable, str(Path(root) / lesson.path), *args], cwd=root,
                          env=env, capture_output=True, text=True, timeout=timeout)


def edited_lesson(mutant):
    """The lesson whose file the mutant edits: `edit` when given, else the lesson it runs."""
    return syllabus.find(mutant.get("edit", mutant["lesson"]))


def apply(mutant, root):
    """Edit the copy under `root`; return an error string when `find` is not there once."""
    lesson = edited_lesson(mutant)
    if lesson is None or syllabus.find(mutant["lesson"]) is None:
        return f"unknown lesson {mutant.get('edit', mutant['lesson'])}"
    path = Path(root) / lesson.path
    text = path.read_text(encoding="utf-8")
    count = text.count(mutant["find"])
    if count != 1:
        return f"`find` occurs {count} times in {lesson.path}"
    path.write_text(text.replace(mutant["find"], mutant["replace"]), encoding="utf-8")
    return None


def try_mutant(mutant, timeout=300):
    with tempfile.TemporaryDirectory(prefix="dlcourse-mutant-") as tmp:
        root = copy_course(Path(tmp) / "course")
        problem = apply(mutant, root)
        if problem:
            return "invalid", problem
        lesson = syllabus.find(mutant["lesson"])
        try:
            result = run_lesson(root, lesson, ["--quick", "--out", str(Path(tmp) / "out")],
                                tmp, timeout)
        except subprocess.TimeoutExpired:
            return "crashed", f"timed out after {timeout} s"
        failed = [ln for ln in result.stderr.splitlines() if ln.startswith("CHECK FAILED")]
        if result.returncode == 1 and failed:
            return "killed", failed[0][len("CHECK FAILED: "):]
        if result.returncode == 0:
            return "SURVIVED", " | ".join(result.stdout.strip().splitlines()[-3:-1])  # checks, metrics
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        return "crashed", f"exit {result.returncode}: {last}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--phase", type=int, help="only this phase's mutants")
    p.add_argument("--lesson", help="only this lesson's mutants, e.g. 04.06")
    p.add_argument("--id", action="append", help="only these mutants, e.g. 04.06#1 (repeatable)")
    p.add_argument("--jobs", "-j", type=int, default=2, help="mutants run side by side")
    p.add_argument("--list", action="store_true", help="print the mutants and exit")
    args = p.parse_args(argv)
    mutants = load_mutants()
    if args.phase:
        mutants = [m for m in mutants if m["lesson"].startswith(f"{args.phase:02d}.")]
    if args.lesson:
        wanted = syllabus.find(args.lesson)
        mutants = [m for m in mutants if wanted and m["lesson"] == wanted.id]
    if args.id:
        mutants = [m for m in mutants if m["id"] in set(args.id)]
    if not mutants:
        print("no mutants selected")
        return 2
    if args.list:
        for m in mutants:
            print(f"{m['id']:16s} {m['why']}")
        return 0
    tally = {}
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for m, (verdict, detail) in zip(mutants, pool.map(try_mutant, mutants)):
            tally[verdict] = tally.get(verdict, 0) + 1
            print(f"{verdict:8s} {m['id']:16s} {m['why']}\n{'':25s}-> {detail[:150]}",
                  flush=True)
    print(f"mutants: {tally.get('killed', 0)} killed by a check, {tally.get('SURVIVED', 0)} "
          f"survived, {tally.get('crashed', 0)} crashed, {tally.get('invalid', 0)} invalid "
          f"(of {len(mutants)})")
    return 0 if tally.get("killed", 0) == len(mutants) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: the working tree was never changed", file=sys.stderr)
        sys.exit(130)
