"""Compare two run directories: every number of their metrics.json, and their predictions.csv.

    python benchmarks/compare_runs.py runs/before runs/after

Prints how many numbers were compared, the largest absolute difference and where, every key
present on one side only, and whether predictions.csv is identical byte for byte. Timings, the
cache key and whether the model came from the cache are skipped (they differ between any two runs).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

SKIP = ("timings", "checks.model_key", "model_cached")


def compare(a, b, path: str = "", diffs=None, only=None):
    """``(diffs, only)``: ``(|a - b|, path, a, b)`` for every number, and the other differences."""
    diffs = [] if diffs is None else diffs
    only = [] if only is None else only
    if any(s in path for s in SKIP):
        return diffs, only
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                only.append(f"{path}.{key} (only in {'the second' if key in b else 'the first'})")
            else:
                compare(a[key], b[key], f"{path}.{key}", diffs, only)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for k, (x, y) in enumerate(zip(a, b)):
            compare(x, y, f"{path}[{k}]", diffs, only)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if not (math.isnan(a) and math.isnan(b)):
            diffs.append((abs(a - b), path, a, b))
    elif a != b:
        only.append(f"{path}: {a!r} != {b!r}")
    return diffs, only


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    args = parser.parse_args(argv)
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (args.first, args.second)]
    diffs, only = compare(*metrics)
    worst = max(diffs, default=(0.0, "-", None, None))
    print(f"metrics.json: {len(diffs)} numbers compared; max |diff| {worst[0]:.3g} at {worst[1]}")
    for line in only[:20]:
        print(f"  {line}")
    same = (args.first / "predictions.csv").read_bytes() == (args.second / "predictions.csv").read_bytes()
    print(f"predictions.csv: {'identical' if same else 'different'}")
    return 0 if same and not only and worst[0] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
