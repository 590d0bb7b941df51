"""Shared test helpers: run a lesson the way a learner would, but offline, headless,
with a private output folder and progress record."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def offline_env(tmp_path, **extra):
    """Environment for a lesson subprocess: offline, headless, private progress file."""
    env = dict(os.environ)
    env.update({
        "DLCOURSE_OFFLINE": "1",          # the course's switch: never touch the network
        "MPLBACKEND": "Agg",              # headless figures
        "DLCOURSE_PROGRESS": str(tmp_path / "progress.json"),
        "DLCOURSE_DATA": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",           # pytest-xdist already uses every core
        "MKL_NUM_THREADS": "1",
        "OMP_WAIT_POLICY": "PASSIVE",     # idle threads sleep instead of spinning on a busy CPU
        "TQDM_DISABLE": "1",
    })
    env.pop("DLCOURSE_DEVICE", None)
    if os.environ.get("DLCOURSE_TEST_DEVICE"):  # e.g. run every lesson on cuda: see docs/SETUP.md
        env["DLCOURSE_DEVICE"] = os.environ["DLCOURSE_TEST_DEVICE"]
    env.update(extra)
    return env


def run_script(path, args, tmp_path, timeout=240, **env_extra):
    """Run `python path args...` from the course folder; return CompletedProcess."""
    return subprocess.run([sys.executable, str(REPO / path), *args], cwd=REPO,
                          env=offline_env(tmp_path, **env_extra), capture_output=True,
                          text=True, timeout=timeout)


def gpu_available():
    try:
        import torch
    except ImportError:
        return False
    mps = getattr(torch.backends, "mps", None)
    return torch.cuda.is_available() or bool(mps and mps.is_available())


def pytest_collection_modifyitems(config, items):
    from dlcourse import data

    skip_gpu = pytest.mark.skip(reason="needs a CUDA or MPS device")
    skip_net = pytest.mark.skip(reason="needs the network (offline or unreachable)")
    has_gpu = gpu_available()
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip_gpu)
        if "network" in item.keywords and (data.offline_mode() or not data.network_available(
                "raw.githubusercontent.com")):
            item.add_marker(skip_net)
