"""Metrics: inception score, the EBGAN paper's modified score, FID on classifier features, 2-D mixture and
Stacked MNIST mode counts, AUROC; the MNIST classifier they are computed with; and a registry
(:data:`METRICS`, :func:`list_metrics`) so the CLI can list the valid names.
"""

from .classifier import (
    LoadedClassifier,
    MnistClassifier,
    MnistMLP,
    load_classifier,
)
from .scores import (
    METRICS,
    GaussianStats,
    Metric,
    auroc,
    count_modes_2d,
    frechet_distance,
    gaussian_stats,
    get_metric,
    inception_score,
    list_metrics,
    paper_inception_score,
    stacked_mnist_modes,
)
from .training import train_classifier

__all__ = [
    "METRICS",
    "GaussianStats",
    "LoadedClassifier",
    "Metric",
    "MnistClassifier",
    "MnistMLP",
    "auroc",
    "count_modes_2d",
    "frechet_distance",
    "gaussian_stats",
    "get_metric",
    "inception_score",
    "list_metrics",
    "load_classifier",
    "paper_inception_score",
    "stacked_mnist_modes",
    "train_classifier",
]
