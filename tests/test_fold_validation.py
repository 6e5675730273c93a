"""benchmarks/fold_validation.py: every fold's validation figures, no out-of-sample figure, and
models the main command then loads from the cache instead of training again."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import run_backtest
from benchmarks import fold_validation

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs" / "smoke.yaml")


def test_each_fold_is_reported_and_the_main_command_reuses_its_models(tmp_path, capsys):
    overrides = ["--set", "walk_forward.retrain_every=6", "--set", "train.ensemble=2",
                 "--set", f"output.cache_dir={tmp_path / 'cache'}"]
    assert fold_validation.main(["--config", SMOKE, *overrides, "--json", str(tmp_path / "v.json")]) == 0
    doc = json.loads((tmp_path / "v.json").read_text())
    folds = doc["folds"]
    assert [f["fold"][:6] for f in folds] == ["fold 0", "fold 1"]
    assert [f["cached"] for f in folds] == [False, False]
    for fold in folds:
        assert -1 < fold["lstm"] < 1 and -1 < fold["composite"] < 1
        assert [seed for seed, _ in fold["members"]] == [0, 1]
    assert "fold 1: train 2011-01..2014-06" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "v.json"]  # no run directory

    run = tmp_path / "run"
    one_book = ["--set", "backtest.selections=[top_pct]", "--set", "backtest.books=[long_short]"]  # seconds
    assert run_backtest.main(["--config", SMOKE, *overrides, *one_book, "--output", str(run), "--quiet"]) == 0
    trained = json.loads((run / "metrics.json").read_text())["training"]["folds"]
    assert [f["cached"] for f in trained] == [True, True]
    assert [f["validation"]["lstm"]["rank_ic"] for f in trained] == [f["lstm"] for f in folds]


@pytest.mark.parametrize("argv, expected", [
    (["--config", SMOKE, "--set", "train.steps=-5"], "train.steps"),
    (["--config", str(ROOT / "configs" / "sweep_smoke.yaml")], "sweep config"),  # its base is none of its points
])
def test_a_mistake_is_one_line_and_exit_2(capsys, argv, expected):
    assert fold_validation.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and len(err.strip().splitlines()) == 1
