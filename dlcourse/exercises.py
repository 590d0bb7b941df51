"""Exercises: write the from-scratch parts of a lesson yourself, and have them graded.

A lesson marks each part a learner should write with a comment pair and a one-line hint:

        # EXERCISE softmax: subtract each row's max before exp, then divide by the row sum
        shifted = z - z.max(axis=1, keepdims=True)
        ...
        # END EXERCISE

and may end with questions to answer before running it:

    # PREDICT diverges (yes / no): at lr = 1.05 x 2/L, does gradient descent diverge?
    # ANSWER diverges:

The lesson measures each answer and passes it to cli.finish(run, metrics, answers={...}).

    python -m dlcourse exercise 02.03   writes exercises/phase02-math/03-....py: the lesson with
                                        each marked body replaced by NotImplementedError(hint)
    python -m dlcourse check 02.03      runs your copy with --quick, offline; reports part by part

How `check` grades: your whole copy runs first; when every self-check passes, every part
passes. Otherwise each part you wrote runs alone inside the original lesson (the other parts
as the course wrote them), so a failure is pinned to the part that causes it, with the check's
line (which holds the largest difference) and the hint again. The exit status is 0 only when
every part passes and every question is answered; the pass is recorded in your progress.
"""
import ast
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dlcourse import CourseError, progress, shorten, syllabus

START = re.compile(r"^(?P<indent>[ \t]*)# EXERCISE (?P<name>[A-Za-z_][\w-]*): (?P<hint>\S.*?)\s*$")
END = re.compile(r"^[ \t]*# END EXERCISE\s*$")
PREDICT = re.compile(r"^# PREDICT (?P<name>[A-Za-z_][\w-]*) \((?P<options>[^)]+)\): (?P<question>\S.*?)\s*$")
ANSWER = re.compile(r"^# ANSWER (?P<name>[A-Za-z_][\w-]*):(?P<answer>.*)$")
STUB = "raise NotImplementedError({!r})  # your code here: replace this line"
TIMEOUT = 300   # seconds for one --quick run of a copy (a lesson's own takes a few)


@dataclass
class Part:
    name: str
    hint: str
    indent: str
    start: int     # index of the '# EXERCISE' line
    end: int       # index of the '# END EXERCISE' line
    body: list     # the lines between them


@dataclass
class Question:
    name: str
    options: list  # lower-case choices, e.g. ['yes', 'no']
    question: str
    answer: str    # what the learner wrote after '# ANSWER name:' ('' if nothing)


def workspace():
    """The folder of the learner's copies: $DLCOURSE_EXERCISES, else exercises/ in the course
    folder (ignored by git)."""
    return Path(os.environ.get("DLCOURSE_EXERCISES") or syllabus.REPO / "exercises")


def copy_path(lesson):
    return workspace() / lesson.path


