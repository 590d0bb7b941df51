"""`python -m dlcourse <command>` (also installed as `dlcourse`).

    list [--lang zh]           phases and lessons with your status
    run <lesson> [args...]     run one lesson by id (01.03) or path; it records progress itself
    progress [--markdown F]    the week-by-week table; --markdown writes a ticked checklist
                               (list and progress: --lang zh, or DLCOURSE_LANG=zh, for Chinese)
    doctor                     versions, devices, data folder, network: [OK]/[WARN]/[FAIL]
    prefetch [names...]        download data sets ahead of time (--list shows them, with
                               each file's address and checksum)
    data import NAME FILE...   place a data set downloaded by hand (checked, unpacked)
    exercise <lesson> [--reset] your copy of a lesson's exercise parts, in exercises/
    exercise --list            the lessons that have exercises, and which you passed
    check <lesson>             grade your copy: part by part, and your predictions
    readme [--check]           regenerate the plan in README.md / README.zh-CN.md
"""
import argparse
import importlib
import os
import platform
import subprocess
import sys
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dlcourse import CourseError, data, progress, readme, shorten, syllabus

REPO = syllabus.REPO
STATUS_MARK = {"done": "[x]", "stand-in": "[s]", "tried": "[~]", "todo": "[ ]"}
LANGS = ("en", "zh")
# What `list` and `progress` print, in English (the default) and Chinese (--lang zh or
# DLCOURSE_LANG=zh). Doctor, errors and lesson output stay in English.
TEXT = {
    "en": {
        "legend": "[x] done (a full run passed its checks)  [s] done on offline stand-in data, "
                  "not the real data set\n[~] tried with --quick only  [ ] to do",
        "phase": "Phase {:2d}", "week": "week {}", "weeks": "week {}-{}",
        "planned": "  (planned)", "planned_id": " (planned)",
        "head": ("week", "phase", "lessons", "capstone", "status"),
        "capstone": {"done": "done", "todo": "todo", "-": "-"},
        "state": {"complete": "complete", "in progress": "in progress",
                  "not started": "not started"},
        "stand_in": "done on offline stand-in data only (run them on the real data to count): ",
        "milestone": "milestone, end of phase {} (week {}): ",
        "note": {"stand-in": " (reached on stand-in data)", "planned": " (phase not written yet)",
                 "open": "", "reached": ""},
        "verified": "      verified by: ", "sep": ", ", "record": "record: ", "wrote": "wrote {}",
        "exercises": "exercises passed: {} of {}", "exercise_mark": " (E)", "colon": ": ",
    },
    "zh": {
        "legend": "[x] 已完成（完整运行通过全部自检）  [s] 在离线替代数据上完成（不是真实数据集）\n"
                  "[~] 只用 --quick 试运行过  [ ] 未开始   （E）练习已通过（`dlcourse check`）",
        "phase": "阶段 {:2d}", "week": "第 {} 周", "weeks": "第 {}-{} 周",
        "planned": "（编写中）", "planned_id": "（编写中）",
        "head": ("周", "阶段", "课程", "综合项目", "状态"),
        "capstone": {"done": "已完成", "todo": "未完成", "-": "-"},
        "state": {"complete": "已完成", "in progress": "进行中", "not started": "未开始"},
        "stand_in": "以下课程只在离线替代数据上完成（在真实数据上运行后才计入）：",
        "milestone": "里程碑（阶段 {} 结束，第 {} 周）：",
        "note": {"stand-in": "（在替代数据上达成）", "planned": "（相关阶段尚未写完）",
                 "open": "", "reached": ""},
        "verified": "      验证课程：", "sep": "、", "record": "记录文件：", "wrote": "已写入 {}",
        "exercises": "已通过的练习：{} / {}", "exercise_mark": "（E）", "colon": "：",
    },
}


def default_lang():
    """'zh' when DLCOURSE_LANG starts with zh (zh, zh_CN, zh-CN...), else 'en'."""
    return "zh" if os.environ.get("DLCOURSE_LANG", "").strip().lower().startswith("zh") else "en"


