"""The main command's stages, timed run after run, against what the machine's cores allow.

Runs ``run_backtest.py --config CONFIG`` ``--runs`` times in fresh interpreters (the model
cache of ``output.cache_dir``: the first run trains if nothing is cached, and is reported but
left out of the summary then) and prints, per run, every stage's seconds from
``metrics.json → timings``, the wall time, the CPU seconds of the command and its worker
processes, their peak RSS, and — from ``/proc/stat`` before and after (Linux) — the
core-seconds the machine left idle while it ran. Then the median of the cached runs and two
limits on these cores:

* **CPU floor**: the CPU seconds of the whole command ÷ the cores, what perfect packing of the
  same work would take (a cached run's training is the model's load; start-up is included);
* **idle**: the core-seconds nobody used while it ran, the most that better overlap of the
  same work could still give back (÷ the cores, in seconds).

    python benchmarks/stages.py [--config configs/oos_2016.yaml] [--runs 3] [--set key=value ...]

Nothing else may run meanwhile: the figures describe this command alone.
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

from benchmarks.under_load import cpu_model  # noqa: E402


class CoreSampler:
    """Busy and idle core-seconds of the whole machine between entering and leaving the
    context, from two readings of ``/proc/stat`` (both None where it is absent)."""

    busy = idle = None

    @staticmethod
    def _read():
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields[:8]) - idle, idle

    def __enter__(self):
        self._first = self._read() if Path("/proc/stat").exists() else None
        return self

    def __exit__(self, *exc):
        if self._first is not None:
            last, tick = self._read(), os.sysconf("SC_CLK_TCK")
            self.busy, self.idle = ((b - a) / tick for a, b in zip(self._first, last))


def one_run(config: str, overrides: list[str], output: Path, env: dict | None = None) -> dict:
    """One main command in a fresh interpreter (``env``: variables to set for it): its timings
    and what it cost the machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [sys.executable, str(ROOT / "run_backtest.py"), "--config", config, "--output", str(output), "--quiet"]
    for item in overrides:
        command += ["--set", item]
    started = time.perf_counter()
    with CoreSampler() as cores:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"error: the main command failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    metrics = json.loads((output / "metrics.json").read_text())
    timings = metrics["timings"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"timings": timings, "wall": wall, "cpu": cpu, "peak_rss_mb": after.ru_maxrss / 1024,
            "idle_core_s": cores.idle, "busy_core_s": cores.busy, "cached": metrics["checks"]["model_cached"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/oos_2016.yaml")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="passed to the main command's --set")
    parser.add_argument("--json", help="write every run's figures here")
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    print(f"cpu: {cpu_model()}; {cores} available; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"command: python run_backtest.py --config {args.config}" + "".join(f" --set {o}" for o in args.overrides))
    stages = ("data", "train", "predict", "backtest", "evaluate", "outputs")
    print(" ".join(f"{s:>8}" for s in (*stages, "total")) + "     wall   CPU s  peak MB  idle core-s  cached")
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(args.runs):
            run = one_run(args.config, args.overrides, Path(folder) / f"run{index}")
            runs.append(run)
            t = run["timings"]
            idle = "n/a" if run["idle_core_s"] is None else f"{run['idle_core_s']:.1f}"
            print(" ".join(f"{t.get(s, float('nan')):8.1f}" for s in (*stages, "total"))
                  + f" {run['wall']:8.1f} {run['cpu']:7.1f} {run['peak_rss_mb']:8.0f} {idle:>12}  {run['cached']}")
    cached = [r for r in runs if r["cached"]]
    if not cached:
        print("no run found its model cached: nothing to summarise (run again)")
        return 0
    but_training = [r["timings"]["total"] - r["timings"]["train"] for r in cached]
    floor = [r["cpu"] / cores for r in cached]  # a cached run's training is the model's load
    wall = statistics.median(r["wall"] for r in cached)
    print(f"\n{len(cached)} cached runs, median: everything but training {statistics.median(but_training):.1f} s "
          f"(each: {', '.join(f'{x:.1f}' for x in but_training)}); wall {wall:.1f} s with start-up")
    print(f"CPU floor of the whole command on {cores} cores: {statistics.median(floor):.1f} s "
          f"({statistics.median(r['cpu'] for r in cached):.1f} CPU s)")
    idle = [r["idle_core_s"] for r in cached if r["idle_core_s"] is not None]
    if idle:
        print(f"idle while it ran: {statistics.median(idle):.1f} core-seconds, at most "
              f"{statistics.median(idle) / cores:.1f} s that better overlap of the same work could give back")
    if args.json:
        Path(args.json).write_text(json.dumps({"cores": cores, "cpu": cpu_model(), "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
