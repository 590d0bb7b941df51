"""`python -m dlcourse` commands: list, run, progress (--markdown), doctor, prefetch, readme."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, offline_env
from dlcourse import readme, syllabus


def dlcourse(tmp_path, *args, **env):
    env.setdefault("DLCOURSE_LANG", "")  # English unless a test asks for Chinese
    return subprocess.run([sys.executable, "-m", "dlcourse", *args], cwd=REPO, text=True,
                          capture_output=True, env=offline_env(tmp_path, **env), timeout=240)


def test_list_shows_every_ready_lesson(tmp_path):
    result = dlcourse(tmp_path, "list")
    assert result.returncode == 0
    for lesson in syllabus.lessons():
        assert lesson.id in result.stdout


def test_run_records_progress_and_progress_reports_it(tmp_path):
    result = dlcourse(tmp_path, "run", "01.01", "--quick", "--out", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr
    assert "checks:" in result.stdout
    record = json.loads((tmp_path / "progress.json").read_text())
    assert record["runs"]["01.01"]["quick"] is not None
    table = dlcourse(tmp_path, "progress")
    assert table.returncode == 0 and "in progress" in table.stdout
    listing = dlcourse(tmp_path, "list")
    assert "[~] 01.01" in listing.stdout  # tried with --quick only


def test_progress_markdown_ticks_done_lessons(tmp_path):
    (tmp_path / "progress.json").write_text(json.dumps({"runs": {
        "01.01": {"full": {"when": "now", "checks": 3, "seconds": 1, "metrics": {}},
                  "quick": None},
        "01.02": {"full": None, "quick": {"when": "now", "checks": 3, "seconds": 1,
                                          "metrics": {}}}}}))
    out = tmp_path / "PROGRESS.md"
    result = dlcourse(tmp_path, "progress", "--markdown", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "- [x] `01.01`" in text and "- [ ] `01.02`" in text
    zh = tmp_path / "zh.md"
    assert dlcourse(tmp_path, "progress", "--markdown", str(zh), "--lang", "zh").returncode == 0
    assert "我的学习进度" in zh.read_text()


def test_run_unknown_lesson_is_a_one_line_error(tmp_path):
    result = dlcourse(tmp_path, "run", "99.99")
    assert result.returncode == 2 and "unknown lesson" in result.stderr
    assert "Traceback" not in result.stderr


def test_doctor_reports_and_passes_offline(tmp_path):
    result = dlcourse(tmp_path, "doctor")
    assert result.returncode == 0, result.stdout
    assert "[OK] torch" in result.stdout and "DLCOURSE_OFFLINE is set" in result.stdout


def test_doctor_counts_its_warnings_instead_of_saying_all_good(tmp_path):
    result = dlcourse(tmp_path, "doctor")
    warnings = result.stdout.count("[WARN]")
    assert warnings >= 1  # offline here: at least the DLCOURSE_OFFLINE line
    assert "all good" not in result.stdout
    assert f"with {warnings} warning(s)" in result.stdout


def test_doctor_fails_on_an_unknown_device(tmp_path):
    result = dlcourse(tmp_path, "doctor", "--device", "tpu")
    assert result.returncode == 1 and "[FAIL] unknown device" in result.stdout


def test_prefetch_lists_sources_and_refuses_offline(tmp_path):
    listing = dlcourse(tmp_path, "prefetch", "--list")
    assert listing.returncode == 0 and "tinyshakespeare" in listing.stdout
    result = dlcourse(tmp_path, "prefetch", "tinyshakespeare")
    assert result.returncode == 2 and "DLCOURSE_OFFLINE" in result.stderr
    result = dlcourse(tmp_path, "prefetch", "nosuchset", DLCOURSE_OFFLINE="")
    assert result.returncode == 2 and "unknown data set" in result.stderr


def test_readme_check_passes_on_a_clean_tree(tmp_path):
    assert readme.update(REPO, check_only=True) == []
    assert dlcourse(tmp_path, "readme", "--check").returncode == 0


def test_import_dlcourse_is_light():
    code = ("import sys, dlcourse, dlcourse.cli, dlcourse.check, dlcourse.syllabus; "
            "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'sklearn') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_numpy_only_lessons_do_not_import_torch(tmp_path):
    """Phase 1 never needs torch: its lessons must not pay torch's import time."""
    code = ("import sys, runpy; sys.argv = ['x', '--quick', '--out', sys.argv[1]]; "
            "import dlcourse.cli as cli; args = cli.parser().parse_args(sys.argv[1:]); "
            f"cli.start(args, {str(REPO / 'phase01-python-ds' / '01-numpy-basics.py')!r}, "
            "use_torch=False); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, env=offline_env(tmp_path))
    assert out.stdout.strip().endswith("False"), out.stdout + out.stderr


def test_ctrl_c_under_run_exits_130_without_a_traceback(tmp_path):
    """Ctrl-C in a terminal reaches the whole process group: dlcourse and the lesson."""
    slow = "03.09"  # trains for a while in full mode
    child = subprocess.Popen([sys.executable, "-m", "dlcourse", "run", slow, "--out",
                              str(tmp_path / "o")], cwd=REPO, env=offline_env(tmp_path),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    deadline = time.time() + 120
    header = ""
    while time.time() < deadline and "outputs:" not in header:  # the lesson has started
        header += child.stdout.readline()
    time.sleep(1.0)
    os.killpg(child.pid, signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, header + out + err
    assert "Traceback" not in err and "interrupted" in err, err


def test_list_into_a_pipe_that_closes_early(tmp_path):
    result = subprocess.run(f"'{sys.executable}' -m dlcourse list --all | head -1", shell=True,
                            cwd=REPO, env=offline_env(tmp_path, DLCOURSE_LANG=""),
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("Phase  1")
    assert "Traceback" not in result.stderr and "Broken pipe" not in result.stderr, result.stderr


@pytest.mark.parametrize("target", ["folder", "unwritable"])
def test_progress_markdown_to_a_bad_path_is_one_line(target, tmp_path):
    if target == "folder":
        path, expect = tmp_path, "is a folder"
    else:
        if os.geteuid() == 0 or sys.platform == "win32":
            path, expect = tmp_path / "a-file" / "PROGRESS.md", "cannot write"
            (tmp_path / "a-file").write_text("x")   # its parent is a file: root cannot write
        else:
            locked = tmp_path / "locked"
            locked.mkdir(mode=0o500)
            path, expect = locked / "PROGRESS.md", "cannot write"
    result = dlcourse(tmp_path, "progress", "--markdown", str(path))
    assert result.returncode == 2 and expect in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [["list"], ["progress"]])
def test_progress_of_the_wrong_shape_does_not_crash_commands(command, tmp_path):
    (tmp_path / "progress.json").write_text('{"runs": {"01.01": "bad"}}')
    result = dlcourse(tmp_path, *command)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "kept it as" in result.stdout
    assert list(tmp_path.glob("progress.json.corrupt-*"))


def test_list_and_progress_show_stand_in_runs(tmp_path):
    record = {"runs": {"03.capstone": {"full": None, "quick": None, "full_stand_in": {
        "when": "now", "checks": 3, "seconds": 1, "metrics": {}, "stand_in_for": ["MNIST"]}}}}
    (tmp_path / "progress.json").write_text(json.dumps(record))
    listing = dlcourse(tmp_path, "list")
    assert "[s] 03.capstone" in listing.stdout and "stand-in" in listing.stdout
    table = dlcourse(tmp_path, "progress")
    assert "done on offline stand-in data only" in table.stdout and "03.capstone" in table.stdout


ENGLISH_WORDS = re.compile(r"\b(week|phase|lessons?|capstone|status|done|todo|to do|tried|"
                           r"complete|in progress|not started|milestone|verified by|planned|"
                           r"stand-in|record|reached)\b", re.IGNORECASE)


def chinese_record(tmp_path):
    """A record with a lesson in every state: done, done on stand-in data, tried."""
    run = {"when": "now", "checks": 3, "seconds": 1, "metrics": {}}
    (tmp_path / "progress.json").write_text(json.dumps({"runs": {
        "01.01": {"full": run, "quick": None, "full_stand_in": None},
        "03.capstone": {"full": None, "quick": None,
                        "full_stand_in": {**run, "stand_in_for": ["MNIST"]}},
        "01.02": {"full": None, "quick": run, "full_stand_in": None}}}))


def english_left(text):
    """English words in `text`, leaving out lesson ids (01.capstone), phase folders
    (phase01-python-ds), the record's path and the `--quick` flag, which stay as they are."""
    text = re.sub(r"\b\d\d\.\w+|phase\d\d-[\w-]+|--quick|\S*progress\.json", "", text)
    return ENGLISH_WORDS.findall(text)


@pytest.mark.parametrize("how", ["flag", "env"])
def test_list_in_chinese(how, tmp_path):
    chinese_record(tmp_path)
    args, env = (["--lang", "zh"], {}) if how == "flag" else ([], {"DLCOURSE_LANG": "zh"})
    result = dlcourse(tmp_path, "list", "--all", *args, **env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for phase in syllabus.PHASES:
        assert phase.title_zh in out
    for lesson in syllabus.lessons(ready_only=False):
        assert f"{lesson.id:13s} {lesson.title_zh}" in out, lesson.id
    assert "[x] 01.01" in out and "[s] 03.capstone" in out and "[~] 01.02" in out
    assert "阶段  1" in out and "第 1 周" in out and "已完成" in out and "未开始" in out
    assert not english_left(out), english_left(out)


@pytest.mark.parametrize("how", ["flag", "env"])
def test_progress_in_chinese(how, tmp_path):
    chinese_record(tmp_path)
    args, env = (["--lang", "zh"], {}) if how == "flag" else ([], {"DLCOURSE_LANG": "zh_CN"})
    result = dlcourse(tmp_path, "progress", *args, **env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for m in syllabus.MILESTONES:
        assert m.text_zh in out and m.text not in out
    assert "进行中" in out and "里程碑" in out and "验证课程" in out
    assert "只在离线替代数据上完成" in out and "03.capstone" in out
    assert not english_left(out), english_left(out)


def test_lang_en_overrides_dlcourse_lang(tmp_path):
    listing = dlcourse(tmp_path, "list", "--lang", "en", DLCOURSE_LANG="zh")
    assert listing.stdout.startswith("Phase  1") and "阶段" not in listing.stdout
    table = dlcourse(tmp_path, "progress", "--lang", "en", DLCOURSE_LANG="zh")
    assert "milestone" in table.stdout and "里程碑" not in table.stdout
