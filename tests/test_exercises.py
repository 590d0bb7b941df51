"""Exercises (`dlcourse exercise` / `dlcourse check`): every marked part is well formed, is
reached by the lesson's --quick run (a blank copy of that part fails), is graded by a check
that a planted mistake inside it fails (tools/mutants), and the workflow a learner follows
works end to end, including a damaged or missing copy."""
import ast
import importlib.util
import json
import subprocess
import sys

import pytest

from conftest import REPO, offline_env
from dlcourse import CourseError, exercises, syllabus

WITH = exercises.with_exercises()
PARTS = [(lesson, part) for lesson, parts, _ in WITH for part in parts]

# Lessons of phases 2-7 without a from-scratch part a learner could write and have graded,
# each with the reason. Every other lesson and capstone of those phases has an exercise.
NO_EXERCISE = {
}
MARKED_PHASES = (2, 3, 4, 5, 6, 7)   # the phases whose lessons have been through exercise marking


def lesson_lines(lesson):
    return (REPO / lesson.path).read_text(encoding="utf-8").splitlines()


def test_markers_are_well_formed():
    assert PARTS, "no lesson marks an exercise part"
    for lesson, parts, questions in WITH:
        lines = lesson_lines(lesson)
        for p in parts:
            where = f"{lesson.id} part {p.name}"
            assert p.indent, f"{where}: a part must sit inside a function (indented)"
            assert any(b.strip() and not b.strip().startswith("#") for b in p.body), \
                f"{where}: empty body"
            assert len(p.hint) >= 20, f"{where}: the hint is too short to help"
        ast.parse("\n".join(exercises.blank(lines, lesson.id)))   # the learner's copy compiles
        for q in questions:
            assert len(q.options) >= 2, f"{lesson.id} question {q.name}: give the options"
            assert q.answer == "", f"{lesson.id} question {q.name}: the lesson must not give " \
                                   "the answer away in its ANSWER line"
            assert any(line.strip() == f"# ANSWER {q.name}:" for line in lines), \
                f"{lesson.id} question {q.name}: no '# ANSWER {q.name}:' line"


def test_every_lesson_with_a_from_scratch_part_has_an_exercise():
    marked = {lesson.id for lesson, parts, _ in WITH if parts}
    for lesson in syllabus.lessons(ready_only=False):
        if lesson.phase in MARKED_PHASES and (REPO / lesson.path).exists():
            if lesson.id in NO_EXERCISE:
                assert lesson.id not in marked, f"{lesson.id} has an exercise now: drop it " \
                                                "from NO_EXERCISE"
            else:
                assert lesson.id in marked, f"{lesson.id} has no '# EXERCISE' part"


def _mutants():
    spec = importlib.util.spec_from_file_location("mutate", REPO / "tools" / "mutate.py")
    mutate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mutate)
    return mutate.load_mutants()


def test_each_part_has_a_planted_mistake_that_a_check_catches():
    """A blank part fails because it raises; what grades a learner's *wrong* code is a check,
    and tools/mutate.py shows a check catches a plausible slip inside every part."""
    mutants = _mutants()
    for lesson, part in PARTS:
        body = "\n".join(part.body)
        inside = [m for m in mutants if m["lesson"] == lesson.id and
                  m.get("edit", lesson.id) == lesson.id and m["find"] in body]
        assert inside, f"{lesson.id} part {part.name}: no mutant in tools/mutants edits its body"


LESSONS_WITH_PARTS = [lesson for lesson, parts, _ in WITH if parts]
PHASES_WITH_PARTS = sorted({lesson.phase for lesson in LESSONS_WITH_PARTS})


@pytest.mark.lesson
@pytest.mark.timeout(900)   # a whole phase in one test
@pytest.mark.parametrize("phase", PHASES_WITH_PARTS, ids=[f"phase{p:02d}" for p in PHASES_WITH_PARTS])
def test_a_blank_part_fails_check(phase, tmp_path):
    """Each part with its body blanked (the learner's starting point) must not pass: the
    --quick run reaches it, and the failure is reported against that part. (tools/blank_parts.py
    imports torch once per phase and runs each blank in a child forked after the lesson's own
    imports: minutes of start-up saved.)"""
    ids = [lesson.id for lesson in LESSONS_WITH_PARTS if lesson.phase == phase]
    r = subprocess.run([sys.executable, str(REPO / "tools" / "blank_parts.py"), *ids, "--json"],
                       cwd=REPO, env=offline_env(tmp_path), capture_output=True, text=True,
                       timeout=900)
    assert r.returncode in (0, 1), r.stderr[-2000:]
    results = json.loads(r.stdout.strip().splitlines()[-1])
    for lesson, parts, _ in WITH:
        if lesson.id in ids:
            assert list(results[lesson.id]) == [p.name for p in parts], lesson.id
            for name, result in results[lesson.id].items():
                assert result["status"] == "not written", (lesson.id, name, result)


