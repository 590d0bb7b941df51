"""Choose the device a lesson runs on: CUDA, then Apple MPS, then CPU.

`--device` or the environment variable DLCOURSE_DEVICE overrides the automatic choice.
`--device npu` (Huawei Ascend) works where the torch_npu plugin is installed and sees a
device; it is never chosen automatically (see docs/SETUP.md).
An unknown or unavailable device is a CourseError (one line, exit 2), never a traceback.
"""
import os
import re

from dlcourse import CourseError, shorten

CHOICES = "auto, cpu, cuda, cuda:N, mps, npu or npu:N"


def validate(requested=None):
    """Check a device name's spelling without importing torch (for lessons that don't use it)."""
    name = (requested or os.environ.get("DLCOURSE_DEVICE") or "auto").strip().lower()
    if name not in {"auto", "cpu", "mps"} and not re.fullmatch(r"(cuda|npu)(?::\d+)?", name):
        raise CourseError(f"unknown device '{name}': choose {CHOICES}")
    return name


def pick(requested=None):
    """Return a torch.device. `requested` is None/'auto' or a device string."""
    import torch

    name = validate(requested)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise CourseError("device 'mps' is not available here (needs Apple silicon and a torch "
                              "build with MPS); use --device cpu")
        return torch.device("mps")
    index = int(name.partition(":")[2] or 0)  # validate() left 'cuda[:N]' or 'npu[:N]'
    if name.startswith("npu"):
        return _npu(name, index)
    if not torch.cuda.is_available():
        raise CourseError(f"device '{name}' is not available here (torch {torch.__version__} "
                          "sees no CUDA GPU); use --device cpu")
    if index >= torch.cuda.device_count():
        raise CourseError(f"device '{name}' does not exist: this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s)")
    return torch.device(name)


def _npu(name, index):
    """An Ascend NPU through torch_npu, which adds torch.npu and the 'npu' device type."""
    import torch

    try:
        import torch_npu  # noqa: F401  (importing it registers the device with torch)
    except ImportError:
        raise CourseError(f"device '{name}' needs torch_npu, Huawei Ascend's PyTorch plugin, "
                          "which is not installed (see docs/SETUP.md); use --device cpu") from None
    except Exception as err:  # a plugin built for another torch fails in many ways
        raise CourseError(f"device '{name}': torch_npu does not load with torch "
                          f"{torch.__version__}: {type(err).__name__}: {shorten(err)}") from None
    count = torch.npu.device_count() if torch.npu.is_available() else 0
    if index >= count:
        raise CourseError(f"device '{name}' is not available: torch_npu sees {count} NPU(s)")
    return torch.device(name)


def describe(device):
    """A short human description, e.g. 'cuda (NVIDIA H100 80GB HBM3)'."""
    import torch

    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    if device.type == "npu":
        return f"{device} (Ascend NPU)"
    return f"cpu ({torch.get_num_threads()} threads)"


def synchronize(device):
    """Wait for queued GPU work, so that wall-clock timings are honest."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
    elif device.type == "npu":
        torch.npu.synchronize(device)


def _mps_available():
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())
