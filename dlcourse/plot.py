"""Headless-safe figures: always the non-interactive Agg backend, saved into the run's
output folder. Lessons never call plt.show(); they save and print the path.
"""
import os

import matplotlib

if not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")  # no window needed: works over SSH, in CI and in tests

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def save(fig, run, name, dpi=110):
    """Save `fig` as run.out_dir/name, close it, print and return the path."""
    path = run.out_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    print(f"figure: {path}", flush=True)
    return path
