"""Inference batch size of the 2 x 400 LSTM: are the logits the same, and which is faster?

    python benchmarks/inference_batch.py [--windows 4096] [--threads 1]

A seeded, untrained 2 x 400 LSTM (the default model's shapes; weights do not change the cost)
on random windows of 24 x 48: the logits at batch 512, 1,024 and 2,048 against one batch of
``--windows``, bit for bit, then the best of three timings of ``signals.train.predict_logits``
at 4,096 and at ``INFERENCE_BATCH``, in this process. Then how close that is to the machine:
the LSTM's rate in GFLOP/s (2 x 4 gates x hidden x (inputs + hidden) multiply-adds per layer,
month and window) beside a plain ``torch.mm`` of one recurrent step's shape (1,024 x 400 by
400 x 1,600) on as many threads; and whether 2 threads give the same logits as 1. Nothing else
may run meanwhile.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signals.model import ModelConfig, build_model  # noqa: E402
from signals.train import INFERENCE_BATCH, predict_logits  # noqa: E402
from signals.windows import WindowConfig, WindowDataset  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape, window = ModelConfig(n_factors=48, hidden=400, layers=2), WindowConfig()
    model = build_model(shape).eval()
    months = window.window + args.windows // 1000 + 1
    values = np.random.default_rng(0).normal(size=(months, 1000, shape.n_factors)).astype(np.float32)
    t = np.repeat(np.arange(window.window - 1, months), 1000)[:args.windows]
    i = np.tile(np.arange(1000), months)[:args.windows]
    windows = WindowDataset(values, t, i, window)
    whole = predict_logits(model, windows, batch_size=args.windows)
    for size in (512, 1024, 2048):
        same = torch.equal(whole, predict_logits(model, windows, batch_size=size))
        print(f"batch {size:5d}: logits {'identical' if same else 'DIFFERENT'} to one batch of {args.windows}")
    best = {size: best_seconds(lambda: predict_logits(model, windows, batch_size=size))
            for size in (4096, INFERENCE_BATCH)}
    print(f"{args.windows} windows, {args.threads} thread(s): batch 4096 {best[4096]:.2f} s, "
          f"batch {INFERENCE_BATCH} {best[INFERENCE_BATCH]:.2f} s ({best[4096] / best[INFERENCE_BATCH]:.2f}x)")
    h = shape.hidden
    inputs = [shape.n_factors + h] + [2 * h] * (shape.layers - 1)  # per layer: its input and hidden state
    flop = 2 * 4 * h * sum(inputs) * window.window * args.windows
    a, b = torch.randn(INFERENCE_BATCH, h), torch.randn(h, 4 * h)  # one recurrent step's product
    mm = best_seconds(lambda: a @ b, repeat=50) / 50
    print(f"LSTM inference {flop / best[INFERENCE_BATCH] / 1e9:.0f} GFLOP/s; torch.mm {INFERENCE_BATCH}x{h}x{4 * h} "
          f"{2 * INFERENCE_BATCH * h * 4 * h / mm / 1e9:.0f} GFLOP/s ({args.threads} thread(s))")
    threads = 2 if args.threads == 1 else 1
    torch.set_num_threads(threads)
    same = torch.equal(predict_logits(model, windows), whole)
    print(f"{threads} thread(s) against {args.threads}: logits {'identical' if same else 'DIFFERENT'}")


def best_seconds(function, repeat: int = 1, tries: int = 3) -> float:
    """The best of ``tries`` timings of ``repeat`` calls of ``function``."""
    times = []
    for _ in range(tries):
        start = time.perf_counter()
        for _ in range(repeat):
            function()
        times.append(time.perf_counter() - start)
    return min(times)


if __name__ == "__main__":
    main()
