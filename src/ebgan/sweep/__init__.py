"""Sweeps: the paper's robustness experiment (and any grid of settings) as resumable sets of ordinary runs.

``ebgan sweep GRID --out DIR`` / :func:`run_sweep` expand a grid (:mod:`ebgan.sweep.grid`), train and score
every setting with the ordinary trainer and metrics (:mod:`ebgan.sweep.worker`) on a local process pool or
Ray (:mod:`ebgan.sweep.backends`), append one row per setting to ``DIR/results.jsonl``
(:mod:`ebgan.sweep.store`) and write ``DIR/report.md`` (:mod:`ebgan.sweep.report`). This package drives the
trainer; nothing below it imports it.
"""

from .grid import GRIDS, METHODS, load_grid
from .run import SweepFailed, SweepIncomplete, SweepInterrupted, describe_grid, load_results, run_sweep

__all__ = [
    "GRIDS",
    "METHODS",
    "SweepFailed",
    "SweepIncomplete",
    "SweepInterrupted",
    "describe_grid",
    "load_grid",
    "load_results",
    "run_sweep",
]
