"""Sweeps (pipeline/sweep.py, pipeline/executors.py, reports/sweep.py): the grid, the resumable
runs, failures that do not stop the others, Ray and the plain executor giving identical points,
and the summary (sweep.csv, sweep.html)."""
import json
import signal
import warnings

import pandas as pd
import pytest
import yaml

import pipeline.run  # noqa: F401 -- registers the signal's config sections
import run_backtest
from pipeline.config import ConfigError, dump_config, load_config
from pipeline.executors import ExecutorError, PlainExecutor, make_executor, ray_available
from pipeline.output import OutputError
from pipeline.sweep import SweepWarning, axis_values, expand, is_sweep, prepare_directory, run_sweep
from reports.sweep import EVERY_SETTING, summary_table

# A market of 60 stocks over 3 years, 6 months traded by one class long/short book, no tear
# sheets: a point takes about 10 s on one busy core, most of it the run's figures.
TINY = {
    "name": "tiny_sweep", "seed": 0,
    "data": {"source": "synthetic", "synthetic": {"n_stocks": 60, "n_industries": 6, "start": "2011-01",
                                                  "end": "2013-12"}},
    "dates": {"train_start": "2011-07-01", "train_end": "2012-12-31", "test_start": "2013-01-01",
              "test_end": "2013-06-30"},
    "window": {"window": 6}, "labels": {"kind": "tercile"}, "model": {"hidden": 8, "layers": 1},
    "train": {"batch_size": 128, "steps": 10, "eval_every": 5},
    "backtest": {"selections": ["class"], "books": ["long_short"], "cash": 10_000_000.0},
    "output": {"tearsheets": False},
}
VARYING = ["point", "status", "error", "elapsed_s", "cached"]  # besides the time_* columns


def sweep_file(tmp_path, axes, name="sweep.yaml", **sweep):
    raw = {**TINY, "output": {**TINY["output"], "cache_dir": str(tmp_path / "cache")},
           "sweep": {"axes": axes, **sweep}}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def figures(frame: pd.DataFrame) -> pd.DataFrame:
    """The per-point results, without what legitimately differs between two executions."""
    keep = [c for c in frame.columns if c not in VARYING and not c.startswith("time_")]
    return frame.set_index("point")[keep].sort_index()


# ------------------------------------------------------------------------------ the grid
def test_axis_values_expand_ranges_lists_and_single_values():
    assert axis_values("seed", "0..3") == [0, 1, 2, 3]
    assert axis_values("seed", ["0..1", 7]) == [0, 1, 7]  # `seed: [0..1, 7]` in YAML
    assert axis_values("model.hidden", 64) == [64]
    assert axis_values("labels.kind", ["fixed", "tercile"]) == ["fixed", "tercile"]
    with pytest.raises(ConfigError, match="empty"):
        axis_values("seed", "3..1")
    with pytest.raises(ConfigError, match="at least one value"):
        axis_values("seed", [])


def test_points_are_every_combination_of_ordinary_configs(tmp_path):
    path = sweep_file(tmp_path, {"seed": "0..1", "model.hidden": [4, 8]})
    base = load_config(path)
    assert is_sweep(base)
    points = expand(path, ["train.steps=7"], base, tmp_path / "out")
    assert [p.id for p in points] == ["seed=0,model.hidden=4", "seed=0,model.hidden=8",
                                      "seed=1,model.hidden=4", "seed=1,model.hidden=8"]
    for point in points:
        assert point.config.seed == point.values["seed"]
        assert point.config.sections["model"].hidden == point.values["model.hidden"]
        assert point.config.sections["train"].steps == 7  # the command's --set applies to every point
        assert point.config.sections["train"].num_threads == 1  # threads_per_point
        assert "sweep" not in point.config.sections and not is_sweep(point.config)
        assert point.directory.parent == tmp_path / "out" / "points"
    assert len({p.directory for p in points}) == 4


