"""The main command end to end (configs/smoke.yaml) and its handling of user mistakes."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import run_backtest
from feeds.synthetic import make_market
from feeds.panel import save_panel
from pipeline.output import MARKER

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs" / "smoke.yaml")


def cli(*args):
    return run_backtest.main(list(args))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("smoke")
    out = base / "run"
    code = cli("--config", SMOKE, "--output", str(out), "--quiet", "--set", f"output.cache_dir={base / 'cache'}")
    assert code == 0
    return out, base


def test_smoke_run_writes_every_output(smoke_run):
    out, _ = smoke_run
    names = {p.name for p in out.iterdir()}
    assert {"config.yaml", "model.pt", "predictions.csv", "metrics.json", "report.html", "figures"} <= names
    assert any(n.startswith("tearsheet_top_pct_") for n in names)
    assert len(list((out / "figures").glob("*.png"))) >= 10
    report = (out / "report.html").read_text()
    assert "data:image/png;base64," in report and 'src="http' not in report
    import base64  # each figure is rendered once: report.html embeds the very bytes of figures/

    assert base64.b64encode((out / "figures" / "training_loss.png").read_bytes()).decode() in report


def test_smoke_metrics_have_the_spec_keys(smoke_run):
    metrics = json.loads((smoke_run[0] / "metrics.json").read_text())
    for mode in ("class", "top_pct"):
        block = metrics[mode]
        for key in ("oos_accuracy", "no_skill_accuracy", "ic_mean", "rank_ic_mean", "icir"):
            assert key in block
        assert {"high", "neutral", "low"} <= set(block["baskets"])
        assert {"cum_excess", "monthly_win_rate", "t_stat"} <= set(block["long_short"])
    assert 0 < metrics["validation_accuracy"] < 1
    assert metrics["baseline"]["rank_ic_mean"] is not None
    assert metrics["oracle"]["ic_efficiency"] is not None
    assert {"data", "train", "predict", "backtest", "outputs", "total"} <= set(metrics["timings"])
    # the strategy's in-backtest predictions equal the offline ones
    assert metrics["checks"]["online_offline_max_abs_diff"] < 1e-6


def test_predictions_csv_has_outcomes(smoke_run):
    frame = pd.read_csv(smoke_run[0] / "predictions.csv")
    assert list(frame.columns) == ["date", "code", "p_down", "p_neutral", "p_up", "pred", "next_return", "realised"]
    assert frame["date"].nunique() == 12
    np.testing.assert_allclose(frame[["p_down", "p_neutral", "p_up"]].sum(axis=1), 1.0, atol=1e-5)


def test_rerun_uses_the_cached_model_and_gives_identical_results(smoke_run, tmp_path):
    out, base = smoke_run
    again = tmp_path / "again"
    assert cli("--config", SMOKE, "--output", str(again), "--quiet",
               "--set", f"output.cache_dir={base / 'cache'}") == 0
    metrics = json.loads((again / "metrics.json").read_text())
    assert metrics["checks"]["model_cached"] is True
    first, second = json.loads((out / "metrics.json").read_text()), metrics
    for mode in ("class", "top_pct"):
        assert first[mode]["long_short"] == second[mode]["long_short"]
        assert first[mode]["baskets"] == second[mode]["baskets"]
    assert (out / "predictions.csv").read_text() == (again / "predictions.csv").read_text()


def test_retrain_is_deterministic_for_a_seed(tmp_path):
    small = ["--set", "train.steps=8", "--set", "backtest.books=[long_short]", "--set", "backtest.selections=[class]",
             "--set", "output.tearsheets=false"]
    for name in ("a", "b"):
        assert cli("--config", SMOKE, "--output", str(tmp_path / name), "--quiet", "--retrain",
                   "--set", f"output.cache_dir={tmp_path / ('cache_' + name)}", *small) == 0
    assert (tmp_path / "a" / "predictions.csv").read_text() == (tmp_path / "b" / "predictions.csv").read_text()
    first, second = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("a", "b"))
    assert first["class"]["long_short"] == second["class"]["long_short"]


# --- user mistakes: one line on stderr, exit status 2, nothing written -------------------
def error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("overrides, expected", [
    (["backtest.lots=1"], "unknown key 'lots'"),
    (["train.steps=many"], "expected an integer, got 'many' (train.steps,"),
    (["dates.train_end=2019-01-01"], "train_end 2019-01-01 must be before test_start"),
    (["dates.test_start=2016-02-30"], "'2016-02-30' is not a valid date (write YYYY-MM-DD or YYYY-MM) (dates.test_start"),
    (["dates.test_start=2030-01-01", "dates.test_end=2030-12-31"], "test_start 2030-01-01 is after the data's last month"),
    (["train.seed=3"], "'train.seed' is set by the top-level 'seed'"),
    (["data.source=panel", "data.path=nowhere.csv"], "file not found"),
    (["data.synthetic.n_stock=5"], "unknown synthetic market setting 'n_stock'"),
    (["model.dropout=2.0"], "model.dropout must lie in [0, 1), got 2.0"),
    (["model.kind=logistic"], "model.kind must be one of lstm, gru, rnn, got 'logistic'"),
])
def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys, overrides, expected):
    out = tmp_path / "run"
    args = ["--config", SMOKE, "--output", str(out), "--quiet"]
    for item in overrides:
        args += ["--set", item]
    assert cli(*args) == 2
    assert expected in error_line(capsys)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_missing_config_file(tmp_path, capsys):
    assert cli("--config", str(tmp_path / "absent.yaml")) == 2
    assert "config file not found" in error_line(capsys)


def test_bad_panel_file_is_named_and_an_earlier_run_is_untouched(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / MARKER).write_text('{"tool": "lstm-tercile"}')  # an earlier run of this tool
    (out / "metrics.json").write_text('{"earlier": true}')
    panel = make_market(seed=0, n_stocks=40, start="2010-01", end="2014-12").panel
    frame = panel.to_frame().reset_index()
    frame = pd.concat([frame, frame.iloc[[7]]])  # a duplicate (date, code)
    bad = tmp_path / "panel.csv"
    frame.to_csv(bad, index=False)
    assert cli("--config", SMOKE, "--output", str(out), "--quiet", "--set", "data.source=panel",
               "--set", f"data.path={bad}") == 2
    assert "duplicate (date, code)" in error_line(capsys)
    assert (out / "metrics.json").read_text() == '{"earlier": true}'


def test_interrupted_run_leaves_nothing(tmp_path, capsys, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("reports.write_report", interrupt)
    out = tmp_path / "run"
    assert cli("--config", SMOKE, "--output", str(out), "--quiet",
               "--set", f"output.cache_dir={tmp_path / 'cache'}", "--set", "train.steps=2",
               "--set", "backtest.books=[high]", "--set", "backtest.selections=[class]") == 130
    assert "interrupted" in capsys.readouterr().err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]  # no staging directory left behind


@pytest.mark.parametrize("kind", ["gru", "rnn"])
def test_other_recurrent_kinds_train_and_serve_through_the_main_command(tmp_path, kind):
    out = tmp_path / "run"
    assert cli("--config", SMOKE, "--output", str(out), "--quiet", "--set", f"model.kind={kind}",
               "--set", f"output.cache_dir={tmp_path / 'cache'}", "--set", "train.steps=10",
               "--set", "backtest.books=[long_short]", "--set", "output.tearsheets=false") == 0
    import torch

    weights = torch.load(out / "model.pt", map_location="cpu", weights_only=True)["state_dict"]
    assert any(name.startswith(f"{kind}.") for name in weights), list(weights)[:3]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["checks"]["online_offline_max_abs_diff"] < 1e-5  # the strategy served the same model
    assert kind.upper() in (out / "report.html").read_text()


def test_panel_file_source_runs(tmp_path):
    panel = make_market(seed=2, n_stocks=120, start="2010-01", end="2014-12").panel
    path = save_panel(panel, tmp_path / "panel.parquet")
    out = tmp_path / "run"
    assert cli("--config", SMOKE, "--output", str(out), "--quiet", "--set", "data.source=panel",
               "--set", f"data.path={path}", "--set", f"output.cache_dir={tmp_path / 'cache'}",
               "--set", "train.steps=10", "--set", "backtest.books=[high, low]") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["oracle"]["ic_efficiency"] is None and metrics["data"]["source"] == "panel"
