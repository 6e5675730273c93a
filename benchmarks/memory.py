"""What holds the default run's memory: peak and resident RSS after each piece, in fresh interpreters.

The pieces, cumulative like the run itself (configs/oos_2016.yaml):

* ``imports``: the pipeline's imports;
* ``data``: the data stage (the embedded synthetic market);
* ``windows``: what ``signals.fit`` builds before training: the training window's panel
  preprocessed, its labels and the lazy window index over every sample;
* ``train_step``: two optimizer steps of the seed's 2 x 400 LSTM on 1,000 of those windows
  (24 x 48; backpropagation through time keeps every month's gates and states);
* ``evaluation``: one validation pass over 20,000 of them in batches of
  ``signals.train.INFERENCE_BATCH`` (``predict_logits``), instead of the steps.

    python benchmarks/memory.py

Peak is the kernel's VmHWM of the process, resident its VmRSS at the end (Linux), both in MiB
(``/usr/bin/time -v`` reports the same peak in KiB). "over what X kept" is a piece's peak above
the resident memory at the end of the piece X it builds on: what the piece needs on top.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIECES = ("imports", "data", "windows", "train_step", "evaluation")
BEFORE = {"data": "imports", "windows": "data", "train_step": "windows", "evaluation": "windows"}


def memory_mib() -> tuple[int, int]:
    """(peak, resident) of this process in MiB."""
    status = Path(f"/proc/{os.getpid()}/status").read_text()
    return tuple(int(status.split(f"{key}:")[1].split()[0]) // 1024 for key in ("VmHWM", "VmRSS"))


def child(piece: str) -> None:
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    import pipeline.run  # noqa: F401  (the run's imports; registers the config sections)

    def done():
        print(*memory_mib())

    if piece == "imports":
        return done()
    from feeds.panel import month_end
    from pipeline.config import load_config
    from pipeline.data import load_data
    from pipeline.train import signal_spec
    from signals.labels import make_labels
    from signals.model import build_model
    from signals.preprocess import preprocess_panel
    from signals.windows import WindowDataset, history_length, sample_index

    config = load_config(str(ROOT / "configs" / "oos_2016.yaml"))
    data = load_data(config, 24, ROOT)
    if piece == "data":
        return done()
    spec = signal_spec(config)  # the same window, preprocessing and labels as fit()
    panel = data.panel
    first, last = (int(panel.dates.searchsorted(month_end([d])[0], side))
                   for d, side in ((config.dates.train_start, "left"), (config.dates.train_end, "right")))
    warm = max(0, first - (spec.window.window - 1))
    train_panel = panel.take(rows=slice(warm, last))
    values = preprocess_panel(train_panel, spec.preprocess)
    labels = make_labels(train_panel.ret, train_panel.listed, spec.labels)
    history = history_length(train_panel.listed, spec.window.window)
    t, i = sample_index(labels, train_panel.listed, spec.window, months=slice(first - warm, None))
    windows = WindowDataset(values, t, i, spec.window, history=history, labels=labels)
    if piece == "windows":
        return done()
    torch.manual_seed(0)
    model = build_model(replace(spec.model, n_factors=panel.F))
    picked = torch.from_numpy(np.random.default_rng(0).choice(len(windows), size=20000, replace=False))
    if piece == "train_step":
        optimizer = torch.optim.Adam(model.parameters())
        for _ in range(2):
            x, lengths, y = windows[picked[:1000]]
            loss = torch.nn.functional.cross_entropy(model(x, lengths), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    else:
        from signals.train import predict_logits

        predict_logits(model, windows.subset(picked.numpy()))
    done()


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        return child(sys.argv[2])
    peak, resident = {}, {}
    print(f"{'piece':<12} {'peak':>9} {'resident':>9}  (MiB)")
    for piece in PIECES:
        out = subprocess.run([sys.executable, __file__, "--child", piece], capture_output=True, text=True, check=True)
        peak[piece], resident[piece] = map(int, out.stdout.split()[-2:])
        before = BEFORE.get(piece)
        extra = f"  peak {peak[piece] - resident[before]:+d} over what {before} kept" if before else ""
        print(f"{piece:<12} {peak[piece]:9d} {resident[piece]:9d}{extra}")


if __name__ == "__main__":
    main()
