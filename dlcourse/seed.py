"""Seeding: one call covers Python's random, NumPy and torch (CPU and every GPU).

For DataLoaders, pass `generator=seed.generator(s)` and `worker_init_fn=seed.worker_init`
so shuffling and per-worker randomness repeat too.
"""
import os
import random

import numpy as np


def seed_everything(seed, deterministic=False, use_torch=True):
    """Seed random, numpy and (unless use_torch=False) torch. `deterministic=True` also asks
    torch for deterministic kernels (slower; raises where an op has none).
    use_torch=False keeps NumPy-only lessons from paying torch's import time."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if not use_torch:
        return seed
    import torch
    torch.manual_seed(seed)  # also seeds every CUDA and MPS device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    return seed


def generator(seed):
    """A torch.Generator for DataLoader(shuffle=True, generator=...)."""
    import torch

    g = torch.Generator()
    g.manual_seed(seed)
    return g


def worker_init(worker_id):
    """DataLoader worker_init_fn: derive numpy/random seeds from torch's per-worker seed."""
    import torch

    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)
