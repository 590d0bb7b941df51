"""The week-by-week plan in README.md / README.zh-CN.md, generated from the syllabus.

The plan sits between two marker lines; `python -m dlcourse readme` rewrites it and
tests/test_syllabus.py fails when a README is out of date. `dlcourse progress --markdown`
renders the same plan with the learner's ticks.
"""
from pathlib import Path

from dlcourse import syllabus

START = "<!-- plan:start: generated from dlcourse/syllabus.py by `python -m dlcourse readme` -->"
END = "<!-- plan:end -->"
README = {"en": "README.md", "zh": "README.zh-CN.md"}

WORDS = {
    "en": {"week": "Week", "weeks": "Weeks", "phase": "Phase", "milestone": "Milestone",
           "planned": "Planned phases (lessons coming)", "colon": ": ", "open": " (", "close": ")",
           "comma": ", ", "list": ", ", "phases": "; ", "dash": " — ",
           "verified": "verified by {}"},
    # Chinese text takes full-width punctuation (，：；（）、) with no spaces around it;
    # code spans keep their own characters.
    "zh": {"week": "第 {} 周", "weeks": "第 {}-{} 周", "phase": "阶段", "milestone": "里程碑",
           "planned": "后续阶段（课程编写中）", "colon": "：", "open": "（", "close": "）",
           "comma": "，", "list": "、", "phases": "；", "dash": "——",
           "verified": "完成 {} 即达成"},
}


def _week_label(lang, first, last=None):
    w = WORDS[lang]
    if lang == "zh":
        return w["week"].format(first) if last in (None, first) else w["weeks"].format(first, last)
    return f"{w['week']} {first}" if last in (None, first) else f"{w['weeks']} {first}-{last}"


def _milestone(lang, m):
    """One milestone as a quote line: when, what, and the runs that verify it."""
    w = WORDS[lang]
    runs = w["list"].join(f"`{i}`" for i in m.verified_by)
    return (f"> **{w['milestone']}{w['open']}{w['phase']} {m.phase}{w['comma']}"
            f"{_week_label(lang, m.week)}{w['close']}**{w['colon']}"
            f"{m.text_zh if lang == 'zh' else m.text}"
            f"{w['open']}{w['verified'].format(runs)}{w['close']}")


def render_plan(lang="en", done=None):
    """Markdown for the plan. `done(lesson) -> bool` ticks boxes (None: all unticked)."""
    w = WORDS[lang]
    lines = []
    phases = {p.number: p for p in syllabus.PHASES}
    for week, items in syllabus.weeks().items():
        numbers = sorted({lesson.phase for lesson in items})
        heads = w["phases"].join(f"{w['phase']} {n}{w['colon']}"
                          f"{phases[n].title_zh if lang == 'zh' else phases[n].title}"
                          for n in numbers)
        lines += [f"### {_week_label(lang, week)}{w['dash']}{heads}", ""]
        for lesson in items:
            tick = "x" if done and done(lesson) else " "
            title = lesson.title_zh if lang == "zh" else lesson.title
            lines.append(f"- [{tick}] `{lesson.id}` [{title}]({lesson.path})")
        lines.append("")
        for m in syllabus.MILESTONES:
            if m.week == week:
                lines += [_milestone(lang, m), ""]
    planned = [p for p in syllabus.PHASES if not p.ready]
    if planned:
        lines += [f"### {w['planned']}", ""]
        for p in planned:
            title = p.title_zh if lang == "zh" else p.title
            lines.append(f"- {w['phase']} {p.number}{w['open']}`{p.folder}/`{w['comma']}"
                         f"{_week_label(lang, *p.weeks)}{w['close']}{w['colon']}{title}")
        lines.append("")
        for m in syllabus.MILESTONES:
            if any(p.weeks[0] <= m.week <= p.weeks[1] for p in planned):
                lines += [_milestone(lang, m), ""]
    return "\n".join(lines).rstrip() + "\n"


def replace_plan(text, plan):
    """`text` with the part between the markers replaced by `plan`."""
    if START not in text or END not in text:
        raise ValueError("README lacks the plan markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{plan}{END}{tail}"


def update(repo, check_only=False):
    """Rewrite both READMEs' plans; return the names of files that were (or would be) changed."""
    changed = []
    for lang, name in README.items():
        path = Path(repo) / name
        old = path.read_text(encoding="utf-8")
        new = replace_plan(old, render_plan(lang))
        if new != old:
            changed.append(name)
            if not check_only:
                path.write_text(new, encoding="utf-8")
    return changed
