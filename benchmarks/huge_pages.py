"""Torch's CPU allocator with and without huge pages (``THP_MEM_ALLOC_ENABLE``), A/B.

Torch hands each training step's activations back to the kernel and faults them in again on
the next step, a 4 KB page at a time. With ``THP_MEM_ALLOC_ENABLE=1`` its allocator aligns
allocations of 2 MB and more to huge pages and advises the kernel to back them with huge pages
(where ``/sys/kernel/mm/transparent_hugepage/enabled`` allows ``madvise``), so one fault
covers 2 MB. Torch reads the variable once, at its first allocation, so each side runs in a
fresh interpreter; the sides alternate (off, on, on, off, ...) so that drift in the machine's
speed falls on both.

The measured work is the training of ``configs/walk_forward.yaml``'s first fold (a 2 × 64 LSTM
by default, the real-data walk-forward's size, though the config itself serves 2 × 128; batch
1,000, the purged time split, validation every 20 steps) for ``--steps`` steps on the default
synthetic market, without early stopping; ``--hidden 400`` gives the study's model.
Per run: the fit's wall seconds, user and system CPU seconds, minor page faults and the
process's peak RSS; then the median of each side and the ratio off / on.

    python benchmarks/huge_pages.py [--pairs 2] [--steps 100] [--hidden 64]
    python benchmarks/huge_pages.py --whole-run configs/oos_2016.yaml --set output.cache_dir=DIR

With ``--whole-run`` it times the main command instead (``benchmarks/stages.py``'s harness:
wall, CPU seconds of the command and its workers), each side with the variable set for it.

Nothing else may run meanwhile: the point is the ratio on one machine.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stages import one_run  # noqa: E402
from benchmarks.under_load import cpu_model  # noqa: E402

VARIABLE = "THP_MEM_ALLOC_ENABLE"


def child(steps: int, hidden: int) -> None:
    """Fit in this process (the variable as the parent set it) and print one JSON line."""
    from feeds.synthetic import make_market
    import pipeline.run  # noqa: F401  (registers the config sections)
    from pipeline.config import load_config
    from pipeline.train import signal_spec
    from signals import fit

    panel = make_market(0).panel
    # the walk-forward config's first fold, its budget run out: no early stop, no refit, one seed
    config = load_config(ROOT / "configs" / "walk_forward.yaml",
                         [f"model.hidden={hidden}", f"train.steps={steps}", "train.patience=null",
                          "train.refit=none", "train.ensemble=1", "device=cpu"])
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    fit(panel, config.dates.train_start, config.dates.train_end, signal_spec(config), baseline=False,
        composite=False, progress=False)
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall": wall, "user": after.ru_utime - before.ru_utime, "sys": after.ru_stime - before.ru_stime,
                      "faults": after.ru_minflt - before.ru_minflt, "peak_rss_mb": after.ru_maxrss / 1024}))


def run_fit(enabled: bool, steps: int, hidden: int) -> dict:
    env = {**os.environ, VARIABLE: "1" if enabled else "0"}
    command = [sys.executable, __file__, "--child", "--steps", str(steps), "--hidden", str(hidden)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: the child failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_whole(enabled: bool, config: str, overrides: list[str], folder: Path, index: int) -> dict:
    run = one_run(config, overrides, folder / f"run{index}", env={VARIABLE: "1" if enabled else "0"})
    return {"wall": run["wall"], "cpu": run["cpu"], "train": run["timings"]["train"],
            "total": run["timings"]["total"], "peak_rss_mb": run["peak_rss_mb"], "cached": run["cached"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=2, help="runs per side")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--whole-run", metavar="CONFIG", help="time the main command on CONFIG instead")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="with --whole-run: passed to the main command's --set")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.steps, args.hidden)
        return 0
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    print(f"cpu: {cpu_model()}; {len(os.sched_getaffinity(0))} available; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; transparent_hugepage: "
          f"{thp.read_text().strip() if thp.exists() else 'n/a'}")
    work = (f"main command: {args.whole_run}" + "".join(f" --set {o}" for o in args.overrides) if args.whole_run
            else f"fit: 2 x {args.hidden} LSTM, {args.steps} steps")
    print(work)
    order = [i % 4 in (1, 2) for i in range(2 * args.pairs)]  # off, on, on, off, ...
    runs = {False: [], True: []}
    with tempfile.TemporaryDirectory() as folder:
        for index, enabled in enumerate(order):
            run = (run_whole(enabled, args.whole_run, args.overrides, Path(folder), index) if args.whole_run
                   else run_fit(enabled, args.steps, args.hidden))
            runs[enabled].append(run)
            print(f"{VARIABLE}={int(enabled)}: " + ", ".join(
                f"{key} {value:,.0f}" if key == "faults" else f"{key} {value}" if isinstance(value, bool)
                else f"{key} {value:.1f}" for key, value in run.items()))
    keys = [k for k in runs[False][0] if not isinstance(runs[False][0][k], bool)]
    print("\nmedian      " + "".join(f"{k:>14}" for k in keys))
    medians = {side: {k: statistics.median(r[k] for r in runs[side]) for k in keys} for side in (False, True)}
    for side in (False, True):
        print(f"{VARIABLE}={int(side)}" + "".join(f"{medians[side][k]:>14,.1f}" for k in keys))
    print("off / on    " + "".join(f"{medians[False][k] / medians[True][k]:>13.2f}x" if medians[True][k] else
                                   f"{'n/a':>14}" for k in keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
