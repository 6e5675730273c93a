"""The trained-model cache: one verified entry per model key, written atomically.

An entry ``<cache_root>/<key>/`` holds the LSTM (``model.pt``), the two baselines
(``baseline.pt``, ``composite.pt``), what training left for the report (``training.pt``) and
``entry.json`` = ``{"key": ..., "files": {name: sha256}}``. It is served only when it names the
key asked for and every file matches its digest; anything else is an error the caller turns
into a retrain.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from signals import CheckpointError, SignalModel
from signals.checkpoint import torch_save_atomic

from .output import os_error, publishable, staging_directory, unlock

CACHE_ENTRY = "entry.json"
MODEL_FILES = ("model.pt", "baseline.pt", "composite.pt")


@dataclass
class SignalBundle:
    """The trained models and what training left for the report."""

    signal: SignalModel  # or a signals.WalkForwardSignal: one model per fold
    baseline: SignalModel
    composite: SignalModel | None = None
    training: dict = field(default_factory=dict)  # history, snapshots, validation figures
    cached: bool = False
    key: str = ""

    @property
    def served(self) -> dict:
        """``{"model": ..., "baseline": ..., "composite": ...}``: every model the run predicts with."""
        return {"model": self.signal, "baseline": self.baseline, "composite": self.composite}

    @property
    def selection(self) -> dict:
        """How training chose the served model, for metrics.json (the run's and each fold's):
        the selected step, the refit's record and, for ensembles, each seed's."""
        return {key: self.training.get(key) for key in ("best_step", "refit", "members")}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_bundle(cache: Path, key: str) -> SignalBundle:
    """The cached models under ``cache`` if they are exactly what ``key`` names, else a
    :class:`signals.CheckpointError`."""
    try:
        entry = json.loads((cache / CACHE_ENTRY).read_text(encoding="utf-8"))
        files = dict(entry["files"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"no valid {CACHE_ENTRY} ({type(exc).__name__})") from None
    if entry.get("key") != key:
        raise CheckpointError(f"it holds the model of key {entry.get('key')!r}, not {key}")
    for name in (*MODEL_FILES, "training.pt"):
        if name not in files or sha256(cache / name) != files[name]:
            raise CheckpointError(f"{name} is not the file that was cached under this key")
    signal, baseline, composite = (SignalModel.load(cache / name) for name in MODEL_FILES)
    return SignalBundle(signal, baseline, composite, load_training(cache / "training.pt"), cached=True, key=key)


def store_bundle(cache_root: Path, key: str, bundle: SignalBundle, replace: bool = False) -> None:
    """Cache ``bundle`` under ``key`` (see :func:`store_entry`)."""
    writers = {name: model.save for name, model in zip(MODEL_FILES, bundle.served.values())}
    writers["training.pt"] = lambda path: save_training(bundle.training, path)
    store_entry(cache_root, key, writers, replace=replace)


def store_entry(cache_root: Path, key: str, writers: dict, replace: bool = False) -> None:
    """Write a cache entry in a private, locked staging directory and rename it into place.

    Two runs of the same key never mix files: if another run published the entry meanwhile,
    its complete entry is kept and this one discarded. With ``replace`` (the entry this run
    found was unusable, or ``--retrain``) an existing entry is replaced. The cache is an
    optimisation: a full or read-only disk is one warning line and the run goes on (its own
    outputs then say whether they could be written).
    """
    cache = cache_root / key
    staging = lock = None
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        staging, lock = staging_directory(cache_root, f".{key}.", ".tmp", key=key)
        for name, write in writers.items():
            write(staging / name)
        entry = {"key": key, "files": {name: sha256(staging / name) for name in writers}}
        (staging / CACHE_ENTRY).write_text(json.dumps(entry, indent=1), encoding="utf-8")
        publishable(staging)
        if replace and cache.exists():  # move it aside: a rename onto a full directory fails
            aside = Path(tempfile.mkdtemp(prefix=f".{key}.old-", suffix=".tmp", dir=cache_root))
            try:
                os.replace(cache, aside)
            except OSError:
                pass  # gone already, or being replaced by a concurrent run
            shutil.rmtree(aside, ignore_errors=True)
        try:
            os.replace(staging, cache)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise  # else: a concurrent run of the same key published first; keep its entry
    except OSError as exc:
        warnings.warn(f"the trained model was not cached ({os_error(exc, 'model cache')}); the run goes on")
    finally:
        if staging is not None and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        unlock(lock)


def save_training(training: dict, path: Path) -> None:
    """``training`` (frames and snapshot arrays included) as a ``weights_only``-loadable file."""
    payload = {k: v for k, v in training.items() if k not in ("history", "baseline_history", "snapshots")}
    for name in ("history", "baseline_history"):
        frame = training[name]
        payload[name] = None if frame is None else {c: frame[c].tolist() for c in frame.columns}
    payload["snapshots"] = [{"step": int(s["step"]), "weight": torch.as_tensor(np.asarray(s["weight"])),
                             "bias": torch.as_tensor(np.asarray(s["bias"]))} for s in training["snapshots"]]
    torch_save_atomic(payload, path)


def load_training(path: Path) -> dict:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    for name in ("history", "baseline_history"):
        payload[name] = None if payload[name] is None else pd.DataFrame(payload[name])
    payload["snapshots"] = [{"step": s["step"], "weight": s["weight"].numpy(), "bias": s["bias"].numpy()}
                            for s in payload["snapshots"]]
    return payload
