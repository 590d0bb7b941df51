"""The course-wide documents point at things that exist.

docs/READING_LIST.md, docs/INTERVIEW_QUESTIONS.md and docs/TOOLING.md tie papers, interview
answers and tools to lessons, and docs/research/*.md tie write-ups to lessons. These tests keep
those pointers honest as files move:
- every relative link resolves to a file in the repository, and a #anchor into a .md file names
  a heading (GitHub's anchor rules) or an explicit <a id="...">;
- every lesson path written in backticks (`phaseNN-topic/MM-name.py`) and every lesson id
  written in backticks (`12.07`, `07.capstone1`) names an existing file, unless its line says
  the lesson is planned;
- every interview answer links to a lesson or names the planned one;
- README.md and README.zh-CN.md link each of the three documents.
"""
import re
from collections import Counter
from pathlib import Path

import pytest

from dlcourse import syllabus

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
COURSE_DOCS = ["READING_LIST.md", "INTERVIEW_QUESTIONS.md", "TOOLING.md", "ATTENTION_IS_ALL_YOU_NEED.md"]
READMES = ["README.md", "README.zh-CN.md"]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
LESSON_PATH = re.compile(r"`(phase\d{2}-[\w-]+/[\w.-]+\.py)`")
LESSON_ID = re.compile(r"`(\d{2}\.(?:\d{2}|capstone\d?))`")


def sources():
    return [DOCS / name for name in COURSE_DOCS] + sorted((DOCS / "research").glob("*.md"))


def prose_lines(text):
    """(line number, line) outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if match:
            if fence is None:
                fence = match.group(1)
            elif match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
            continue
        if fence is None:
            yield number, line


def slug(heading):
    """GitHub's anchor for a heading's text: markup dropped, lower case, every character that
    is not a letter, digit, space, hyphen or underscore removed, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())   # links keep their text
    text = re.sub(r"<[^>]+>", "", text)                                  # inline HTML
    text = re.sub(r"(\*\*|__|[`*])", "", text)                           # emphasis and code marks
    text = text.lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text):
    """Every anchor a Markdown page defines: explicit <a id/name> and heading slugs, with
    GitHub's -1, -2 suffixes for repeated headings."""
    found = set(re.findall(r'<a\s+(?:id|name)="([^"]+)"', text))
    seen = Counter()
    for _, line in prose_lines(text):
        heading = re.match(r"^ {0,3}(#{1,6})\s+(.+?)\s*#*\s*$", line)
        if heading:
            base = slug(heading.group(2))
            found.add(base if not seen[base] else f"{base}-{seen[base]}")
            seen[base] += 1
    return found


def link_problems(source, text):
    """Broken relative links of one page (a list of messages; empty when all resolve)."""
    problems = []
    for number, line in prose_lines(text):
        line = re.sub(r"`[^`]*`", "", line)          # code spans are not links
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):   # http:, https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            path = (source.parent / path_part).resolve() if path_part else source
            where = f"{source.relative_to(REPO)}:{number}: {target}"
            if REPO not in path.parents and path != REPO:
                problems.append(f"{where} leaves the repository")
            elif not path.exists():
                problems.append(f"{where} does not exist")
            elif anchor and path.suffix == ".md" and anchor not in anchors(
                    path.read_text(encoding="utf-8")):
                problems.append(f"{where}: no heading or anchor '{anchor}' in {path.name}")
    return problems


def lesson_ids():
    """Manifest ids ('05.07', '07.capstone1') of lessons whose file exists."""
    return {lesson.id for phase in syllabus.PHASES for lesson in phase.lessons
            if (REPO / lesson.path).is_file()}


def unplanned_missing(source, text, existing_ids):
    """Backticked lesson paths and ids that name no existing file on a line that does not
    say 'planned'."""
    problems = []
    for number, line in prose_lines(text):
        planned = "planned" in line.lower()
        for path in LESSON_PATH.findall(line):
            if not (REPO / path).is_file() and not planned:
                problems.append(f"{source.relative_to(REPO)}:{number}: `{path}` does not exist "
                                f"and the line does not say it is planned")
        for lesson_id in LESSON_ID.findall(line):
            if lesson_id not in existing_ids and not planned:
                problems.append(f"{source.relative_to(REPO)}:{number}: lesson `{lesson_id}` "
                                f"has no file and the line does not say it is planned")
    return problems


def read(path):
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", COURSE_DOCS)
def test_course_doc_exists_with_a_title(name):
    path = DOCS / name
    assert path.is_file(), f"docs/{name} is missing"
    assert read(path).startswith("# "), f"docs/{name} should start with a '# ' title"


def test_relative_links_resolve():
    problems = [p for source in sources() for p in link_problems(source, read(source))]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_lesson_paths_and_ids_exist_or_are_marked_planned():
    existing = lesson_ids()
    problems = [p for source in sources() for p in unplanned_missing(source, read(source), existing)]
    assert not problems, "lessons named that do not exist:\n" + "\n".join(problems)


def test_every_interview_answer_points_at_a_lesson():
    """Each question (a ### heading) links a lesson file or names the planned lesson."""
    text = read(DOCS / "INTERVIEW_QUESTIONS.md")
    sections = re.split(r"^### ", text, flags=re.M)[1:]
    assert len(sections) >= 20, f"only {len(sections)} questions"
    bare = [s.splitlines()[0] for s in sections
            if not re.search(r"\]\(\.\./phase\d{2}-[\w-]+/[\w.-]+\.py\)", s)
            and "planned" not in s.lower()]
    assert not bare, "questions with no lesson link and no planned lesson:\n" + "\n".join(bare)


@pytest.mark.parametrize("readme", READMES)
def test_readme_links_each_course_doc(readme):
    text = read(REPO / readme)
    missing = [name for name in COURSE_DOCS if f"](docs/{name})" not in text]
    assert not missing, f"{readme} does not link: " + ", ".join(f"docs/{n}" for n in missing)


def test_the_checks_catch_a_broken_link_anchor_and_unplanned_lesson():
    """The checkers above notice planted mistakes (run on made-up text, nothing is written)."""
    source = DOCS / "READING_LIST.md"
    good = ("See [LSTM](../phase06-rnn/04-lstm.py), [NPU](SETUP.md#huawei-ascend-npu), "
            "[web](https://example.com) and `phase06-rnn/04-lstm.py` (`06.04`).\n"
            "Quantisation: `phase12-llm/07-quantization.py` (`12.07`, planned).\n"
            "```\n[not a link](nowhere.md) `phase99-x/01-y.py`\n```\n")
    existing = lesson_ids()
    assert not link_problems(source, good)
    assert not unplanned_missing(source, good, existing)
    assert link_problems(source, "[x](../phase06-rnn/04-lstn.py)")
    assert link_problems(source, "[x](SETUP.md#no-such-heading)")
    assert link_problems(source, "[x](../../outside.md)")
    assert unplanned_missing(source, "Quantisation: `phase12-llm/07-quantization.py`.", existing)
    assert unplanned_missing(source, "Quantisation is lesson `12.07`.", existing)
    assert slug("Huawei Ascend (NPU)") == "huawei-ascend-npu"
    assert slug("Why does `attention` beat RNNs?") == "why-does-attention-beat-rnns"
    assert anchors("# A\n## A\n") == {"a", "a-1"}
