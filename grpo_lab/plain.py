"""Plain values: what JSON and YAML can hold, and the round trip of random-generator states.

Why one module: metrics arrive as numpy scalars or 0-d tensors, configs as dataclasses with Paths
and tuples, and checkpoints hold the states of Python's and numpy's generators (tuples with
arrays inside); json and yaml.safe_dump reject all of those. Every conversion goes through here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np


def to_plain(obj: Any) -> Any:
    """Configs, metrics and states as JSON/YAML-safe values (dicts, lists, str, int, float, bool, None)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_plain(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "item") and getattr(obj, "ndim", 0) == 0:  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def random_state_to_json(state: tuple) -> list:
    """`random.Random.getstate()` as a JSON list: [version, [625 ints], gauss]."""
    version, internal, gauss = state
    return [version, list(internal), gauss]


def random_state_from_json(state: list) -> tuple:
    """The inverse of `random_state_to_json`, ready for `random.Random.setstate`."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def numpy_state_to_json(state: tuple) -> list:
    """`np.random.get_state()` as a JSON list."""
    name, keys, pos, has_gauss, cached = state
    return [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]


def numpy_state_from_json(state: list) -> tuple:
    """The inverse of `numpy_state_to_json`, ready for `np.random.set_state`."""
    name, keys, pos, has_gauss, cached = state
    return (name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached)