# ---------------------------------------------------------------- the learner's workflow
def dlcourse(tmp_path, *args):
    env = offline_env(tmp_path, DLCOURSE_EXERCISES=str(tmp_path / "ws"))
    return subprocess.run([sys.executable, "-m", "dlcourse", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def solve(copy, lesson):
    """Put the course's own bodies back into the learner's copy, and answer the questions
    with what the lesson measures (read from a run of it)."""
    lines = copy.read_text(encoding="utf-8").splitlines()
    for part in reversed(exercises.parts(lines)):
        solution = {p.name: p for p in exercises.parts(lesson_lines(lesson))}[part.name]
        lines = exercises.replace_part(lines, part, solution.body)
    copy.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.lesson
def test_exercise_then_check_the_whole_workflow(tmp_path):
    lesson = syllabus.find("02.03")
    r = dlcourse(tmp_path, "exercise", "02.03")
    assert r.returncode == 0, r.stderr
    copy = tmp_path / "ws" / lesson.path
    assert copy.exists() and "part softmax_jacobian" in r.stdout

    r = dlcourse(tmp_path, "check", "02.03")             # blank: nothing passes
    assert r.returncode == 1
    assert "[TODO] part softmax_jacobian" in r.stdout and "hint:" in r.stdout
    assert "[TODO] question central_order" in r.stdout

    copy.write_text(copy.read_text() + "# my note\n")    # started: never overwritten
    r = dlcourse(tmp_path, "exercise", "02.03")
    assert r.returncode == 1 and "not overwritten" in r.stdout
    assert copy.read_text().endswith("# my note\n")

    solve(copy, lesson)                                   # one part right, one part wrong
    text = copy.read_text()
    copy.write_text(text.replace("return X.T @ r / len(y), r.mean()", "return X.T @ r, r.mean()", 1))
    r = dlcourse(tmp_path, "check", "02.03")
    assert r.returncode == 1, r.stdout
    assert "[PASS] part softmax_jacobian" in r.stdout
    assert "[FAIL] part loss_grad: gradient check" in r.stdout    # the failing check's line
    record = json.loads((tmp_path / "progress.json").read_text()) if \
        (tmp_path / "progress.json").exists() else {}
    assert "02.03" not in record.get("exercises", {})

    copy.write_text(text.replace("# ANSWER central_order:", "# ANSWER central_order: 1")
                        .replace("# ANSWER float32_best_h:", "# ANSWER float32_best_h: 5e-3"))
    r = dlcourse(tmp_path, "check", "02.03")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[WRONG] question central_order: you said '1', the run measured '2'" in r.stdout
    assert "[RIGHT] question float32_best_h" in r.stdout
    assert "exercise passed" in r.stdout
    record = json.loads((tmp_path / "progress.json").read_text())
    assert record["exercises"]["02.03"]["parts"] == 2 and record["exercises"]["02.03"]["right"] == 1
    assert "02.03" in dlcourse(tmp_path, "list").stdout.split("(E)")[0].splitlines()[-1]
    assert "exercises passed: 1 of" in dlcourse(tmp_path, "progress").stdout
    assert "(E) 02.03" in dlcourse(tmp_path, "exercise", "--list").stdout

    r = dlcourse(tmp_path, "exercise", "02.03", "--reset")   # the old copy is kept aside
    assert r.returncode == 0 and "kept your previous copy" in r.stdout
    assert len(list(copy.parent.glob(copy.name + ".bak-*"))) == 1
    assert "NotImplementedError" in copy.read_text()


@pytest.mark.parametrize("damage", ["binary", "markers", "missing", "syntax"])
def test_a_damaged_or_missing_copy_is_one_line(damage, tmp_path):
    lesson = syllabus.find("02.03")
    copy = tmp_path / "ws" / lesson.path
    if damage != "missing":
        assert dlcourse(tmp_path, "exercise", "02.03").returncode == 0
    if damage == "binary":
        copy.write_bytes(b"\xff\xfe\x00garbage\x9c")
    elif damage == "markers":
        copy.write_text(copy.read_text().replace("    # END EXERCISE\n", "", 1))
    elif damage == "syntax":
        copy.write_text(copy.read_text().replace("    raise NotImplementedError(", "    return (((", 1))
    r = dlcourse(tmp_path, "check", "02.03")
    if damage == "syntax":   # a learner's typo is a result, reported against the part
        assert r.returncode == 1 and "SyntaxError at line" in r.stdout, r.stdout + r.stderr
        return
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert {"binary": "not UTF-8", "markers": "END EXERCISE", "missing": "dlcourse exercise 02.03"}[
        damage] in r.stderr


@pytest.mark.parametrize("args,says", [(["exercise", "99.99"], "unknown lesson"),
                                       (["check", "02.03x"], "unknown lesson"),
                                       (["exercise"], "which lesson")])
def test_bad_lesson_ids_are_one_line(args, says, tmp_path):
    r = dlcourse(tmp_path, *args)
    assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("text,says", [
    ("def f():\n    # EXERCISE a: a long enough hint here\n    return 1\n", "no '# END EXERCISE'"),
    ("def f():\n    return 1\n    # END EXERCISE\n", "without an '# EXERCISE"),
    ("def f():\n    # EXERCISE a: hint one is long\n    # EXERCISE b: hint two is long\n", "inside part"),
    ("def f():\n    # EXERCISE: no name\n", "damaged exercise marker"),
    ("def f():\n    # EXERCISE a: x\n    # END EXERCISE\n    # EXERCISE a: y\n    # END EXERCISE\n",
     "marked twice"),
])
def test_marker_mistakes_are_named(text, says):
    with pytest.raises(CourseError, match=says):
        exercises.parts(text.splitlines())
