"""The mutation tool (tools/mutate.py) keeps working: its list is valid, a few of its planted
mistakes are killed by the lessons' checks, and a harmless edit survives (so the tool does not
call everything killed). The full list runs with `python tools/mutate.py` (minutes)."""
import sys

import pytest

from conftest import REPO
from dlcourse import syllabus

sys.path.insert(0, str(REPO / "tools"))
import mutate  # noqa: E402

MUTANTS = mutate.load_mutants()
SAMPLE = ["01.02#1", "02.07#1", "03.05#1", "04.06#1", "05.02#1", "06.05#1"]  # one per phase, fast lessons


def test_every_mutant_applies_exactly_once():
    assert MUTANTS, "the mutant list is empty"
    for m in MUTANTS:
        lesson = mutate.edited_lesson(m)
        assert lesson is not None and syllabus.find(m["lesson"]) is not None, m["id"]
        assert m["find"] != m["replace"] and m["why"], m["id"]
        text = (REPO / lesson.path).read_text(encoding="utf-8")
        assert text.count(m["find"]) == 1, f"{m['id']}: `find` occurs {text.count(m['find'])} times"


def test_every_lesson_has_planted_mistakes():
    """Every written lesson and capstone has from-scratch code here, so each has mutants."""
    planted = {m["lesson"] for m in MUTANTS}
    missing = [lesson.id for lesson in syllabus.lessons() if lesson.id not in planted
               and (REPO / lesson.path).exists()]
    assert not missing, f"lessons without a planted mistake in tools/mutants/: {missing}"


@pytest.mark.lesson
@pytest.mark.parametrize("mutant_id", SAMPLE)
def test_sample_mutants_are_killed_by_a_check(mutant_id):
    mutant = next(m for m in MUTANTS if m["id"] == mutant_id)
    verdict, detail = mutate.try_mutant(mutant)
    assert verdict == "killed", f"{mutant_id}: {verdict}: {detail}"


@pytest.mark.lesson
def test_a_harmless_edit_survives():
    harmless = {"lesson": "04.06", "why": "a comment reworded", "id": "04.06#harmless",
                "find": "# x: (B, 40)", "replace": "# x: (batch, 40)"}
    verdict, detail = mutate.try_mutant(harmless)
    assert verdict == "SURVIVED", f"{verdict}: {detail}"
