"""Semi-supervised MNIST (the EBGAN paper's Table 2): a Ladder Network, and EBGAN-LN, the Ladder as the
discriminator of an energy-based GAN.

    from ebgan.semisup import SemisupConfig, semisup
    result = semisup(SemisupConfig(labels=100, model="ebgan-ln"), "runs/ln100")   # result["test_error"] in %

The CLI is ``ebgan semisup``. This package uses the project's checkpoints, run folders, progress and threads;
nothing outside it imports it.
"""

from .ladder import LAYERS, Ladder, MLPGenerator, combinator
from .recipe import (
    DEFAULT_STEPS,
    MODELS,
    VARIANTS,
    WEIGHTS,
    SemisupConfig,
    labelled_subset,
    load_semisup_data,
    resolve_semisup,
)
from .run import SemisupDiverged, semisup

__all__ = [
    "LAYERS",
    "Ladder",
    "MLPGenerator",
    "combinator",
    "DEFAULT_STEPS",
    "MODELS",
    "VARIANTS",
    "WEIGHTS",
    "SemisupConfig",
    "labelled_subset",
    "load_semisup_data",
    "resolve_semisup",
    "SemisupDiverged",
    "semisup",
]