def _width(text):
    """Columns `text` takes in a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _ljust(text, width):
    return text + " " * max(0, width - _width(text))


def _rjust(text, width):
    return " " * max(0, width - _width(text)) + text


def _chinese_console():
    """A console that cannot encode Chinese (a Windows code page, a redirected cp1252 file)
    gets escapes instead of a UnicodeEncodeError traceback."""
    try:
        sys.stdout.reconfigure(errors="backslashreplace")
    except (AttributeError, ValueError):
        pass


def cmd_list(args):
    t = TEXT[args.lang]
    record = progress.load()
    for phase in syllabus.PHASES:
        first, last = phase.weeks
        weeks = t["week"].format(first) if first == last else t["weeks"].format(first, last)
        suffix = "" if phase.ready else t["planned"]
        title = phase.title_zh if args.lang == "zh" else phase.title
        print(f"{t['phase'].format(phase.number)}  {phase.folder:22s} {_ljust(weeks, 10)} "
              f"{title}{suffix}")
        if not phase.ready and not args.all:
            continue
        for lesson in phase.lessons:
            mark = STATUS_MARK[progress.status(lesson.id, record)]
            title = lesson.title_zh if args.lang == "zh" else lesson.title
            passed = t["exercise_mark"] if progress.exercise_passed(lesson.id, record) else ""
            print(f"   {mark} {lesson.id:13s} {title}{passed}")
    print("\n" + t["legend"])
    return 0


def cmd_run(args):
    lesson = syllabus.find(args.lesson)
    if lesson is None:
        raise CourseError(f"unknown lesson '{args.lesson}': see `python -m dlcourse list`")
    path = REPO / lesson.path
    if not path.exists():
        raise CourseError(f"lesson {lesson.id} is planned but not written yet ({lesson.path})")
    print(f"running {lesson.path} {' '.join(args.rest)}".rstrip(), flush=True)
    child = subprocess.Popen([sys.executable, str(path), *args.rest], cwd=REPO)
    try:
        return child.wait()
    except KeyboardInterrupt:  # Ctrl-C reached the lesson too: let it save and exit (130)
        try:
            child.wait(timeout=30)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            child.kill()
            child.wait()
        print("interrupted", file=sys.stderr, flush=True)
        return 130


def progress_rows(record):
    rows = []
    for week, items in syllabus.weeks().items():
        lessons = [i for i in items if not i.is_capstone]
        capstones = [i for i in items if i.is_capstone]
        done = sum(progress.status(i.id, record) == "done" for i in lessons)
        cap_done = all(progress.status(i.id, record) == "done" for i in capstones)
        complete = done == len(lessons) and cap_done
        started = done or any(progress.status(i.id, record) != "todo" for i in items)
        rows.append((week, sorted({i.phase for i in items}), done, len(lessons),
                     ("done" if cap_done else "todo") if capstones else "-",
                     "complete" if complete else "in progress" if started else "not started"))
    return rows


MILESTONE_MARK = {"reached": "[x]", "stand-in": "[s]", "open": "[ ]", "planned": "( )"}


def cmd_progress(args):
    t = TEXT[args.lang]
    record = progress.load()
    week, phase, lessons, capstone, status = t["head"]
    print(f"{_rjust(week, 4)}  {_rjust(phase, 5)}  {_rjust(lessons, 7)}  {_ljust(capstone, 8)}  "
          f"{status}")
    for week, phases, done, total, cap, status in progress_rows(record):
        print(f"{week:>4}  {','.join(map(str, phases)):>5}  {done:>3}/{total:<3}  "
              f"{_ljust(t['capstone'][cap], 8)}  {t['state'][status]}")
    stand_in = [i for i in syllabus.lessons() if progress.status(i.id, record) == "stand-in"]
    if stand_in:
        print(t["stand_in"] + t["sep"].join(i.id for i in stand_in))
    for m in syllabus.MILESTONES:
        state = progress.milestone_status(m, record)
        text = m.text_zh if args.lang == "zh" else m.text
        print(f"{MILESTONE_MARK[state]} {t['milestone'].format(m.phase, m.week)}{text}"
              f"{t['note'][state]}\n{t['verified']}" + t["sep"].join(
                  f"{i} {STATUS_MARK[progress.status(i, record)]}" if syllabus.find(i)
                  else f"{i}{t['planned_id']}" for i in m.verified_by))
    from dlcourse import exercises
    offered = [lesson.id for lesson, _, _ in exercises.with_exercises()]
    passed = [i for i in offered if progress.exercise_passed(i, record)]
    print(t["exercises"].format(len(passed), len(offered))
          + (f"{t['colon']}{t['sep'].join(passed)}" if passed else ""))
    print(f"{t['record']}{progress.path()}")
    if args.markdown:
        lang = args.lang
        text = ("# My progress\n\n" if lang == "en" else "# 我的学习进度\n\n") + readme.render_plan(
            lang, done=lambda lesson: progress.status(lesson.id, record) == "done")
        target = Path(args.markdown).expanduser()
        if target.is_dir():
            raise CourseError(f"--markdown {args.markdown} is a folder: give a file name, "
                              f"e.g. {target / 'PROGRESS.md'}")
        try:
            progress.atomic_write_text(target, text)
        except OSError as err:
            raise CourseError(f"cannot write {args.markdown}: {err.strerror or err}") from None
        print(t["wrote"].format(args.markdown))
    return 0


def cmd_doctor(args):
    failures = warnings = 0

    def line(level, text):
        nonlocal failures, warnings
        failures += level == "FAIL"
        warnings += level == "WARN"
        print(f"[{level}] {text}")

    new_enough = sys.version_info >= (3, 11)
    line("OK" if new_enough else "FAIL", f"Python {platform.python_version()} ({sys.executable})"
         + ("" if new_enough else ": the course needs 3.11 or newer"))
    for name in ["torch", "torchvision", "numpy", "pandas", "matplotlib", "sklearn", "tqdm",
                 "mnist1d", "statsmodels", "transformers", "datasets", "pytest"]:
        try:
            module = importlib.import_module(name)
            line("OK", f"{name} {getattr(module, '__version__', '(version unknown)')}")
        except Exception as err:  # an import can fail in many ways; report each
            line("FAIL", f"{name} does not import: {type(err).__name__}: {shorten(err)}"
                         " -> pip install -r requirements.txt")
    try:
        import torch

        from dlcourse import device
        line("OK", f"CPU: {torch.get_num_threads()} torch threads")
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                line("OK", f"CUDA device {i}: {torch.cuda.get_device_name(i)} "
                           f"(CUDA {torch.version.cuda})")
        else:
            line("WARN", "no CUDA GPU: lessons run on CPU (slower full runs, --quick unaffected)")
        if device._mps_available():
            line("OK", "Apple MPS available")
        line("OK", f"lessons will use: {device.describe(device.pick(args.device))}")
    except CourseError as err:
        line("FAIL", str(err))
    except ImportError:
        pass
    try:
        folder = data.root()
        probe = folder / ".doctor-write-test"
        probe.write_text("ok")
        probe.unlink()
        cached = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        line("OK", f"data folder {folder} is writable; holds: {', '.join(cached) or 'nothing yet'}")
    except OSError as err:
        line("FAIL", f"data folder not writable: {err}")
    progress.load()  # reports (and keeps aside) a corrupt record
    line("OK", f"progress record {progress.path()}")
    if data.offline_mode():
        line("WARN", "DLCOURSE_OFFLINE is set: lessons use offline stand-ins")
    hf = data.hf_host()  # HF_ENDPOINT's mirror when set, else huggingface.co
    hosts = sorted({s.host for s in data.SOURCES.values()} | {hf})
    with ThreadPoolExecutor(len(hosts)) as pool:  # probe in parallel: seconds, not minutes
        answers = dict(zip(hosts, pool.map(data.network_available, hosts)))
    for host in hosts:
        ok = answers[host]
        proxy = data.proxy_for(host)
        via = f" through proxy {data.without_password(proxy)}" if proxy else ""
        role = " (Hugging Face models and data sets, from HF_ENDPOINT)" if (
            host == hf and os.environ.get("HF_ENDPOINT")) else ""
        line("OK" if ok else "WARN", f"network: {host}{role} {'reachable' if ok else 'NOT reachable'}"
             f"{via}" + ("" if ok else " (lessons fall back to offline data)"))
    if failures:
        verdict = f"{failures} problem(s) to fix" + (f" and {warnings} warning(s)" if warnings
                                                     else "") + " above"
    elif warnings:
        verdict = (f"ready to run lessons, with {warnings} warning(s) above (what they limit "
                   "is said on each line)")
    else:
        verdict = "all good"
    print("doctor: " + verdict)
    return 1 if failures else 0


def official_files(name):
    """(address, file, checksum) of each file a data set is made from, as its source
    publishes it: the course's own sha256, or the md5/sha256 torchvision and scikit-learn check."""
    source = data.SOURCES[name]
    if source.via == "url":
        return [(source.url, Path(source.url).name, f"sha256 {source.sha256}")]
    try:
        if name == "mnist":
            from torchvision.datasets import MNIST
            return [(MNIST.mirrors[0] + f, f, f"md5 {md5}") for f, md5 in MNIST.resources]
        if name == "cifar10":
            from torchvision.datasets import CIFAR10
            return [(CIFAR10.url, CIFAR10.filename, f"md5 {CIFAR10.tgz_md5}")]
        if name == "california_housing":
            from sklearn.datasets._california_housing import ARCHIVE
            return [(ARCHIVE.url, ARCHIVE.filename, f"sha256 {ARCHIVE.checksum}")]
    except (ImportError, AttributeError) as err:  # a library version that moved its table
        return [("(see the library)", "?", f"unknown here: {shorten(err)}")]
    return [(data.TITANIC_CSV_URL, "phpMYEkMl.csv (OpenML 40945 as CSV)",
             "no checksum published: checked by header, 1309 rows, 500 survivors")]


