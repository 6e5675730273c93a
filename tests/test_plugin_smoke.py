"""The smoke config's model fills every basket (it once predicted "up" for 2,864 of 2,865
stock-months), and the README's plugin snippet runs verbatim from any directory."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from feeds import make_market
from signals import LabelConfig, ModelConfig, SignalSpec, TrainConfig, WindowConfig, fit

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_smoke_model_predicts_every_class():
    config = yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text())
    synthetic = dict(config["data"]["synthetic"])
    panel = make_market(config["seed"], **synthetic).panel
    dates = config["dates"]
    result = fit(panel, str(dates["train_start"]), str(dates["train_end"]),
                 SignalSpec(window=WindowConfig(**config["window"]), labels=LabelConfig(**config.get("labels", {})),
                            model=ModelConfig(**config["model"]),
                            train=TrainConfig(**config["train"], seed=config["seed"], progress=False)),
                 baseline=False, progress=False)
    test = panel.dates[(panel.dates >= str(dates["test_start"])) & (panel.dates <= str(dates["test_end"]))]
    predictions = result.signal.predict_panel(panel, test)
    shares = predictions["pred"].astype(str).value_counts(normalize=True)
    assert set(shares.index) == {"down", "neutral", "up"}
    assert shares.min() > 0.1 and shares.max() < 0.7, shares.to_dict()
    by_month = predictions.groupby(level="date")["pred"].agg(lambda p: set(p.astype(str)))
    assert all(len(classes) == 3 for classes in by_month), "a class book is empty in some month"


def snippet(path):
    text = (ROOT / path).read_text(encoding="utf-8")
    section = text[text.index("Use the strategy in your own Backtrader script"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_plugin_docs_show_the_readme_snippet():
    assert snippet("docs/plugin.md") == snippet("README.md")


@pytest.mark.slow
def test_the_readme_snippet_runs_verbatim_from_another_directory(tmp_path):
    code = snippet("README.md")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}  # as `pip install -e .`
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sharperatio" in done.stdout and "universe" in done.stdout
    assert not list(tmp_path.iterdir())  # it writes nothing where it runs
    assert np.isfinite(float(re.search(r"'sharperatio', (-?[0-9.e-]+)", done.stdout).group(1)))
