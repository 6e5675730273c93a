"""The main command on real daily bars (the committed fixture) and the no-industry fallback."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import run_backtest
from feeds.synthetic import make_market
from signals.preprocess import NoIndustryWarning, PreprocessConfig, preprocess_panel

ROOT = Path(__file__).resolve().parents[1]
REAL = str(ROOT / "configs" / "real_csi300.yaml")
FIXTURE = ROOT / "tests" / "fixtures" / "cn_daily_subset.csv.gz"


def test_no_industry_falls_back_to_the_whole_market_with_a_warning():
    panel = make_market(seed=0, n_stocks=60, start="2012-01", end="2013-12").panel
    blind = dataclasses.replace(panel, industry=np.full_like(panel.industry, -1))
    with pytest.warns(NoIndustryWarning, match="falls back to the whole market"):
        values = preprocess_panel(blind, PreprocessConfig(neutralize="industry"))
    plain = preprocess_panel(blind, PreprocessConfig(neutralize="none"))
    listed = blind.listed
    np.testing.assert_allclose(values[listed], plain[listed], atol=1e-5)
    assert not np.allclose(values[listed], preprocess_panel(panel, PreprocessConfig())[listed], atol=1e-3)


def real_run(tmp_path, capsys, bars, *settings) -> str:
    """The real-data config on ``bars`` with a small model; its stderr (exit status 0 asserted)."""
    overrides = [f"data.path={bars}", f"output.cache_dir={tmp_path / 'cache'}", "window.window=12",
                 "train.batch_size=64", "backtest.selections=[top_pct]", *settings]
    code = run_backtest.main(["--config", REAL, "--output", str(tmp_path / "run"), "--quiet",
                              *(arg for item in overrides for arg in ("--set", item))])
    err = capsys.readouterr().err
    assert code == 0, err
    return err


def test_real_config_on_the_fixture_subset_runs_with_the_index_benchmark(tmp_path, capsys):
    err = real_run(tmp_path, capsys, FIXTURE, "model.hidden=16", "train.steps=5", "backtest.books=[high, long_short]",
                   "backtest.lot=0")
    assert "falls back to the whole market" in err and "partial" not in err
    out = tmp_path / "run"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["source"] == "daily" and metrics["data"]["adjustment"]["n_ex_rights_days"] > 0
    assert metrics["oracle"]["ic_efficiency"] is None
    page = (out / "tearsheet_top_pct_high.html").read_text(encoding="utf-8")
    assert "Index sh.000300" in page and "Universe (equal weight)" not in page  # the index, named as such


def test_bars_that_stop_mid_month_in_the_test_warn_that_its_last_month_is_partial(tmp_path, capsys):
    bars = pd.read_csv(FIXTURE, dtype={"code": str})
    cut = tmp_path / "cut.csv.gz"
    bars[bars["date"] <= "2017-04-12"].to_csv(cut, index=False)  # the study's test ends 2017-04
    err = real_run(tmp_path, capsys, cut, "model.hidden=8", "train.steps=2", "backtest.books=[long_short]",
                   "output.tearsheets=false")
    assert ("the daily bars end on 2017-04-12: the test's last month, 2017-04, is partial (its return covers "
            "the days to 2017-04-12 only)") in err


def test_real_config_names_a_missing_file(tmp_path, capsys):
    code = run_backtest.main(["--config", REAL, "--output", str(tmp_path / "run"), "--quiet",
                              "--set", f"data.path={tmp_path / 'absent.csv.gz'}"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: file not found:") and err.endswith("(data.path, " + REAL + ")")
