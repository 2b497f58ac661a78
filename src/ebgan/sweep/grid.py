"""Grids of settings: the paper's named grids, grid files, expansion into settings and seeded subsets.

A grid is a base configuration (a preset plus fixed fields) and, per method, lists of values per config
field; its settings are the Cartesian product of those lists. A *method* is a loss with its fixed fields:
``gan`` (the non-saturating GAN that practical GAN code trains, the paper's baseline; ``gan-minimax`` is the
saturating one), ``ebgan`` (no pulling-away term), ``ebgan-pt`` (pulling-away term 0.1), or any other loss
name of ``ebgan list`` with its defaults.

The pseudo-field ``lr`` sets ``lr_g`` and ``lr_d`` together (the paper's grid has one learning rate per run).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import reprlib
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..config import PRESETS, Config, apply_overrides, from_preset, resolve, validate
from ..errors import EbganError
from ..losses import LOSSES

# The fixed fields that make a method out of a loss.
METHODS: dict[str, dict[str, Any]] = {
    "gan": {"loss": "nsgan"},
    "gan-minimax": {"loss": "gan"},
    "ebgan": {"loss": "ebgan", "pt_weight": 0.0},
    "ebgan-pt": {"loss": "ebgan", "pt_weight": 0.1},
}

PSEUDO_FIELDS = {"lr": ("lr_g", "lr_d")}

# One epoch of MNIST's 60,000 training images at batch 64 (the budget per run of paper-mnist here; the paper
# does not give its own). Justified in BENCHMARKS.md (robustness): the preset's best setting reaches IS ~6
# by then, so a setting that trains is told apart from one that does not.
EPOCH_STEPS = 938

_ARCH = {
    "g_layers": [2, 3, 4, 5],
    "d_layers": [2, 3, 4, 5],
    "g_size": [400, 800, 1600, 3200],
    "d_size": [128, 256, 512, 1024],
    "d_dropout": [0.5, 0.0],
}
_EBGAN_OPT = {"optim_g": ["adam"], "optim_d": ["adam"], "lr": [1e-3], "margin": [10.0]}

# Named grids. PAPER.md s.1 (the paper's Table 1 and Fig. 9). dropoutD "true" is a rate the paper does not
# give: 0.5, the usual rate of its time. Everything outside the grid comes from the `mnist` preset (batch 64,
# batch norm, Adam beta1 0.5, a linear learning-rate decay over the second half of the run, bf16 autocast
# where native), the same for every method.
GRIDS: dict[str, dict[str, Any]] = {
    "paper-mnist": {
        "description": "the paper's MNIST robustness grid (Table 1): EBGAN 512 settings, GAN 6144",
        "preset": "mnist",
        "steps": EPOCH_STEPS,
        "base": {},
        "grid": _ARCH,
        "methods": {
            "gan": {"optim_d": ["adam", "sgd"], "optim_g": ["adam", "sgd"], "lr": [1e-2, 1e-3, 1e-4]},
            "ebgan": dict(_EBGAN_OPT),
            "ebgan-pt": dict(_EBGAN_OPT),
        },
        "default_methods": ["gan", "ebgan", "ebgan-pt"],
    },
    "paper-margin": {
        "description": "the paper's margin sweep (Fig. 9): m in 1..32 at nLayerG 5, nLayerD 2, sizeG 1600, sizeD 1024",
        "preset": "mnist",
        "steps": EPOCH_STEPS,
        "base": {
            "g_layers": 5,
            "d_layers": 2,
            "g_size": 1600,
            "d_size": 1024,
            "d_dropout": 0.0,
            "optim_g": "adam",
            "optim_d": "adam",
            "lr": 1e-3,
        },
        "grid": {},
        "methods": {
            "ebgan": {"margin": [1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0]},
            "ebgan-pt": {"margin": [1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0]},
        },
        "default_methods": ["ebgan", "ebgan-pt"],
    },
}

_SPEC_KEYS = {"description", "preset", "steps", "base", "grid", "methods", "default_methods"}

# Bounds on what a grid may ask for: the paper's largest grid has 6,144 settings per method, and each setting is
# expanded and its config validated before a sweep starts (100,000 take about 100 MB and a few seconds).
MAX_SETTINGS = 100_000
MAX_GRID_FILE_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class Setting:
    """One run of a sweep: a method and the values of the grid's fields."""

    method: str
    values: dict[str, Any]

    @property
    def setting_id(self) -> str:
        """A stable name: the first 10 hex digits of the SHA-1 of the method and its values."""
        text = json.dumps({"method": self.method, **self.values}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:10]


