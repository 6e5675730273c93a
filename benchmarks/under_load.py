"""Training beside a busy neighbour: torch thread and OpenMP wait-policy settings compared.

Each setting runs the bare training loop (Adam steps of the seed's LSTM on pre-made batches,
as ``benchmarks/train_pipeline.py``'s bare side) in a fresh interpreter, since
``OMP_WAIT_POLICY`` is read once when torch's OpenMP runtime starts, first on a quiet machine
and then beside one busy neighbour (a Python process spinning on one core, like ``yes >
/dev/null``). It prints seconds per step, the loaded / quiet ratio of each setting and the
ratio to the fair share (the best quiet 1-thread time: what sharing 2 cores with one
neighbour should cost), plus the loop's GFLOP/s against the CPU's measured fp32 matmul rate.

    python benchmarks/under_load.py [--hidden 400] [--steps 5] [--batch 1000]
    python benchmarks/under_load.py --whole-run configs/smoke.yaml   # the main command (--retrain), same

With ``--whole-run`` it times the main command instead (training included, a private model
cache, tear sheets on), quiet and beside the same neighbour, with the environment it is given
(the command sets ``OMP_WAIT_POLICY=PASSIVE`` itself unless told otherwise).

Nothing else may run meanwhile: the point is to control the load.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# (label, torch threads, OMP_WAIT_POLICY or None)
SETTINGS = (("2 threads", 2, None), ("1 thread", 1, None), ("2 threads, OMP_WAIT_POLICY=PASSIVE", 2, "PASSIVE"),
            ("1 thread, OMP_WAIT_POLICY=PASSIVE", 1, "PASSIVE"))
WINDOW, FACTORS, LAYERS = 24, 48, 2


def lstm_step_flops(batch: int, hidden: int) -> float:
    """Multiply-adds of one Adam step's matmuls ×2: forward (4 gates × (input + hidden) per
    layer per month) and a backward pass of twice that."""
    forward = sum(2 * batch * WINDOW * 4 * hidden * ((FACTORS if layer == 0 else hidden) + hidden)
                  for layer in range(LAYERS))
    return 3.0 * forward


def child(args) -> None:
    """Time the bare loop in this process and print one JSON line."""
    import torch
    from torch.nn import functional as nnf

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from signals.model import ModelConfig, build_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    torch.mm(a, b)
    start, reps = time.perf_counter(), 20
    for _ in range(reps):
        torch.mm(a, b)
    matmul = reps * 2 * 1024 ** 3 / (time.perf_counter() - start) / 1e9

    model = build_model(ModelConfig(n_factors=FACTORS, hidden=args.hidden, layers=LAYERS))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(args.batch, WINDOW, FACTORS)
    y = torch.randint(0, 3, (args.batch,))
    times = []
    for _ in range(args.steps + 1):  # the first step warms allocators and thread pools up
        start = time.perf_counter()
        loss = nnf.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    step = sorted(times[1:])[len(times[1:]) // 2]  # the median: a neighbour's bursts are noise
    print(json.dumps({"step": step, "matmul_gflops": matmul,
                      "loop_gflops": lstm_step_flops(args.batch, args.hidden) / step / 1e9}))


def measure(args, threads: int, policy: str | None) -> dict:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("OMP_NUM_THREADS", None)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, __file__, "--child", "--threads", str(threads), "--hidden",
                          str(args.hidden), "--steps", str(args.steps), "--batch", str(args.batch)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def whole_run(config: str, out: Path) -> float:
    """Seconds of one main command (``--retrain``, a private model cache) on ``config``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "run_backtest.py"), "--config", config,
                    "--output", str(out / "run"), "--set", f"output.cache_dir={out / 'cache'}", "--retrain", "--quiet"],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def busy_neighbour():
    """A Python process spinning on one core (kill it when done)."""
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(1.0)
    return neighbour


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    return f"{name}, {os.cpu_count()} cores, {'AVX-512' if ' avx512f' in text else 'AVX2' if ' avx2' in text else 'no AVX2'}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, default=400)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--whole-run", metavar="CONFIG", help="time the main command on CONFIG instead")
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    if args.whole_run:
        import tempfile

        print(f"{cpu_model()}; load average before: {os.getloadavg()[0]:.2f}; main command on {args.whole_run}")
        with tempfile.TemporaryDirectory() as tmp:
            quiet = whole_run(args.whole_run, Path(tmp) / "quiet")
            neighbour = busy_neighbour()
            try:
                busy = whole_run(args.whole_run, Path(tmp) / "busy")
            finally:
                neighbour.kill()
                neighbour.wait()
        print(f"quiet {quiet:.1f} s, beside one busy neighbour {busy:.1f} s: ratio {busy / quiet:.2f} (goal <= 2); "
              f"load average after: {os.getloadavg()[0]:.2f}")
        return None

    print(f"{cpu_model()}; load average before: {os.getloadavg()[0]:.2f}; "
          f"LSTM {LAYERS} x {args.hidden}, batch {args.batch} x {WINDOW} x {FACTORS}, median of {args.steps} steps")
    quiet = {label: measure(args, threads, policy) for label, threads, policy in SETTINGS}
    neighbour = busy_neighbour()
    try:
        loaded = {label: measure(args, threads, policy) for label, threads, policy in SETTINGS}
    finally:
        neighbour.kill()
        neighbour.wait()
    fair = quiet["1 thread"]["step"]
    print(f"{'setting':<36} {'quiet s/step':>12} {'busy s/step':>12} {'busy/quiet':>10} {'busy/fair':>10} "
          f"{'GFLOP/s':>8} {'matmul GFLOP/s':>14}")
    for label, _, _ in SETTINGS:
        q, b = quiet[label], loaded[label]
        print(f"{label:<36} {q['step']:12.3f} {b['step']:12.3f} {b['step'] / q['step']:10.2f} "
              f"{b['step'] / fair:10.2f} {q['loop_gflops']:8.1f} {q['matmul_gflops']:14.1f}")
    print(f"fair share = the quiet 1-thread step ({fair:.3f} s); loop GFLOP/s are quiet, counted as 3 x the "
          f"forward matmuls; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
