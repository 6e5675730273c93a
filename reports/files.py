"""Atomic output files: a reader never sees a half-written page.

The implementation is the project's one atomic-write helper, :func:`feeds.files.atomic_path`.
"""
from __future__ import annotations

from feeds.files import atomic_path

__all__ = ["atomic_path"]
