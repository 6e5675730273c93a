"""Checkpoint files: one ``torch.save``d dict of plain types and tensors.

The file holds everything needed to serve the model without the training code's
state: the state dict, the model, window, preprocessing and label settings, the class
order, factor names and order, styles, training dates, the full configuration, the
seed, library versions and a SHA-256 fingerprint of the training panel. Only plain
types and tensors go in, so it loads with ``torch.load(weights_only=True)``, which
never runs code from the file: a pickle carrying code is refused, not executed.

Integrity: the file also carries ``digest``, a SHA-256 of every tensor (dtype, shape and
bytes) and every setting in it, recomputed on load. A flipped byte in tensor data, an
edited setting (``window`` 12 → 3) or a tensor swapped in from another file is refused, and
so are weights that hold NaN or infinity. The digest detects damage and casual edits; it is
not a signature (whoever can write the file can recompute it).
"""
from __future__ import annotations

import hashlib
import io
import platform
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from feeds.errors import UserError
from feeds.files import write_bytes_atomic

FORMAT = "lstm-tercile-signal"
FORMAT_VERSION = 2  # 2: carries ``digest``
REQUIRED_KEYS = ("format", "format_version", "digest", "state_dict", "model", "window", "preprocess", "labels",
                 "classes", "factor_names", "styles")


class CheckpointError(UserError):
    """A file is not a usable signal checkpoint, or does not fit the data it is used on."""


def save_checkpoint(payload: dict, path) -> Path:
    """Write ``payload`` with its digest atomically (temporary file, then rename); return the path."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION,
               **{k: v for k, v in payload.items() if k != "digest"}}
    payload["digest"] = payload_digest(payload)
    return torch_save_atomic(payload, path)


def torch_save_atomic(obj, path) -> Path:
    """``torch.save`` to memory, then write the bytes to a temporary file renamed onto ``path``.

    Serialising in memory first means a full disk raises the operating system's ``OSError``
    (ENOSPC) instead of torch's opaque zip-writer error, and no partial file is left behind.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_bytes_atomic(path, buffer.getbuffer())


def payload_digest(payload) -> str:
    """SHA-256 over a checkpoint's contents except ``digest``: keys (sorted), plain values and
    every tensor's dtype, shape and bytes."""
    digest = hashlib.sha256()

    def feed(value):
        if isinstance(value, dict):
            digest.update(b"{")
            for key in sorted(value, key=str):
                if key != "digest":
                    feed(str(key))
                    feed(value[key])
            digest.update(b"}")
        elif isinstance(value, (list, tuple)):
            digest.update(b"[")
            for item in value:
                feed(item)
            digest.update(b"]")
        elif isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous().reshape(-1)
            digest.update(f"<tensor {tensor.dtype} {tuple(value.shape)}>".encode())
            digest.update(memoryview(tensor.view(torch.uint8).numpy()))
        else:
            digest.update(f"<{type(value).__name__} {value!r}>".encode())

    feed(payload)
    return digest.hexdigest()


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
    recorded = payload.pop("digest")
    if recorded != payload_digest(payload):
        raise CheckpointError(f"{path}: tampered or corrupted checkpoint (inconsistent with its SHA-256 digest)")
    if not isinstance(payload["state_dict"], dict):
        raise CheckpointError(f"{path}: inconsistent checkpoint (state_dict is not a mapping)")
    for name, tensor in payload["state_dict"].items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: weight '{name}' holds NaN or infinite values")
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