def parts(lines, where="lesson"):
    """The marked parts of a lesson's source lines, in order. Raises CourseError naming the
    line when the markers are unbalanced, nested, unnamed or repeated."""
    found, open_part = [], None
    for i, line in enumerate(lines):
        m = START.match(line)
        if m:
            if open_part is not None:
                raise CourseError(f"{where} line {i + 1}: '# EXERCISE {m['name']}' inside part "
                                  f"'{open_part.name}', whose '# END EXERCISE' is missing")
            open_part = Part(m["name"], m["hint"], m["indent"], i, -1, [])
        elif END.match(line):
            if open_part is None:
                raise CourseError(f"{where} line {i + 1}: '# END EXERCISE' without an "
                                  f"'# EXERCISE name: hint' line above it")
            open_part.end = i
            open_part.body = lines[open_part.start + 1:i]
            found.append(open_part)
            open_part = None
        elif line.lstrip().startswith("# EXERCISE") or line.lstrip().startswith("# END EXERCISE"):
            raise CourseError(f"{where} line {i + 1}: damaged exercise marker {line.strip()!r}; "
                              "the form is '# EXERCISE name: hint' ... '# END EXERCISE'")
    if open_part is not None:
        raise CourseError(f"{where}: part '{open_part.name}' (line {open_part.start + 1}) has no "
                          "'# END EXERCISE' line")
    names = [p.name for p in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CourseError(f"{where}: exercise part(s) {', '.join(twice)} marked twice")
    return found


def questions(lines):
    """The PREDICT questions and the learner's ANSWER lines."""
    asked, answers = {}, {}
    for line in lines:
        m = PREDICT.match(line)
        if m:
            options = [normalise(o) for o in re.split(r"\s+/\s+", m["options"]) if o.strip()]
            asked[m["name"]] = Question(m["name"], options, m["question"], "")
        m = ANSWER.match(line)
        if m:
            answers[m["name"]] = m["answer"].strip()
    for name, q in asked.items():
        q.answer = answers.get(name, "")
    return list(asked.values())


def normalise(answer):
    """Lower case, one space between words, no quotes around it and no full stop after it:
    'Yes.' and ' yes' are 'yes'; '0.25' keeps its point."""
    text = " ".join(str(answer).lower().split())
    return text.strip("'\"`").rstrip(".!;:,").strip()


def stub(part, lesson_id):
    return part.indent + STUB.format(f"exercise {lesson_id}, part '{part.name}': {part.hint}")


def replace_part(lines, part, body):
    """lines with `part`'s body replaced by `body` (markers kept)."""
    return lines[:part.start + 1] + list(body) + lines[part.end:]


def blank(lines, lesson_id, only=None):
    """The learner's starting copy: every part's body (or only the part named `only`)
    replaced by a NotImplementedError stub carrying the hint; ANSWER lines emptied."""
    for part in reversed(parts(lines)):
        if only is None or part.name == only:
            lines = replace_part(lines, part, [stub(part, lesson_id)])
    if only is None:
        lines = [re.sub(r"^(# ANSWER [\w-]+:).*$", r"\1", line) for line in lines]
    return lines


def read_lines(path, what):
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise CourseError(f"{what} not found: {path}") from None
    except UnicodeDecodeError:
        raise CourseError(f"{what} {path} is not UTF-8 text (damaged?); start again with "
                          "`python -m dlcourse exercise ID --reset` (your copy is kept aside)") from None
    except OSError as err:
        raise CourseError(f"cannot read {what} {path}: {err.strerror or err}") from None


def _lesson(lesson_id):
    lesson = syllabus.find(lesson_id)
    if lesson is None:
        raise CourseError(f"unknown lesson '{lesson_id}': see `python -m dlcourse list`")
    if not (syllabus.REPO / lesson.path).exists():
        raise CourseError(f"lesson {lesson.id} is planned but not written yet ({lesson.path})")
    return lesson


def original(lesson):
    return read_lines(syllabus.REPO / lesson.path, "lesson file")


def with_exercises():
    """Every written lesson with at least one marked part or question: [(lesson, parts, questions)]."""
    found = []
    for lesson in syllabus.lessons(ready_only=False):
        path = syllabus.REPO / lesson.path
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            ps, qs = parts(lines, lesson.path), questions(lines)
            if ps or qs:
                found.append((lesson, ps, qs))
    return found


def start(lesson_id, reset=False):
    """Write the learner's copy; never overwrite one already there unless reset (then the old
    copy is kept as <name>.bak-<time>). Returns (path, parts, questions, kept_aside or None)."""
    lesson = _lesson(lesson_id)
    lines = original(lesson)
    ps, qs = parts(lines, lesson.path), questions(lines)
    if not ps and not qs:
        raise CourseError(f"lesson {lesson.id} has no exercise yet: "
                          "`python -m dlcourse exercise --list` shows the lessons that have one")
    target = copy_path(lesson)
    kept = None
    if target.exists():
        if not reset:
            return target, ps, qs, "exists"
        kept = target.with_name(f"{target.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
        n = 1
        while kept.exists():
            kept = target.with_name(f"{target.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
            n += 1
        os.replace(target, kept)
    progress.atomic_write_text(target, "\n".join(blank(lines, lesson.id)) + "\n")
    return target, ps, qs, kept


# ---------------------------------------------------------------- grading
@dataclass
class Outcome:
    status: str      # 'passed', 'not written', 'failed', 'error'
    detail: str = ""
    checks: int = 0


def _last_error(stderr):
    """The exception line at the end of a traceback ('ValueError: ...'), or the last line."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Failed|Interrupt)\b", line) or \
                line.startswith(("CHECK FAILED", "error:")):
            return line.strip()
    return lines[-1].strip() if lines else "no output"


def run_source(lines, out_dir, name="copy"):
    """Run `lines` as a lesson with --quick, offline, in a scratch folder. Returns
    (returncode, stdout, stderr, metrics or None)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    script = out_dir / f"{name}.py"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = dict(os.environ, DLCOURSE_OFFLINE="1", MPLBACKEND="Agg", PYTHONUNBUFFERED="1",
               DLCOURSE_PROGRESS=str(out_dir / "progress.json"), TQDM_DISABLE="1")
    try:
        done = subprocess.run([sys.executable, str(script), "--quick", "--offline", "--out",
                               str(out_dir / f"{name}-out")], cwd=syllabus.REPO, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, "", f"TimeoutError: the --quick run took more than {TIMEOUT} s", None
    metrics_file = out_dir / f"{name}-out" / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if done.returncode == 0 and metrics_file.exists() else None
    return done.returncode, done.stdout, done.stderr, metrics


def outcome(returncode, stdout, stderr, part=None, lesson_id=""):
    """Read one run: passed, not written (its stub raised), failed (a check) or error."""
    checks = len(re.findall(r"^\[check\] .*  OK$", stdout, re.MULTILINE))
    if returncode == 0:
        return Outcome("passed", f"{checks} checks passed", checks)
    if part is not None and f"exercise {lesson_id}, part '{part}'" in stderr:
        return Outcome("not written", "", checks)
    failed = re.findall(r"^\[check\] .*  FAILED$", stdout, re.MULTILINE)
    if failed:
        return Outcome("failed", failed[-1].removeprefix("[check] ").removesuffix("  FAILED"), checks)
    return Outcome("error", shorten(_last_error(stderr), 240), checks)


def grade(lesson, copy_lines, scratch):
    """Grade a learner's copy. Returns (outcomes {part: Outcome}, metrics of a run in which
    every check passed, or None)."""
    lines = original(lesson)
    ps = parts(lines, lesson.path)
    mine = {p.name: p for p in parts(copy_lines, f"your copy {copy_path(lesson)}")}
    missing = [p.name for p in ps if p.name not in mine]
    if missing:
        raise CourseError(f"your copy {copy_path(lesson)} lost the markers of part(s) "
                          f"{', '.join(missing)}: put back the '# EXERCISE {missing[0]}: ...' and "
                          "'# END EXERCISE' lines, or start again with --reset (your copy is kept aside)")
    try:
        ast.parse("\n".join(copy_lines))
    except SyntaxError as err:
        where = next((p.name for p in mine.values() if p.start < (err.lineno or 0) - 1 < p.end), None)
        detail = f"SyntaxError at line {err.lineno} of your copy: {err.msg}"
        return {p.name: Outcome("error" if p.name == where or where is None else "not graded",
                                detail) for p in ps}, None
    code, out, err, metrics = run_source(copy_lines, scratch, "whole")
    whole = outcome(code, out, err)
    if code == 0:
        return {p.name: Outcome("passed", whole.detail, whole.checks) for p in ps}, metrics
    results = {}
    for p in ps:   # pin the failure on a part: each of the learner's parts alone in the original
        body = mine[p.name].body
        if [b.strip() for b in body] == [stub(p, lesson.id).strip()]:
            results[p.name] = Outcome("not written")
            continue
        alone = replace_part(lines, p, body)
        code, out, err, m = run_source(alone, scratch, f"part-{p.name}")
        results[p.name] = outcome(code, out, err, p.name, lesson.id)
        metrics = metrics or m
    if all(o.status == "passed" for o in results.values()):
        # each part passes alone but the whole copy does not: something outside the parts
        results = {name: Outcome("failed", "passes alone, but your whole copy fails: "
                                 + whole.detail + " (did you change code outside the parts?)")
                   for name in results}
    return results, metrics


def measured_answers(lesson, metrics, scratch):
    """The answers the run measured; if the learner's copy did not get that far, the
    course's own lesson is run to measure them (they are about the experiment, not your code)."""
    if metrics is None:
        code, out, err, metrics = run_source(original(lesson), scratch, "reference")
        if code != 0:
            raise CourseError(f"the course's own lesson {lesson.id} failed its --quick run "
                              f"({shorten(_last_error(err))}): please report it")
    return metrics.get("answers") or {}


def check(lesson_id, record=True, scratch=None):
    """Grade the learner's copy of `lesson_id`; print the report; return the exit status."""
    lesson = _lesson(lesson_id)
    path = copy_path(lesson)
    if not path.exists():
        raise CourseError(f"no copy of {lesson.id} in {workspace()}: start one with "
                          f"`python -m dlcourse exercise {lesson.id}`")
    copy_lines = read_lines(path, "your copy")
    lines = original(lesson)
    ps, qs = parts(lines, lesson.path), questions(lines)
    mine_q = {q.name: q for q in questions(copy_lines)}
    with tempfile.TemporaryDirectory(prefix=f"dlcourse-check-{lesson.id}-") as tmp:
        scratch = Path(scratch or tmp)
        print(f"checking {path} (--quick, offline) ...", flush=True)
        results, metrics = grade(lesson, copy_lines, scratch) if ps else ({}, None)
        answers = measured_answers(lesson, metrics, scratch) if qs else {}
    passed = 0
    for p in ps:
        o = results[p.name]
        passed += o.status == "passed"
        mark = {"passed": "[PASS]", "not written": "[TODO]"}.get(o.status, "[FAIL]")
        text = {"passed": o.detail, "not written": "not written yet (still raises NotImplementedError)",
                "not graded": "not graded: " + o.detail}.get(o.status, o.detail)
        print(f"{mark} part {p.name}: {text}")
        if o.status != "passed":
            print(f"       hint: {p.hint}")
    right = answered = 0
    for q in qs:
        given = mine_q.get(q.name).answer if q.name in mine_q else ""
        truth = answers.get(q.name) or {}
        said = normalise(str(truth.get("answer", "")))
        if not given:
            print(f"[TODO] question {q.name}: {q.question} ({' / '.join(q.options)}) - write your "
                  f"answer after '# ANSWER {q.name}:' in your copy, before looking at the run")
            continue
        answered += 1
        if normalise(given) not in q.options:
            print(f"[????] question {q.name}: your answer '{given}' is not one of: "
                  f"{' / '.join(q.options)}")
            answered -= 1
            continue
        ok = normalise(given) == said
        right += ok
        print(f"[{'RIGHT' if ok else 'WRONG'}] question {q.name}: you said '{normalise(given)}', "
              f"the run measured '{said}': {truth.get('evidence', '')}".rstrip(": "))
    all_parts = passed == len(ps)
    all_answered = answered == len(qs)
    verdict = all_parts and all_answered
    summary = (f"{lesson.id}: {passed}/{len(ps)} parts pass" if ps else f"{lesson.id}:") + (
        f", {answered}/{len(qs)} questions answered ({right} right)" if qs else "")
    print(("exercise passed - " if verdict else "not yet - ") + summary)
    if record and verdict:
        progress.record_exercise(lesson.id, parts=len(ps), questions=len(qs), right=right)
        print(f"recorded in {progress.path()}")
    return 0 if verdict else 1
