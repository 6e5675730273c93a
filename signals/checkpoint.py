"""Checkpoint files: one ``torch.save``d dict of plain types and tensors.

The file holds everything needed to serve the model without the training code's
state: the state dict, the model, window, preprocessing and label settings, the class
order, factor names and order, styles, training dates, the full configuration, the
seed, library versions and a SHA-256 fingerprint of the training panel. Only plain
types and tensors go in, so it loads with ``torch.load(weights_only=True)``, which
never runs code from the file: a pickle carrying code is refused, not executed.
"""
from __future__ import annotations

import hashlib
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from feeds.errors import UserError

FORMAT = "lstm-tercile-signal"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "state_dict", "model", "window", "preprocess", "labels",
                 "classes", "factor_names", "styles")


class CheckpointError(UserError):
    """A file is not a usable signal checkpoint, or does not fit the data it is used on."""


def save_checkpoint(payload: dict, path) -> Path:
    """Write ``payload`` atomically (temporary file, then rename) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path) -> dict:
    """Read and check a checkpoint; raise :class:`CheckpointError` for anything else.

    Raises
    ------
    CheckpointError
        Missing file, not a torch file, a pickle with code or unknown types (refused by
        ``weights_only=True``), truncated or garbled bytes, or a dict that lacks the
        checkpoint's keys.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for bad files
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
        # torch's weights-only refusal puts the actual reason on a later line.
        reason = next((ln for ln in lines if "WeightsUnpickler error" in ln), lines[0] if lines else type(exc).__name__)
        raise CheckpointError(f"{path} is not a signal checkpoint (cannot be loaded safely: {reason[:200]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a signal checkpoint (no '{FORMAT}' format tag)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {payload.get('format_version')!r}; "
                              f"this version reads {FORMAT_VERSION}")
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"{path} is an incomplete signal checkpoint (missing '{missing[0]}')")
    return payload


def panel_fingerprint(panel) -> str:
    """SHA-256 of a panel's dates, codes, factor names and arrays (factors, ret, listed, industry, mcap)."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(d.strftime("%Y-%m-%d") for d in panel.dates).encode())
    digest.update("\x1f".join(panel.codes).encode())
    digest.update("\x1f".join(panel.factor_names).encode())
    for array in (panel.factors, panel.ret, panel.listed, panel.industry, panel.mcap):
        if array is not None:
            digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))  # no copy of the arrays
    return digest.hexdigest()


def library_versions() -> dict:
    """Versions of the libraries that produced a checkpoint (plain strings)."""
    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "pandas": pd.__version__}


def plain(value):
    """``value`` as plain Python types (what ``weights_only`` loading accepts); arrays become tensors."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value).copy())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, (pd.Timestamp,)):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, str):
        return str(value)  # str subclasses (torch's TorchVersion) are globals the safe loader refuses
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if value is None:
        return None
    return str(value)
