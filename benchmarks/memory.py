"""What holds the default run's memory: peak RSS after each piece, each in a fresh interpreter.

The pieces, cumulative like the run itself: the pipeline's imports; the synthetic market
(configs/oos_2016.yaml's data stage); one training step of the seed's 2 x 400 LSTM at batch
1000 x 24 x 48 (backpropagation through time keeps every month's gates); one evaluation pass
over 20,000 validation windows in batches of ``signals.train.INFERENCE_BATCH`` (``predict_logits``).

    python benchmarks/memory.py

Peak RSS is the kernel's VmHWM of the process (Linux).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIECES = ("imports", "data", "train_step", "evaluation")


def peak_mb() -> int:
    status = Path(f"/proc/{os.getpid()}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) // 1024


def child(piece: str) -> None:
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    import pipeline.run  # noqa: F401  (the run's imports; registers the config sections)
    from signals.model import ModelConfig, build_model
    from signals.windows import WindowConfig, WindowDataset

    if piece == "imports":
        return print(peak_mb())
    from pipeline.config import load_config
    from pipeline.data import load_data

    data = load_data(load_config(str(ROOT / "configs" / "oos_2016.yaml")), 24, ROOT)
    if piece == "data":
        return print(peak_mb())
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_factors=data.panel.F, hidden=400))
    values = np.random.default_rng(0).normal(size=(60, 1300, data.panel.F)).astype(np.float32)
    t, i = np.repeat(np.arange(24, 60), 600)[:20000], np.tile(np.arange(600), 36)[:20000]
    windows = WindowDataset(values, t, i, WindowConfig())
    if piece == "train_step":
        optimizer = torch.optim.Adam(model.parameters())
        x, lengths, _ = windows[torch.arange(1000)]
        for _ in range(2):
            loss = torch.nn.functional.cross_entropy(model(x, lengths), torch.zeros(1000, dtype=torch.long))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    else:
        from signals.train import predict_logits

        with torch.no_grad():
            predict_logits(model, windows)
    print(peak_mb())


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        return child(sys.argv[2])
    peaks: dict[str, int] = {}
    for piece, base in zip(PIECES, (None, "imports", "data", "data")):
        out = subprocess.run([sys.executable, __file__, "--child", piece], capture_output=True, text=True, check=True)
        peaks[piece] = int(out.stdout.split()[-1])
        extra = f" (+{peaks[piece] - peaks[base]} MB over {base})" if base else ""
        print(f"{piece:<12} peak RSS {peaks[piece]:6d} MB{extra}")


if __name__ == "__main__":
    main()
