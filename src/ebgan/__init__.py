"""ebgan: energy-based generative adversarial networks and the GAN family on one trainer.

The Python API mirrors the CLI::

    from ebgan import from_preset, apply_overrides, resolve, train, sample_from_run
    cfg = resolve(apply_overrides(from_preset("ring"), {"steps": 2000}))
    summary = train(cfg, "runs/ring")
    points = sample_from_run("runs/ring", n=2500)          # float32 [2500, 2]

Anomaly detection with the learned energy: ``from ebgan import EnergyDetector`` (``ebgan.anomaly``).
"""

__version__ = "0.1.0"

from .anomaly import EnergyDetector, score_run  # noqa: E402
from .config import PRESETS, Config, apply_overrides, from_preset, resolve  # noqa: E402
from .data import Dataset, load_dataset  # noqa: E402
from .errors import EbganError  # noqa: E402
from .sampling import load_generator, sample_from_run  # noqa: E402
from .train import Trainer, train  # noqa: E402

__all__ = [
    "Config",
    "PRESETS",
    "apply_overrides",
    "from_preset",
    "resolve",
    "Dataset",
    "load_dataset",
    "EbganError",
    "load_generator",
    "sample_from_run",
    "Trainer",
    "train",
    "EnergyDetector",
    "score_run",
    "__version__",
]