def cmd_prefetch(args):
    if args.list or not args.names:
        for s in data.SOURCES.values():
            print(f"{s.name:20s} via {s.via:12s} {s.description}  [{s.used_by}]")
            if args.list:
                for address, file, checksum in official_files(s.name):
                    print(f"    {address}\n        file {file}  {checksum}")
        if args.list:
            print(f"\ndata folder: {data.root()}  (DLCOURSE_DATA changes it); a file downloaded "
                  "by hand goes in with:\n    python -m dlcourse data import NAME FILE")
            return 0
    names = args.names or list(data.SOURCES)
    unknown = [n for n in names if n not in data.SOURCES]
    if unknown:
        raise CourseError(f"unknown data set(s): {', '.join(unknown)}; see `prefetch --list`")
    if data.offline_mode():
        raise CourseError("DLCOURSE_OFFLINE is set: unset it to download")
    failed = 0
    for name in names:
        via = data.SOURCES[name].via
        if via == "url":
            got = data.fetch(name)
        elif via == "torchvision":
            got = data.torchvision_dataset(name, train=True) and data.torchvision_dataset(
                name, train=False)
        elif name == "titanic":
            got = data.titanic()
        else:
            got = data.california_housing()
        print(f"[{'OK' if got is not None else 'FAIL'}] {name}")
        failed += got is None
    return 1 if failed else 0


