"""Every lesson and capstone in the manifest runs with --quick, offline and headless,
exits 0, runs at least one self-check, and writes its metrics (the smoke test).
Also: the flags a lesson offers are the flags it honours, lessons reuse only earlier
lessons, and seeded numbers do not depend on the thread count.

Wall times are not asserted here (they flake on a loaded machine):
benchmarks/quick_times.py measures them and the README quotes its report."""
import json
import re
import subprocess
import sys

import pytest

from conftest import REPO, offline_env, run_script
from dlcourse import lessons, syllabus

REPO_LESSONS = [lesson for lesson in syllabus.lessons(ready_only=False)
                if (syllabus.REPO / lesson.path).exists()]


@pytest.mark.lesson
@pytest.mark.parametrize("lesson", REPO_LESSONS, ids=[lesson.id for lesson in REPO_LESSONS])
def test_lesson_quick(lesson, tmp_path):
    out = tmp_path / "out"
    result = run_script(lesson.path, ["--quick", "--out", str(out)], tmp_path)
    tail = (result.stdout[-3000:] + "\n--- stderr ---\n" + result.stderr[-3000:])
    assert result.returncode == 0, f"{lesson.path} exited {result.returncode}\n{tail}"
    match = re.search(r"^checks: (\d+) passed", result.stdout, re.MULTILINE)
    assert match and int(match.group(1)) >= 1, f"no self-check ran\n{tail}"
    assert "FAILED" not in result.stdout, tail
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["checks_passed"] == int(match.group(1))
    assert re.search(r"^DATA: .+ \((real data set|generated)", result.stdout, re.MULTILINE), \
        f"no DATA line says which data ran\n{tail}"
    # a quick run is recorded as 'tried', never as done
    record = json.loads((tmp_path / "progress.json").read_text())
    assert record["runs"][lesson.id]["quick"]["checks"] == int(match.group(1))
    assert record["runs"][lesson.id]["full"] is None


TIMING_WORDS = ("second", "per_s", "_ms", "_us", "images_per", "throughput")
REPEATED = ["02.capstone", "03.09", "04.02", "05.12"]


@pytest.mark.parametrize("lesson_id", REPEATED)
def test_seeded_runs_repeat_their_numbers(lesson_id, tmp_path):
    """The same seed prints the same numbers (timings aside); another seed changes them."""
    lesson = syllabus.find(lesson_id)

    def numbers(seed, name):
        out = tmp_path / name
        result = run_script(lesson.path, ["--quick", "--seed", str(seed), "--out", str(out)],
                            tmp_path / name)
        assert result.returncode == 0, result.stderr[-2000:]
        metrics = json.loads((out / "metrics.json").read_text())
        return {k: v for k, v in metrics.items() if not any(w in k for w in TIMING_WORDS)}

    first, again, other = numbers(0, "a"), numbers(0, "b"), numbers(1, "c")
    assert first == again
    assert first != other, "the seed does not reach this lesson's randomness"


def offered_count_flags(lesson):
    """'epochs' / 'steps' if the lesson's parser offers them: cli.parser(..., epochs=...)."""
    source = (REPO / lesson.path).read_text(encoding="utf-8")
    return [flag for flag in ("epochs", "steps")
            if re.search(rf"cli\.parser\([^)]*\b{flag}=", source) or f'"--{flag}"' in source]


COUNTED = [lesson for lesson in REPO_LESSONS if offered_count_flags(lesson)]


def test_a_lesson_without_a_training_loop_rejects_epochs(tmp_path):
    uncounted = [lesson for lesson in REPO_LESSONS if lesson not in COUNTED]
    assert uncounted, "every lesson offers --epochs or --steps?"
    result = run_script(uncounted[0].path, ["--quick", "--epochs", "2"], tmp_path)
    assert result.returncode == 2 and "unrecognized arguments: --epochs" in result.stderr


@pytest.mark.lesson
@pytest.mark.parametrize("lesson", COUNTED, ids=[lesson.id for lesson in COUNTED])
def test_count_flags_are_honoured(lesson, tmp_path):
    """A lesson that offers --epochs or --steps runs exactly that many (its quick default + 1,
    read from --help) and reports the count it ran in metrics.json."""
    help_text = run_script(lesson.path, ["--help"], tmp_path).stdout
    for flag in offered_count_flags(lesson):
        match = re.search(rf"--{flag} N\s+[^(]*\(default (\d+)(?:; (\d+) with --quick)?\)",
                          help_text)
        assert match, f"--help does not show --{flag}'s defaults:\n{help_text[-1500:]}"
        wanted = int(match.group(2) or match.group(1)) + 1
        out = tmp_path / flag
        result = run_script(lesson.path, ["--quick", f"--{flag}", str(wanted), "--out", str(out)],
                            tmp_path)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        metrics = json.loads((out / "metrics.json").read_text())
        assert flag in metrics, f"{lesson.path} offers --{flag} but does not report '{flag}'"
        if metrics.get("stopped_early"):
            assert metrics[flag] <= wanted
        else:
            assert metrics[flag] == wanted, f"--{flag} {wanted} ran {metrics[flag]}"


def test_lessons_reuse_only_earlier_lessons():
    """lessons.load("X") in a lesson names a lesson that comes before it in course order."""
    order = {lesson.id: i for i, lesson in enumerate(syllabus.lessons(ready_only=False))}
    for lesson in REPO_LESSONS:
        for loaded in lessons.loads_in(REPO / lesson.path):
            target = syllabus.find(loaded)
            assert target is not None, f"{lesson.path} loads unknown lesson {loaded}"
            assert order[target.id] < order[lesson.id], \
                f"{lesson.id} loads {target.id}, which comes after it"


def test_loading_a_lesson_runs_nothing(tmp_path):
    """Importing every lesson (what lessons.load does) prints nothing and writes nothing."""
    code = ("import sys\nfrom dlcourse import lessons\n"
            f"for i in {[lesson.id for lesson in REPO_LESSONS]!r}:\n"
            "    m = lessons.load(i)\n"
            "    assert callable(m.main), i\n"
            "    assert lessons.load(i) is m\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, env=offline_env(tmp_path), timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == "", result.stdout[:2000]
    # a lesson run prints its header first, so empty output means no lesson ran
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["data"])


@pytest.mark.parametrize("lesson_id", ["03.06", "04.07"])
def test_seeded_numbers_do_not_depend_on_the_thread_count(lesson_id, tmp_path):
    """The numbers a header promises come out the same with one thread and with two."""
    lesson = syllabus.find(lesson_id)
    runs = []
    for threads in ("1", "2"):
        out = tmp_path / threads
        result = run_script(lesson.path, ["--quick", "--out", str(out)], tmp_path / threads,
                            OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        assert result.returncode == 0, result.stderr[-2000:]
        metrics = json.loads((out / "metrics.json").read_text())
        runs.append({k: v for k, v in metrics.items() if not any(w in k for w in TIMING_WORDS)})
    assert runs[0] == runs[1]
