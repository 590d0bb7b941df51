"""How long each lesson's --quick run takes, wall clock, imports included (what pytest pays).

    python benchmarks/quick_times.py                 # every lesson, one at a time
    python benchmarks/quick_times.py --phase 5 --top 10
    python benchmarks/quick_times.py --markdown benchmarks/quick_times.md

Run it on a quiet machine: the numbers are the machine's, not the lesson's. The test suite
does not assert these times (a loaded machine would make such a test flaky); the README
quotes this script's report instead.
"""
import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from dlcourse import progress, syllabus  # noqa: E402


def time_lesson(lesson):
    with tempfile.TemporaryDirectory(prefix="dlcourse-time-") as tmp:
        env = dict(os.environ, DLCOURSE_OFFLINE="1", MPLBACKEND="Agg", TQDM_DISABLE="1",
                   DLCOURSE_PROGRESS=str(Path(tmp) / "progress.json"))
        start = time.perf_counter()
        result = subprocess.run([sys.executable, str(REPO / lesson.path), "--quick", "--out",
                                 tmp], cwd=REPO, env=env, capture_output=True, text=True)
        return time.perf_counter() - start, result.returncode


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--phase", type=int, help="only this phase")
    p.add_argument("--top", type=int, default=0, help="print only the N slowest")
    p.add_argument("--markdown", metavar="FILE", help="also write the report as Markdown")
    args = p.parse_args(argv)
    chosen = [lsn for lsn in syllabus.lessons(ready_only=False) if (REPO / lsn.path).exists()
              and (not args.phase or lsn.phase == args.phase)]
    rows = []
    for lesson in chosen:
        seconds, code = time_lesson(lesson)
        rows.append((seconds, lesson.id, lesson.path, code))
        print(f"{seconds:6.1f} s  {lesson.id:12s} {'ok' if code == 0 else f'exit {code}'}",
              flush=True)
    rows.sort(reverse=True)
    total = sum(r[0] for r in rows)
    lines = [f"# --quick wall times ({time.strftime('%Y-%m-%d')}, {platform.machine()}, "
             f"{os.cpu_count()} CPUs, Python {platform.python_version()})", "",
             f"{len(rows)} lessons, {total:.0f} s one after another "
             f"(mean {total / max(len(rows), 1):.1f} s).", "",
             "| seconds | lesson | file |", "| ---: | --- | --- |"]
    for seconds, lesson_id, path, code in rows[:args.top or None]:
        lines.append(f"| {seconds:.1f} | {lesson_id} | `{path}`"
                     + ("" if code == 0 else f" (exit {code})") + " |")
    report = "\n".join(lines) + "\n"
    print("\n" + report)
    if args.markdown:
        progress.atomic_write_text(args.markdown, report)
    return 1 if any(r[3] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
