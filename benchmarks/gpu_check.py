"""GPU end to end: the default main command on CUDA, and CUDA predictions against the CPU's.

For a developer with a CUDA machine (CI has none). It

1. runs ``run_backtest.py --config configs/oos_2016.yaml --set device=cuda --retrain`` in a
   child process and reports its wall time, per-stage timings (metrics.json) and peak RSS;
2. loads the run's ``model.pt`` twice, serves one copy on the CPU and one on CUDA, and compares
   ``predict_panel`` on the decision months and the strategy's per-month ``predict`` (one
   history) — the issue's bar is 1e-5;
3. exits 1 when CUDA is missing, the run fails or the predictions differ by more than ``--tol``.

    python benchmarks/gpu_check.py [--output /tmp/gpu_check] [--tol 1e-5]

On the project's lent GPU machine (no backtrader, quantstats or empyrical there), first run
``../shared/tools/device-wheels.sh`` here, then on the device, with ``.whl`` carried::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \\
      && cp .whl/py/*.py /tmp/site/ && export PYTHONPATH=/tmp/site:. \\
      && python3 benchmarks/gpu_check.py --output "$OUT/gpu_check"
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "oos_2016.yaml"))
    parser.add_argument("--output", default="/tmp/gpu_check")
    parser.add_argument("--tol", type=float, default=1e-5)
    parser.add_argument("--device", default="cuda", help="cpu only checks this script itself (CPU against CPU)")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 1
    print(f"device: {torch.cuda.get_device_name(0) if args.device == 'cuda' else 'cpu'}; torch {torch.__version__}")
    run_dir = Path(args.output) / "run"
    start = time.perf_counter()
    child = subprocess.run([sys.executable, str(ROOT / "run_backtest.py"), "--config", args.config, "--output",
                            str(run_dir), "--set", f"device={args.device}", "--set", f"output.cache_dir={Path(args.output) / 'cache'}",
                            "--retrain", "--quiet"], cwd=ROOT)
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if child.returncode != 0:
        print(f"main command failed (exit {child.returncode})")
        return 1
    metrics = json.loads((run_dir / "metrics.json").read_text())
    print(f"main command on {args.device}: {wall:.1f} s wall, peak RSS {peak_mb:.0f} MB; stages (s): "
          + ", ".join(f"{k} {v:.1f}" for k, v in metrics["timings"].items()))

    import pipeline.run  # noqa: F401  (registers the signal's config sections)
    from pipeline.config import load_config
    from pipeline.data import load_data
    from pipeline.predict import decision_dates
    from signals import SignalModel

    config = load_config(args.config)
    cpu = SignalModel.load(run_dir / "model.pt").to("cpu")
    panel = load_data(config, cpu.window, ROOT).panel
    dates = decision_dates(config, panel)
    gpu = SignalModel.load(run_dir / "model.pt").to(args.device)
    t0 = time.perf_counter()
    on_gpu = gpu.predict_panel(panel, dates)
    gpu_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    on_cpu = cpu.predict_panel(panel, dates)
    cpu_seconds = time.perf_counter() - t0
    cols = ["p_down", "p_neutral", "p_up"]
    panel_diff = float(np.abs(on_gpu[cols].to_numpy() - on_cpu[cols].to_numpy()).max())
    last = int(panel.dates.get_indexer([dates[-1]])[0])
    history = panel.take(rows=slice(last - cpu.window + 1, last + 1))
    month_diff = float(np.nanmax(np.abs(gpu.predict(history) - cpu.predict(history))))
    print(f"predict_panel {len(dates)} months: {args.device} {gpu_seconds:.2f} s, cpu {cpu_seconds:.2f} s; "
          f"max |{args.device} - cpu| = {panel_diff:.2e}; per-month predict max |diff| = {month_diff:.2e} (tol {args.tol:g})")
    return 0 if max(panel_diff, month_diff) <= args.tol else 1


if __name__ == "__main__":
    sys.exit(main())
