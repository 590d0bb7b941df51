"""The Chinese set-up and troubleshooting pages stay in step with the English ones.

For each pair (docs/X.md, docs/X.zh-CN.md): the same sections (## and ### headings, same
levels, same order) and the same commands (fenced code blocks, compared exactly, as
multisets); each page links to its translation; and every in-page or cross-page anchor a page
links to exists. The prose is free to differ; the commands are not.
"""
import re
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PAIRS = ["SETUP", "TROUBLESHOOTING"]
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def parse(text):
    """(headings, code_blocks) of a Markdown text: headings as (level, title) for ## and ###,
    code blocks as (info string, body); heading-like lines inside code blocks are ignored."""
    headings, blocks = [], []
    fence = None
    for line in text.splitlines():
        match = FENCE.match(line)
        if fence is None:
            if match:
                fence, info, body = match.group(1), match.group(2).strip(), []
                continue
            heading = re.match(r"^(#{2,3})\s+(.+?)\s*#*\s*$", line)
            if heading:
                headings.append((len(heading.group(1)), heading.group(2)))
        elif match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                and not match.group(2).strip():
            blocks.append((info, "\n".join(body)))
            fence = None
        else:
            body.append(line)
    assert fence is None, "a code block is not closed"
    return headings, blocks


def compare(english, chinese):
    """Problems found between an English page and its Chinese version (empty: in step)."""
    problems = []
    en_heads, en_blocks = parse(english)
    zh_heads, zh_blocks = parse(chinese)
    en_levels = [level for level, _ in en_heads]
    zh_levels = [level for level, _ in zh_heads]
    if en_levels != zh_levels:
        problems.append(f"sections differ: English has {len(en_heads)} "
                        f"({', '.join('#' * n + ' ' + t for n, t in en_heads)}), "
                        f"Chinese has {len(zh_heads)} "
                        f"({', '.join('#' * n + ' ' + t for n, t in zh_heads)})")
    missing = Counter(en_blocks) - Counter(zh_blocks)
    extra = Counter(zh_blocks) - Counter(en_blocks)
    for info, body in missing.elements():
        problems.append(f"code block missing from the Chinese page: ```{info}\n{body}\n```")
    for info, body in extra.elements():
        problems.append(f"code block only in the Chinese page: ```{info}\n{body}\n```")
    return problems


def slug(title):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    title = re.sub(r"`|\*\*|<[^>]+>", "", title.strip().lower())
    return re.sub(r"[^\w\- ]", "", title).replace(" ", "-")


def anchors(text):
    """Every anchor a page defines: explicit <a id=...> and GitHub's heading slugs."""
    found = set(re.findall(r'<a\s+(?:id|name)="([^"]+)"', text))
    seen = Counter()
    fence = None
    for line in text.splitlines():
        match = FENCE.match(line)
        if match and (fence is None or (match.group(1)[0] == fence[0]
                                        and not match.group(2).strip())):
            fence = match.group(1) if fence is None else None
            continue
        heading = re.match(r"^(#{1,6})\s+(.+?)\s*#*\s*$", line)
        if fence is None and heading:
            base = slug(heading.group(2))
            found.add(base if not seen[base] else f"{base}-{seen[base]}")
            seen[base] += 1
    return found


def read(name):
    return (DOCS / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", PAIRS)
def test_chinese_page_has_the_same_sections_and_commands(name):
    problems = compare(read(f"{name}.md"), read(f"{name}.zh-CN.md"))
    assert not problems, f"docs/{name}.zh-CN.md is out of step with docs/{name}.md:\n" + \
        "\n".join(problems)


@pytest.mark.parametrize("name", PAIRS)
def test_pages_link_to_each_other(name):
    assert (DOCS / f"{name}.zh-CN.md").is_file(), f"docs/{name}.zh-CN.md is missing"
    assert f"]({name}.zh-CN.md)" in read(f"{name}.md"), f"docs/{name}.md does not link its Chinese version"
    assert f"]({name}.md)" in read(f"{name}.zh-CN.md"), f"docs/{name}.zh-CN.md does not link back"


def test_anchor_links_resolve():
    """Links such as SETUP.md#proxies, from the four pages and the READMEs, reach an anchor."""
    pages = [DOCS / f"{n}{suffix}.md" for n in PAIRS for suffix in ("", ".zh-CN")]
    sources = pages + sorted(REPO.glob("README*.md"))
    broken = []
    for source in sources:
        for target, anchor in re.findall(r"\]\(([^)\s#]*)#([^)\s]+)\)", source.read_text(encoding="utf-8")):
            path = (source.parent / target).resolve() if target else source
            if path.suffix != ".md" or not path.is_file():
                continue
            if anchor not in anchors(path.read_text(encoding="utf-8")):
                broken.append(f"{source.relative_to(REPO)}: {target}#{anchor}")
    assert not broken, "links to anchors that do not exist:\n" + "\n".join(broken)


def test_the_comparison_catches_a_missing_section_or_command():
    """The checks above would notice a dropped heading or command (checked on a copy)."""
    english = read("SETUP.md")
    chinese = read("SETUP.zh-CN.md")
    assert not compare(english, chinese)
    no_section = chinese.replace("\n### ", "\n", 1)
    assert any("sections differ" in p for p in compare(english, no_section))
    command = "pip config set global.index-url https://pypi.tuna.tsinghua.edu.cn/simple\n"
    assert command in chinese
    no_command = chinese.replace(command, "", 1)
    assert any("missing from the Chinese page" in p for p in compare(english, no_command))
    changed = chinese.replace("$env:HF_ENDPOINT = ", "$env:HF_ENDPOINT=", 1)
    assert len(compare(english, changed)) == 2  # one block missing, one extra
