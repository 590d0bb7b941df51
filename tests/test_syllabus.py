"""The manifest, the files on disk and both READMEs agree; every lesson header follows
LESSON_STYLE.md (title line, Goal, Run with --quick, Expect)."""
import re

import pytest

from dlcourse import readme, syllabus

REPO = syllabus.REPO


def lesson_files_on_disk():
    found = set()
    for folder in REPO.glob("phase[0-9][0-9]-*"):
        for f in folder.glob("*.py"):
            if re.fullmatch(r"\d\d-.+\.py|capstone-.+\.py", f.name):
                found.add(f.relative_to(REPO).as_posix())
    return found


def test_ids_and_paths_are_unique():
    ids = [lesson.id for lesson in syllabus.lessons(ready_only=False)]
    paths = [lesson.path for lesson in syllabus.lessons(ready_only=False)]
    assert len(ids) == len(set(ids))
    assert len(paths) == len(set(paths))


def test_every_lesson_of_a_ready_phase_exists():
    missing = [lesson.path for lesson in syllabus.lessons(ready_only=True)
               if not (REPO / lesson.path).exists()]
    assert not missing, f"listed in the manifest but not on disk: {missing}"


def test_every_lesson_file_is_in_the_manifest():
    listed = {lesson.path for lesson in syllabus.lessons(ready_only=False)}
    extra = sorted(lesson_files_on_disk() - listed)
    assert not extra, f"on disk but not in dlcourse/syllabus.py: {extra}"


def test_phase_folders_match_the_manifest():
    folders = {p.folder for p in syllabus.PHASES}
    on_disk = {f.name for f in REPO.glob("phase[0-9][0-9]-*") if f.is_dir()}
    assert on_disk <= folders, f"unknown phase folders: {on_disk - folders}"
    for phase in syllabus.PHASES:
        assert phase.folder.startswith(f"phase{phase.number:02d}-")
        assert all(lesson.folder == phase.folder for lesson in phase.lessons)
        if phase.ready:
            assert phase.lessons and any(lesson.is_capstone for lesson in phase.lessons), \
                f"phase {phase.number} is ready but has no capstone"


def test_weeks_are_in_order_and_inside_their_phase():
    for phase in syllabus.PHASES:
        first, last = phase.weeks
        assert first <= last
        for lesson in phase.lessons:
            assert first <= lesson.week <= last, lesson.id
    starts = [p.weeks[0] for p in syllabus.PHASES]
    assert starts == sorted(starts)
    assert syllabus.PHASES[-1].weeks[1] == 24


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_readme_plan_is_up_to_date(lang):
    text = (REPO / readme.README[lang]).read_text(encoding="utf-8")
    expected = readme.replace_plan(text, readme.render_plan(lang))
    assert text == expected, (f"{readme.README[lang]} is out of date: run "
                              "`python -m dlcourse readme`")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_readme_lists_every_ready_lesson_with_a_working_link(lang):
    text = (REPO / readme.README[lang]).read_text(encoding="utf-8")
    for lesson in syllabus.lessons(ready_only=True):
        assert f"`{lesson.id}`" in text and f"]({lesson.path})" in text, lesson.id
    for target in re.findall(r"\]\(([^)#\s]+)\)", text):
        if not target.startswith(("http://", "https://", "mailto:")):
            assert (REPO / target).exists(), f"{readme.README[lang]} links to missing {target}"


def test_both_readmes_give_the_two_setup_commands():
    for name in readme.README.values():
        text = (REPO / name).read_text(encoding="utf-8")
        assert "pip install -r requirements.txt" in text
        assert re.search(r"^pytest\s*$", text, re.MULTILINE), f"{name}: no bare `pytest` line"


EXISTING = [lesson for lesson in syllabus.lessons(ready_only=False)
            if (REPO / lesson.path).exists()]


@pytest.mark.parametrize("lesson", EXISTING, ids=[lesson.id for lesson in EXISTING])
def test_lesson_header_follows_the_style(lesson):
    source = (REPO / lesson.path).read_text(encoding="utf-8")
    doc = re.match(r'\s*"""(.*?)"""', source, re.DOTALL)
    assert doc, "no module docstring"
    head = doc.group(1)
    first = head.strip().splitlines()[0]
    number = "Capstone" if lesson.is_capstone else lesson.key
    assert first.startswith(number), f"first line should start with {number!r}: {first!r}"
    assert f"phase {lesson.phase:02d}" in first and f"week {lesson.week}" in first, first
    assert re.search(r"^Goal:", head, re.MULTILINE), "no Goal: line"
    assert re.search(rf"^Run:\s+python {re.escape(lesson.path)}", head, re.MULTILINE), \
        "no Run: line with the lesson's own path"
    assert f"python {lesson.path} --quick" in head, "no --quick command"
    assert re.search(r"^Expect:", head, re.MULTILINE), "no Expect: line"
    assert "def main(args)" in source and 'if __name__ == "__main__":' in source
    assert "cli.friendly_errors()" in source
    assert "plt.show(" not in source and ".cuda()" not in source


def chinese_prose(text):
    """`text` without code blocks, code spans, link targets, HTML comments and the thousands
    separators of numbers (2,650): what is left is Chinese prose."""
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    text = re.sub(r"<!--.*?-->", "", text)
    text = re.sub(r"`[^`\n]+`", "", text)
    text = re.sub(r"\]\([^)\s]+\)", "]", text)
    return re.sub(r"\d,\d{3}", "", text)


def test_chinese_readme_uses_chinese_punctuation():
    """Full-width ，；：（） in Chinese text; ≈ ≥ × rather than ~ >= x; no italics, which
    render badly in Chinese fonts (issue 13)."""
    prose = chinese_prose((REPO / readme.README["zh"]).read_text(encoding="utf-8"))
    bad = re.findall(r".{0,12}(?:[,;:()~]|>=|\dx\d|(?<![*\w])\*(?![*\s])|(?<!\w)_\S).{0,12}",
                     prose)
    assert not bad, bad


def test_chinese_titles_use_full_width_punctuation_and_one_term_each():
    texts = [p.title_zh for p in syllabus.PHASES] + [m.text_zh for m in syllabus.MILESTONES] + [
        lesson.title_zh for lesson in syllabus.lessons(ready_only=False)]
    readme_zh = (REPO / readme.README["zh"]).read_text(encoding="utf-8")
    for text in texts:
        assert not re.search(r"[,;:()]", text), text
    for both in texts + [readme_zh]:  # the terms the course settled on (issue 13)
        assert "自我检查" not in both and "房价回归" not in both, both[:40]
        assert not re.search(r"正则(?!化)", both), both[:40]
