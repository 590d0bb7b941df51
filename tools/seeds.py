"""Run lessons with --quick under several seeds: every self-check must hold for any seed.

    python tools/seeds.py                  # every lesson, seeds 0-4
    python tools/seeds.py --phase 2 --seeds 0-9
    python tools/seeds.py --lesson 02.11 --seeds 3

Prints one line per failing run and a summary; exit 0 only when every run passed.
"""
import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutate import REPO, run_lesson  # noqa: E402
from dlcourse import syllabus  # noqa: E402


def seed_range(text):
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def one(job):
    lesson, seed = job
    with tempfile.TemporaryDirectory(prefix="dlcourse-seed-") as tmp:
        r = run_lesson(REPO, lesson, ["--quick", "--seed", str(seed), "--out", tmp], tmp)
    if r.returncode == 0:
        return None
    tail = (r.stderr.strip().splitlines() or r.stdout.strip().splitlines() or ["?"])[-1]
    return f"FAILED {lesson.id} seed {seed} (exit {r.returncode}): {tail[:160]}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--seeds", type=seed_range, default=seed_range("0-4"), help="e.g. 0-4")
    p.add_argument("--phase", type=int)
    p.add_argument("--lesson")
    p.add_argument("--jobs", "-j", type=int, default=2)
    args = p.parse_args(argv)
    chosen = [lsn for lsn in syllabus.lessons(ready_only=False) if (REPO / lsn.path).exists()]
    if args.phase:
        chosen = [lsn for lsn in chosen if lsn.phase == args.phase]
    if args.lesson:
        chosen = [lsn for lsn in chosen if lsn.id == syllabus.find(args.lesson).id]
    jobs = [(lsn, s) for lsn in chosen for s in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        failures = [f for f in pool.map(one, jobs) if f]
    for line in failures:
        print(line)
    print(f"seeds {args.seeds[0]}-{args.seeds[-1]}: {len(jobs) - len(failures)} of {len(jobs)} "
          f"runs passed ({len(chosen)} lessons)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