@pytest.mark.parametrize("axes, sweep, given, message", [
    ({"model.hiden": [4, 8]}, {}, [], "unknown key 'hiden'"),
    ({"output.dir": ["a", "b"]}, {}, [], "cannot be an axis"),
    ({"seed": "0..1"}, {"replicates": ["model.hidden"]}, [], "'model.hidden' is not an axis"),
    ({"seed": "0..1"}, {"threads_per_point": 0}, [], "threads_per_point must be >= 1"),
    ({"seed": [1, 1]}, {}, [], "would share a directory"),
    ({}, {}, [], "the sweep section needs axes"),
    # values of a whole section replaced it: the base config's model.hidden was lost
    ({"model": [{"kind": "gru"}]}, {}, [], "'model' is a section, not a setting: name the setting"),
    # the axis won over the command's --set without a word
    ({"seed": "0..1", "model.kind": ["lstm"]}, {}, ["--set", "model.kind=rnn"],
     "--set model.kind=rnn sets an axis of the sweep: change the axis instead (--set sweep.axes.model.kind=...)"),
])
def test_a_bad_sweep_is_one_error_line_before_anything_runs(tmp_path, capsys, axes, sweep, given, message):
    path = sweep_file(tmp_path, axes, **sweep)
    assert run_backtest.main(["--config", str(path), "--output", str(tmp_path / "out"), "--quiet", *given]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("source, seeds, warned", [("panel", "0..2", True), ("panel", [0, 2, 4], False),
                                                    ("synthetic", "0..2", False)])
def test_replicate_seeds_that_share_ensemble_members_warn(tmp_path, source, seeds, warned):
    from pipeline.sweep import _warn_shared_members

    data = [f"data.source={source}", *(["data.path=panel.csv"] if source == "panel" else [])]
    config = load_config(sweep_file(tmp_path, {"seed": seeds}), [*data, "train.ensemble=2"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _warn_shared_members(config, config.sections["sweep"])
    said = [str(w.message) for w in caught if issubclass(w.category, SweepWarning)]
    assert said == (["sweep.axes.seed 0 and 1 are closer than train.ensemble (2): on the same data the point "
                     "seed=0 trains seeds 0..1, so the points share ensemble members; space the seeds by 2 "
                     "(e.g. seed: [0, 2, 4])"] if warned else [])


def test_an_ordinary_config_has_no_sweep_section():
    config = load_config("configs/smoke.yaml")
    assert not is_sweep(config) and "sweep" not in dump_config(config)  # config.yaml as before


def test_set_names_an_axis_by_its_dotted_key(tmp_path):
    path = sweep_file(tmp_path, {"seed": "0..1", "model.kind": ["lstm"]})
    overrides = ["sweep.axes.seed=1", "sweep.axes.model.kind=[lstm, gru]"]  # was a 'model' axis of {kind: gru}
    points = expand(path, overrides, load_config(path, overrides), tmp_path / "out")
    assert [p.id for p in points] == ["seed=1,model.kind=lstm", "seed=1,model.kind=gru"]
    assert [p.config.sections["model"].kind for p in points] == ["lstm", "gru"]
    assert all(p.config.sections["model"].hidden == TINY["model"]["hidden"] for p in points)


def test_sweep_options_need_a_sweep_config(capsys):
    assert run_backtest.main(["--config", "configs/smoke.yaml", "--ray-address", "auto", "--quiet"]) == 2
    assert "apply to sweeps" in capsys.readouterr().err


def test_a_folder_that_is_not_a_sweep_is_refused(tmp_path):
    (tmp_path / "mine.txt").write_text("my notes")
    with pytest.raises(OutputError, match="not a sweep"):
        prepare_directory(tmp_path)
    assert prepare_directory(tmp_path / "new").is_dir()
    assert prepare_directory(tmp_path / "new").is_dir()  # an earlier sweep's folder is reused


# ------------------------------------------------------------------------------ executors
def _square_or_fail(x):
    if x == 2:
        raise ValueError("two is not allowed\nsecond line")
    return x * x


def test_plain_executor_reports_a_failure_and_goes_on():
    outcomes = sorted(PlainExecutor().map(_square_or_fail, [0, 1, 2, 3]))
    assert outcomes == [(0, 0, None), (1, 1, None), (2, None, "ValueError: two is not allowed"), (3, 9, None)]


def test_without_ray_auto_is_plain_and_ray_is_one_error(monkeypatch):
    monkeypatch.setattr("pipeline.executors.ray_available", lambda: False)
    assert isinstance(make_executor("auto"), PlainExecutor)
    with pytest.raises(ExecutorError, match="Ray is not installed"):  # a UserError: exit 2
        make_executor("ray")
    with pytest.raises(ExecutorError, match="--ray-address"):
        make_executor("auto", address="ray://head:10001")


# ------------------------------------------------------------------------------ summary
def _points(rows):
    base = {"status": "done", "error": "", "model": "LSTM 1x8", "ic": 0.05, "icir": 0.5, "rank_ic": 0.06,
            "rank_icir": 0.6, "ic_efficiency": 0.5, "logistic_ic": 0.02, "logistic_icir": 0.2,
            "logistic_rank_ic": 0.03, "logistic_rank_icir": None, "logistic_ic_efficiency": 0.25,
            "composite_ic": 0.04, "composite_icir": 0.4, "composite_rank_ic": 0.05, "composite_rank_icir": 0.5,
            "composite_ic_efficiency": 0.4, "class_ls_excess": 0.1, "class_win_rate": 0.75}
    return pd.DataFrame([{**base, **row} for row in rows])


def test_summary_is_mean_and_std_per_setting_with_baselines_once():
    frame = _points([
        {"point": "a", "setting": "model.hidden=4", "replicate": "seed=0", "rank_ic": 0.04},
        {"point": "b", "setting": "model.hidden=4", "replicate": "seed=1", "rank_ic": 0.06, "class_ls_excess": None},
        {"point": "c", "setting": "model.hidden=8", "replicate": "seed=0", "rank_ic": 0.08},
        {"point": "d", "setting": "model.hidden=8", "replicate": "seed=1", "rank_ic": 0.10},
        {"point": "e", "setting": "model.hidden=8", "replicate": "seed=2", "status": "failed", "error": "boom"},
    ])
    table = summary_table(frame, ["class"]).set_index(["model", "setting"])
    assert table.loc[("LSTM 1x8", "model.hidden=4"), "Rank IC"] == "0.050 ± 0.014"
    assert table.loc[("LSTM 1x8", "model.hidden=4"), "class L/S excess"] == "10.0% (n=1)"  # b had none
    assert table.loc[("LSTM 1x8", "model.hidden=8"), "n"] == "2"  # the failed point is left out
    # The baselines do not depend on model.hidden: one row each, untraded, no rank ICIR for the logistic.
    logistic = table.loc[("logistic, last snapshot", EVERY_SETTING)]
    assert (logistic["Rank IC"], logistic["Rank ICIR"], logistic["class win rate"]) == ("0.030 ± 0.000", "–", "–")
    assert len(table) == 4


def test_a_baseline_changed_by_a_setting_gets_a_row_per_setting():
    frame = _points([{"point": "a", "setting": "labels.kind=fixed", "replicate": "seed=0"},
                     {"point": "b", "setting": "labels.kind=tercile", "replicate": "seed=0", "composite_ic": 0.09}])
    table = summary_table(frame, ["class"])
    assert list(table.loc[table["model"] == "linear rank composite", "setting"]) == ["labels.kind=fixed",
                                                                                      "labels.kind=tercile"]


# ------------------------------------------------------------------------------ real sweeps
@pytest.mark.slow
def test_cli_sweep_reports_a_failed_point_goes_on_and_resumes(tmp_path, capsys, monkeypatch):
    # window 40 needs 41 months of a 36-month market: that point fails when it runs, the other runs.
    monkeypatch.delenv("CI", raising=False)  # CI makes the command quiet; this test reads its progress
    path = sweep_file(tmp_path, {"window.window": [6, 40]})
    out = tmp_path / "out"
    argv = ["--config", str(path), "--output", str(out), "--executor", "plain"]
    assert run_backtest.main(argv) == 0
    captured = capsys.readouterr()
    assert "| LSTM 1x8 | window.window=6 | 1 |" in captured.out
    assert "failed  window.window=40" in captured.err and "done    window.window=6" in captured.err
    points = pd.read_csv(out / "sweep.csv").set_index("point")
    assert points.loc["window.window=6", "status"] == "done"
    assert points.loc["window.window=40", "status"] == "failed"
    assert "window 40 needs at least 41" in points.loc["window.window=40", "error"]
    metrics = json.loads((out / "points" / "window.window=6" / "metrics.json").read_text())
    assert points.loc["window.window=6", "rank_ic"] == pytest.approx(metrics["class"]["rank_ic_mean"], rel=1e-5)
    html = (out / "sweep.html").read_text()
    assert "Failed points" in html and "points/window.window=6/report.html" in html

    # Re-run: the complete point is skipped, the failed one is tried again.
    assert run_backtest.main(argv) == 0
    err = capsys.readouterr().err
    assert "skipped window.window=6" in err and "failed  window.window=40" in err

    # Every point failing is exit status 1 with one error line.
    failing = sweep_file(tmp_path, {"window.window": [40, 50]}, name="failing.yaml")
    assert run_backtest.main(["--config", str(failing), "--output", str(tmp_path / "f"), "--quiet",
                              "--executor", "plain"]) == 1
    assert "error: every point of the sweep failed" in capsys.readouterr().err


def test_a_points_warnings_are_shown_with_its_id_and_kept_in_the_summary(tmp_path):
    # on Ray a worker's output never reached the terminal: a point's warnings were lost there
    path = sweep_file(tmp_path, {"seed": "0..1"})
    overrides = ["dates.test_end=2014-06-30"]  # after the market's last month: every point warns
    with pytest.warns(SweepWarning) as caught:
        result = run_sweep(path, overrides, output=tmp_path / "out", executor="plain", quiet=True)
    said = "dates.test_end 2014-06 is after the data's last month 2013-12: the test ends there"
    shown = [str(w.message) for w in caught if issubclass(w.category, SweepWarning)]
    assert f"seed=0: {said}" in shown and f"seed=1: {said}" in shown
    assert all(said in text for text in result.points["warnings"])
    assert "<li><code>seed=1</code>: dates.test_end 2014-06 is after the data" in (
        tmp_path / "out" / "sweep.html").read_text()
    with pytest.warns(SweepWarning, match=f"seed=1: {said}"):  # skipped points say them again
        again = run_sweep(path, overrides, output=tmp_path / "out", executor="plain", quiet=True)
    assert again.counts["skipped"] == 2 and list(again.points["warnings"]) == list(result.points["warnings"])


def test_a_complete_point_runs_again_when_its_code_or_data_file_changed(tmp_path, monkeypatch):
    import pipeline.sweep as sweep_module
    from pipeline.provenance import inputs_stamp

    path = sweep_file(tmp_path, {"seed": [0]})
    first = run_sweep(path, output=tmp_path / "out", executor="plain", quiet=True)
    stamp = json.loads((tmp_path / "out" / "points" / "seed=0" / "metrics.json").read_text())["checks"]["inputs"]
    assert stamp == inputs_stamp(load_config(path), tmp_path) and len(stamp["code"]) == 16
    assert run_sweep(path, output=tmp_path / "out", executor="plain", quiet=True).counts["skipped"] == 1
    # a code update (or an edited data file): the same config no longer names the same results
    monkeypatch.setattr(sweep_module, "inputs_stamp", lambda config, root: {**stamp, "code": "another"})
    again = run_sweep(path, output=tmp_path / "out", executor="plain", quiet=True)
    assert again.counts == {"done": 1, "skipped": 0, "failed": 0}
    pd.testing.assert_frame_equal(figures(again.points), figures(first.points))  # deterministic: same figures


def test_the_inputs_stamp_follows_the_data_files(tmp_path):
    from pipeline.provenance import inputs_stamp

    data = tmp_path / "panel.csv"
    data.write_text("date,code\n")
    config = load_config(sweep_file(tmp_path, {"seed": [0]}), ["data.source=panel", f"data.path={data}"])
    before = inputs_stamp(config, tmp_path)
    data.write_text("date,code,ret\n")
    after = inputs_stamp(config, tmp_path)
    assert before["code"] == after["code"] and before["data.path"] != after["data.path"]
    assert "data.path" not in inputs_stamp(load_config(sweep_file(tmp_path, {"seed": [0]})), tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not ray_available(), reason="ray is not installed (pip install -e .[ray]); "
                                                "the plain executor is tested without it")
def test_a_sweep_on_local_ray_gives_the_plain_executors_points(tmp_path):
    # (no filter on the empty-basket warnings of these few-step models: the points' warnings
    # are compared too, and a filter here would reach the plain executor's points only)
    from pipeline.executors import RayExecutor

    axes = {"seed": "0..1", "model.hidden": [4, 8]}
    plain = run_sweep(sweep_file(tmp_path, axes), output=tmp_path / "plain", executor="plain", quiet=True)
    # Ray trains its own models (another cache), two points at a time on 2 CPUs.
    ray_path = sweep_file(tmp_path, axes, name="ray.yaml")
    ray_overrides = [f"output.cache_dir={tmp_path / 'ray_cache'}"]
    sigterm = signal.getsignal(signal.SIGTERM)
    executor = RayExecutor(num_cpus=2, cpus_per_task=1)
    assert signal.getsignal(signal.SIGTERM) is sigterm  # Ray's own handler would sys.exit on SIGTERM
    try:
        # Through Ray, a failing task is one line too, the exception inside Ray's wrapper named
        # (a library function as the task: this test module is not importable on Ray's workers).
        assert sorted(executor.map(json.loads, ["1", "x"])) == [
            (0, 1, None), (1, None, "JSONDecodeError: Expecting value: line 1 column 1 (char 0)")]
        on_ray = run_sweep(ray_path, ray_overrides, output=tmp_path / "ray", executor=executor, quiet=True)
    finally:
        executor.close()
    assert plain.counts == on_ray.counts == {"done": 4, "skipped": 0, "failed": 0}
    assert not on_ray.points["cached"].any()
    pd.testing.assert_frame_equal(figures(plain.points), figures(on_ray.points))  # warnings too
    for point in plain.points["directory"]:
        assert ((tmp_path / "plain" / point / "predictions.csv").read_bytes()
                == (tmp_path / "ray" / point / "predictions.csv").read_bytes())
    assert plain.table == on_ray.table

    # Resumable: a re-run runs nothing (test_cli_sweep_... re-runs what is missing).
    again = run_sweep(tmp_path / "sweep.yaml", output=tmp_path / "plain", executor="plain", quiet=True)
    assert again.counts == {"done": 0, "skipped": 4, "failed": 0} and again.table == plain.table
    pd.testing.assert_frame_equal(figures(again.points), figures(plain.points))