def method_fields(method: str) -> dict[str, Any]:
    if method in METHODS:
        return dict(METHODS[method])
    if method in LOSSES:
        return {"loss": method}
    names = list(METHODS) + sorted(set(LOSSES) - {"ebgan", "gan"})
    raise EbganError(f"unknown method {method!r}; choose from {', '.join(names)}")


def _known_field(key: str) -> bool:
    return key in PSEUDO_FIELDS or key in {f.name for f in dataclasses.fields(Config)}


def _check_fields(d: dict[str, Any], where: str) -> None:
    if not isinstance(d, dict):
        raise EbganError(f"{where} must be a mapping of config fields, got {type(d).__name__}")
    for key in d:
        if not isinstance(key, str) or not _known_field(key):
            raise EbganError(f"unknown field {_short(key)} in {where} (every field: `ebgan list --config`)")


def _as_list(v: Any, where: str = "grid") -> list[Any]:
    """The values of one field: a list, or a single value; every value a scalar (a config field's value)."""
    values = list(v) if isinstance(v, (list, tuple)) else [v]
    for x in values:
        _check_scalar(x, where)
    return values


def _check_scalar(x: Any, where: str) -> None:
    if not (x is None or isinstance(x, (bool, int, float, str))):
        raise EbganError(
            f"{where}: {_short(x)} is not a value a config field takes (a number, text, true/false or null)"
        )


