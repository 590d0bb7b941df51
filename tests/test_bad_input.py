"""A learner's mistakes give one clear line and a non-zero exit, never a traceback, and
nothing they produced is lost."""
import json
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO, offline_env, run_script
from dlcourse import syllabus

TORCH_LESSON = "phase04-mlp/02-mlp-basic.py"        # trains, takes --epochs and --device
NUMPY_LESSON = "phase01-python-ds/01-numpy-basics.py"


def assert_one_line_error(result, code=2, contains=""):
    assert result.returncode == code, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr
    assert contains in result.stderr, result.stderr


@pytest.mark.parametrize("lesson", [TORCH_LESSON, NUMPY_LESSON])
def test_unknown_device(lesson, tmp_path):
    result = run_script(lesson, ["--quick", "--device", "tpu", "--out", str(tmp_path)], tmp_path)
    assert_one_line_error(result, contains="unknown device 'tpu'")


def test_unavailable_device(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run_script(TORCH_LESSON, ["--quick", "--device", "cuda", "--out", str(tmp_path)],
                        tmp_path)
    assert_one_line_error(result, contains="not available")


HEAVY = ("torch", "torchvision", "pandas", "sklearn", "scipy", "matplotlib",
         "statsmodels", "transformers", "datasets")


def test_flags_are_checked_before_heavy_imports(tmp_path):
    """Every lesson parses its flags before it imports torch & co., so a mistyped flag is
    answered at once (numpy is allowed: the course's own cli needs it, and it loads in
    a tenth of a second). Run each lesson with those libraries blocked (importing one raises
    ImportError) and an unknown flag: it must stop with argparse's exit 2 first."""
    paths = [lesson.path for lesson in syllabus.lessons(ready_only=False)
             if (REPO / lesson.path).exists()]
    probe = textwrap.dedent(f"""
        import json, runpy, sys
        for name in {HEAVY!r}:
            sys.modules[name] = None   # 'import name' now raises ImportError
        outcome = {{}}
        for path in sys.argv[1:]:
            sys.argv = [path, "--no-such-flag"]
            try:
                runpy.run_path(path, run_name="__main__")
                outcome[path] = "ran to the end"
            except SystemExit as stop:
                outcome[path] = stop.code
            except ImportError as err:
                outcome[path] = f"imported {{err.name}} before checking its flags"
        print(json.dumps(outcome))
    """)
    result = subprocess.run([sys.executable, "-c", probe, *paths], cwd=REPO,
                            env=offline_env(tmp_path), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    wrong = {path: code for path, code in outcome.items() if code != 2}
    assert not wrong, wrong
    assert result.stderr.count("unrecognized arguments: --no-such-flag") == len(paths)


@pytest.mark.parametrize("epochs", ["0", "-1", "three"])
def test_bad_epochs(epochs, tmp_path):
    result = run_script(TORCH_LESSON, ["--quick", "--epochs", epochs], tmp_path)
    assert_one_line_error(result, contains="--epochs")


def test_output_folder_that_is_a_file(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("mine")
    result = run_script(NUMPY_LESSON, ["--quick", "--out", str(target)], tmp_path)
    assert_one_line_error(result, contains="not a folder")
    assert target.read_text() == "mine"


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated zip"])
def test_corrupt_checkpoint(content, tmp_path):
    """Each says in one line what is wrong with the file, never PyTorch's text cut short."""
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    result = run_script("phase03-pytorch/10-model-save-load.py",
                        ["--quick", "--resume-from", str(bad), "--out", str(tmp_path / "o")],
                        tmp_path)
    assert_one_line_error(result, contains="is not a file written by torch.save, or it was cut "
                                           f"short ({len(content)} bytes)")
    assert len(result.stderr.strip().splitlines()) == 1
    assert bad.read_bytes() == content  # the learner's file is left as it was


def test_missing_checkpoint(tmp_path):
    result = run_script("phase03-pytorch/10-model-save-load.py",
                        ["--quick", "--resume-from", str(tmp_path / "nope.pt"),
                         "--out", str(tmp_path / "o")], tmp_path)
    assert_one_line_error(result, contains="not found")


def test_corrupt_progress_file_is_kept_and_the_run_still_records(tmp_path):
    record = tmp_path / "progress.json"
    record.write_text("{ this is not json")
    result = run_script(NUMPY_LESSON, ["--quick", "--out", str(tmp_path / "o")], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "could not be read" in result.stdout
    kept = list(tmp_path.glob("progress.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text() == "{ this is not json"
    assert "01.01" in json.loads(record.read_text())["runs"]
