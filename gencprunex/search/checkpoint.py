"""Search checkpoints: the whole search state after a generation, written atomically, read back to resume.

The file is a pickle of plain data and pygmo objects (population and algorithm, whose random states make a
resumed search continue exactly where it stopped); it holds no Keras object. A fingerprint of the model, the
data and the search parameters guards against resuming a different search.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CheckpointError
from ..saving import write_bytes_atomic

FORMAT = 1


@dataclass
class SearchState:
    """Everything needed to continue a search: where it is and what it has learnt."""

    fingerprint: str
    token: str
    generation: int
    population: object
    algorithm: object
    scores: dict = field(default_factory=dict)  # genes -> score
    order: list = field(default_factory=list)  # genes in the order they were first scored
    history: list = field(default_factory=list)  # one dict per generation
    evaluations: int = 0
    eval_seconds: float = 0.0
    search_seconds: float = 0.0


def save(path: str | os.PathLike, state: SearchState) -> None:
    """Write ``state`` to ``path`` atomically (a temporary file in the same folder, then a rename)."""
    payload = pickle.dumps({"format": FORMAT, "state": state}, protocol=pickle.HIGHEST_PROTOCOL)
    write_bytes_atomic(Path(path), payload)


def load(path: str | os.PathLike, fingerprint: str) -> SearchState | None:
    """The state saved at ``path`` (None when there is no file); :class:`CheckpointError` if it is not ours."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with open(path, "rb") as handle:
            payload = pickle.load(handle)
        state = payload["state"]
        version = payload["format"]
    except Exception as error:  # a truncated or foreign file: say so in one line
        raise CheckpointError(f"checkpoint '{path}' cannot be read ({type(error).__name__}: {error})") from None
    if version != FORMAT or not isinstance(state, SearchState):
        raise CheckpointError(f"checkpoint '{path}' was written by another version of gencprunex")
    if state.fingerprint != fingerprint:
        raise CheckpointError(
            f"checkpoint '{path}' belongs to a different search (model, data or search parameters differ); "
            "delete it or pass another checkpoint path"
        )
    return state


def fingerprint(model, arrays: list[np.ndarray], parameters: dict) -> str:
    """A hash of the model (architecture and weights), the data and the parameters that shape the search."""
    digest = hashlib.sha256()
    digest.update(model.to_json().encode())
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(str((array.shape, array.dtype.str)).encode())
        digest.update(array.tobytes())
    digest.update(json.dumps(parameters, sort_keys=True, default=repr).encode())
    return digest.hexdigest()