def load_grid(grid: str | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A grid's name (or file path) and its normalised specification, from a name, a JSON/YAML file or a dict.

    A file holds either ``{"preset", "steps", "base", "grid", "methods"}`` (all optional but one of ``grid``
    / ``methods``), or a bare mapping of field -> list of values (the shared grid). Raises EbganError naming
    the problem (unknown grid, unknown field, empty grid, unreadable file).
    """
    if isinstance(grid, dict):
        name, raw = "custom", grid
    elif grid in GRIDS:
        return grid, _normalise(GRIDS[grid], grid)
    else:
        path = Path(grid)
        if path.suffix.lower() not in (".json", ".yaml", ".yml"):
            raise EbganError(f"unknown grid {grid!r}: a name ({', '.join(GRIDS)}) or a .json/.yaml file")
        if not path.is_file():
            raise EbganError(f"grid file {grid} does not exist")
        if path.stat().st_size > MAX_GRID_FILE_BYTES:
            raise EbganError(
                f"grid file {grid} is {path.stat().st_size:,} bytes; a grid is a few lines (limit "
                f"{MAX_GRID_FILE_BYTES:,})"
            )
        try:
            text = path.read_text()
            if path.suffix.lower() == ".json":
                raw = json.loads(text)
            else:
                try:
                    import yaml
                except ImportError:
                    raise EbganError(
                        f"{grid} is YAML: install PyYAML (pip install pyyaml) or write it as JSON"
                    ) from None
                try:
                    raw = yaml.safe_load(text)
                except Exception as e:  # noqa: BLE001 - PyYAML also raises OverflowError, RecursionError, ...
                    raise ValueError(" ".join(str(e).split()) or type(e).__name__) from None
        except (OSError, ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise EbganError(f"grid file {grid} is unreadable: {str(e)[:300] or type(e).__name__}") from None
        name = str(path)
    if not isinstance(raw, dict):
        raise EbganError(f"grid {name} must be a mapping, got {type(raw).__name__}")
    if not (set(raw) & _SPEC_KEYS):  # the bare form: field -> values
        raw = {"grid": raw}
    return name, _normalise(raw, name)


def _normalise(raw: dict[str, Any], name: str) -> dict[str, Any]:
    extra = set(raw) - _SPEC_KEYS
    if extra:
        raise EbganError(
            f"grid {name}: unknown key {sorted(map(repr, extra))[0]} (keys: preset, steps, base, grid, methods)"
        )
    preset = raw.get("preset", "mnist")
    if not isinstance(preset, str) or preset not in PRESETS:
        raise EbganError(f"grid {name}: unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    base = raw.get("base") or {}
    _check_fields(base, f"grid {name} (base)")
    base = dict(base)
    for k, v in base.items():
        _check_scalar(v, f"grid {name} (base {k})")
    shared = raw.get("grid") or {}
    _check_fields(shared, f"grid {name}")
    shared = {k: _as_list(v, f"grid {name} ({k})") for k, v in shared.items()}
    defaults = raw.get("default_methods")
    if defaults is not None and (not isinstance(defaults, list) or not all(isinstance(m, str) for m in defaults)):
        raise EbganError(f"grid {name}: default_methods must be a list of method names, got {_short(defaults)}")
    methods_raw = raw.get("methods")
    if methods_raw is None:
        methods_raw = {m: {} for m in (defaults if defaults is not None else ["gan", "ebgan", "ebgan-pt"])}
    if not isinstance(methods_raw, dict) or not methods_raw:
        raise EbganError(f"grid {name}: methods must be a non-empty mapping of method -> fields")
    methods = {}
    for m, fields in methods_raw.items():
        if not isinstance(m, str):
            raise EbganError(f"grid {name}: a method name must be text, got {_short(m)}")
        method_fields(m)  # a known method
        fields = fields or {}
        _check_fields(fields, f"grid {name} (method {m})")
        methods[m] = {k: _as_list(v, f"grid {name} (method {m}, {k})") for k, v in fields.items()}
    for where, axes in [("grid", shared)] + [(f"method {m}", f) for m, f in methods.items()]:
        empty = [k for k, v in axes.items() if not v]
        if empty:
            raise EbganError(f"grid {name} is empty: {where} has no values for {empty[0]!r}")
    steps = raw.get("steps")
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
        raise EbganError(f"grid {name}: steps must be a positive integer, got {_short(steps)}")
    for m, fields in methods.items():
        axes = {**shared, **fields}
        n = math.prod(len(v) for v in axes.values())
        if n > MAX_SETTINGS:
            raise EbganError(
                f"grid {name}: method {m} has {n:,} settings, more than the limit of {MAX_SETTINGS:,} "
                f"(sample a grid that large in several grids, or use fewer values)"
            )
    return {
        "preset": preset,
        "steps": steps,
        "base": base,
        "grid": shared,
        "methods": methods,
        "default_methods": list(defaults or methods),
    }


_REPR = reprlib.Repr()  # keyword arguments need Python 3.12
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 40, 40


def _short(v: Any) -> str:
    """A short repr, bounded however large ``v`` is (a YAML file's aliases can nest lists of millions)."""
    text = _REPR.repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def expand(spec: dict[str, Any], method: str) -> list[Setting]:
    """Every setting of ``method`` in the grid, in a fixed order (fields sorted by name, values as given)."""
    method_fields(method)  # a known method at all
    if method not in spec["methods"]:
        raise EbganError(f"the grid has no settings for method {method!r} (its methods: {', '.join(spec['methods'])})")
    axes = {**spec["grid"], **spec["methods"][method]}
    keys = sorted(axes)
    return [Setting(method, dict(zip(keys, combo))) for combo in itertools.product(*(axes[k] for k in keys))]


def sample(settings: list[Setting], k: int | None, seed: int) -> list[Setting]:
    """The first ``k`` settings of a permutation seeded by ``seed`` and the method (all of them for None).

    Subsets are nested: the sample of ``k`` is the start of the sample of ``k + 1``, so a larger ``--sample``
    extends a sweep rather than replacing it.
    """
    if k is None:
        return list(settings)
    if k < 1:
        raise EbganError(f"--sample must be at least 1, got {k}")
    if not settings:
        return []
    rng = np.random.default_rng([seed, zlib.crc32(settings[0].method.encode())])
    order = rng.permutation(len(settings))
    return [settings[i] for i in order[:k]]


def config_for(spec: dict[str, Any], setting: Setting, steps: int, seed: int) -> Config:
    """The full, validated configuration of one setting's run."""
    fields: dict[str, Any] = {}
    for k, v in {**spec["base"], **method_fields(setting.method), **setting.values}.items():
        if k in PSEUDO_FIELDS:
            for real in PSEUDO_FIELDS[k]:
                fields[real] = v
        else:
            fields[k] = v
    fields.update(steps=steps, seed=seed)
    # One sample grid and a checkpoint at the end (a checkpoint every 250 steps bounds what a kill loses).
    fields.setdefault("sample_every", steps)
    fields.setdefault("ckpt_every", min(250, steps))
    fields.setdefault("keep_checkpoints", 1)
    cfg = resolve(apply_overrides(from_preset(spec["preset"]), fields))
    validate(cfg)
    return cfg
