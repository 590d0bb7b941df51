"""Every lesson and capstone in the manifest runs with --quick, offline and headless,
exits 0, runs at least one self-check, and writes its metrics (the smoke test)."""
import json
import re

import pytest

from conftest import run_script
from dlcourse import syllabus

REPO_LESSONS = [lesson for lesson in syllabus.lessons(ready_only=False)
                if (syllabus.REPO / lesson.path).exists()]


@pytest.mark.lesson
@pytest.mark.parametrize("lesson", REPO_LESSONS, ids=[lesson.id for lesson in REPO_LESSONS])
def test_lesson_quick(lesson, tmp_path):
    out = tmp_path / "out"
    result = run_script(lesson.path, ["--quick", "--out", str(out)], tmp_path)
    tail = (result.stdout[-3000:] + "\n--- stderr ---\n" + result.stderr[-3000:])
    assert result.returncode == 0, f"{lesson.path} exited {result.returncode}\n{tail}"
    match = re.search(r"^checks: (\d+) passed$", result.stdout, re.MULTILINE)
    assert match and int(match.group(1)) >= 1, f"no self-check ran\n{tail}"
    assert "FAILED" not in result.stdout, tail
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["checks_passed"] == int(match.group(1))
    assert metrics["seconds"] < 30, f"--quick took {metrics['seconds']} s of lesson time"
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
