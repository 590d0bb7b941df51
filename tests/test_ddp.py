"""The shared training loop works unchanged under torchrun/DDP (2 CPU processes, gloo)."""
import json
import subprocess
import sys

from conftest import REPO, offline_env


def test_fit_under_torchrun_two_processes(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(REPO / "tests" / "ddp_worker.py"), str(tmp_path)]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=180,
                            env=offline_env(tmp_path))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == 2
    assert ranks[0]["weights"] == ranks[1]["weights"]            # DDP kept replicas in sync
    assert ranks[0]["history"]["train_loss"] == ranks[1]["history"]["train_loss"]  # averaged
    assert ranks[0]["history"]["train_loss"][-1] < ranks[0]["history"]["train_loss"][0]
    assert (tmp_path / "ddp.pt").exists()                         # saved once, by rank 0