def cmd_data_import(args):
    from dlcourse import data_import

    for said in data_import.import_data(args.name, args.files):
        print(said)
    return 0


def cmd_exercise(args):
    from dlcourse import exercises

    if args.list:
        record = progress.load()
        for lesson, parts, questions in exercises.with_exercises():
            mark = "(E)" if progress.exercise_passed(lesson.id, record) else "   "
            what = [f"{len(parts)} part{'s' * (len(parts) != 1)}: " + ", ".join(p.name for p in parts)
                    ] if parts else []
            if questions:
                what.append(f"{len(questions)} question{'s' * (len(questions) != 1)}")
            print(f"{mark} {lesson.id:13s} {'; '.join(what)}")
        print(f"\nworkspace: {exercises.workspace()}  (E) = passed")
        return 0
    if not args.lesson:
        raise CourseError("which lesson? e.g. `python -m dlcourse exercise 02.03` "
                          "(`exercise --list` shows them)")
    path, parts, questions, kept = exercises.start(args.lesson, reset=args.reset)
    lesson = syllabus.find(args.lesson)
    if kept == "exists":
        print(f"your copy is already there: {path}\nit was not overwritten. Carry on editing it, "
              f"or start again from the blank copy with `python -m dlcourse exercise {lesson.id} "
              "--reset` (your copy is kept beside it as a .bak file)")
        return 1
    if kept:
        print(f"kept your previous copy as {kept}")
    print(f"wrote {path}")
    for p in parts:
        print(f"  part {p.name} (line {p.start + 2}): {p.hint}")
    for q in questions:
        print(f"  question {q.name} ({' / '.join(q.options)}): {q.question}")
    print(f"write each part between its '# EXERCISE' and '# END EXERCISE' lines"
          + (" and answer each question after its '# ANSWER' line" if questions else "")
          + f", then: python -m dlcourse check {lesson.id}")
    return 0


def cmd_check(args):
    from dlcourse import exercises

    return exercises.check(args.lesson)


def cmd_readme(args):
    changed = readme.update(REPO, check_only=args.check)
    verb = "out of date" if args.check else "updated"
    print(f"{verb}: {', '.join(changed)}" if changed else "READMEs are up to date")
    return 1 if changed and args.check else 0


def build_parser():
    p = argparse.ArgumentParser(prog="dlcourse", description="The deep-learning course's helper.")
    sub = p.add_subparsers(dest="command", required=True)
    lang_help = "language of the output: en or zh (default: $DLCOURSE_LANG, else en)"
    s = sub.add_parser("list", help="phases and lessons with status")
    s.add_argument("--all", action="store_true", help="also list planned phases' lessons")
    s.add_argument("--lang", choices=LANGS, default=default_lang(), help=lang_help)
    s.set_defaults(fn=cmd_list)
    s = sub.add_parser("run", help="run one lesson: dlcourse run 01.03 --quick")
    s.add_argument("lesson")
    s.add_argument("rest", nargs=argparse.REMAINDER, help="flags passed to the lesson")
    s.set_defaults(fn=cmd_run)
    s = sub.add_parser("progress", help="week-by-week progress")
    s.add_argument("--markdown", metavar="FILE", help="write a ticked checklist to FILE")
    s.add_argument("--lang", choices=LANGS, default=default_lang(), help=lang_help)
    s.set_defaults(fn=cmd_progress)
    s = sub.add_parser("doctor", help="check the installation")
    s.add_argument("--device", default=None)
    s.set_defaults(fn=cmd_doctor)
    s = sub.add_parser("prefetch", help="download data sets ahead of time")
    s.add_argument("names", nargs="*")
    s.add_argument("--list", action="store_true")
    s.set_defaults(fn=cmd_prefetch)
    s = sub.add_parser("data", help="data sets: `data import NAME FILE` places a hand download")
    data_sub = s.add_subparsers(dest="data_command", required=True)
    d = data_sub.add_parser("import", help="check a file downloaded by hand and put it where "
                                           "the lessons look (see `prefetch --list`)")
    d.add_argument("name", help="tinyshakespeare, mnist, cifar10, california_housing, titanic")
    d.add_argument("files", nargs="+", metavar="FILE",
                   help="the file(s) as downloaded, or a folder holding them")
    d.set_defaults(fn=cmd_data_import)
    s = sub.add_parser("exercise", help="start an exercise: your copy of a lesson's parts to write")
    s.add_argument("lesson", nargs="?", help="lesson id, e.g. 02.03")
    s.add_argument("--reset", action="store_true",
                   help="start again from the blank copy (the old copy is kept as a .bak file)")
    s.add_argument("--list", action="store_true", help="the lessons that have exercises")
    s.set_defaults(fn=cmd_exercise)
    s = sub.add_parser("check", help="grade your copy of an exercise (runs it with --quick)")
    s.add_argument("lesson", help="lesson id, e.g. 02.03")
    s.set_defaults(fn=cmd_check)
    s = sub.add_parser("readme", help="regenerate the README plans")
    s.add_argument("--check", action="store_true", help="only report; exit 1 if out of date")
    s.set_defaults(fn=cmd_readme)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if getattr(args, "lang", None) == "zh":   # list and progress print Chinese
        _chinese_console()
    try:
        return args.fn(args)
    except CourseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `dlcourse list | head -1`: the reader left; that is fine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the exit-time flush cannot fail again
        return 0


if __name__ == "__main__":
    sys.exit(main())
