"""Config validation (one line per problem) and atomic run directories."""
import os

import pytest

import pipeline.run  # noqa: F401 -- registers the signal's config sections
from pipeline.config import ConfigError, ConfigWarning, apply_overrides, build_config, dump_config, load_config
from pipeline.output import MARKER, RunDirectory, fingerprint, write_atomic


def error_of(raw):
    with pytest.raises(ConfigError) as info:
        build_config(raw, "cfg.yaml")
    return str(info.value)


def test_defaults_are_the_study_protocol():
    config = build_config({}, "cfg.yaml")
    assert config.dates.train_start == "2007-05-01" and config.dates.test_end == "2017-04-30"
    assert config.backtest.selections == ["class", "top_pct"]
    assert config.backtest.books == ["high", "neutral", "low", "long_short"]
    assert config.backtest.costs.stamp_duty == 0.001


@pytest.mark.parametrize("raw, message", [
    ({"foo": 1}, "unknown key 'foo' (known: "),
    ({"backtest": {"lots": 1}}, "unknown key 'lots' (known: books, cash, costs, execution, gross, lot, "
                                "selections, top_pct, workers) (backtest.lots, cfg.yaml)"),
    ({"backtest": {"costs": {"stamp": 1}}}, "(backtest.costs.stamp, cfg.yaml)"),
    ({"backtest": {"lot": "a"}}, "expected an integer, got 'a' (backtest.lot, cfg.yaml)"),
    ({"backtest": {"top_pct": "x"}}, "expected a number, got 'x' (backtest.top_pct, cfg.yaml)"),
    ({"backtest": {"selections": "class"}}, "expected a list, got str 'class' (backtest.selections, cfg.yaml)"),
    ({"backtest": {"books": ["up"]}}, "unknown book 'up'"),
    ({"backtest": {"top_pct": 1.5}}, "top_pct must be in (0, 1], got 1.5 (backtest.top_pct, cfg.yaml)"),
    ({"data": {"source": "csv"}}, "'csv' is not one of 'synthetic', 'panel', 'daily' (data.source, cfg.yaml)"),
    ({"data": {"source": "panel"}}, "data.source 'panel' needs data.path (data.path, cfg.yaml)"),
    ({"dates": {"train_end": "2016-02-30"}}, "'2016-02-30' is not a valid date (write YYYY-MM-DD or YYYY-MM) (dates.train_end, cfg.yaml)"),
    ({"dates": {"train_end": "2016-06-30"}}, "train_end 2016-06-30 must be before test_start 2016-05-01"),
    # 06/12/2014 was read month first (June), 13/12/2014 day first: neither said so
    ({"dates": {"test_end": "06/12/2014"}}, "'06/12/2014' is not a valid date (write YYYY-MM-DD or YYYY-MM)"),
    ({"dates": {"test_end": "13/12/2014"}}, "'13/12/2014' is not a valid date (write YYYY-MM-DD or YYYY-MM)"),
    ({"dates": {"test_end": "2015-01-01"}}, "test_start 2016-05-01 must be before test_end 2015-01-01"),
    ({"seed": True}, "expected an integer, got True (seed, cfg.yaml)"),
    ({"data": [1, 2]}, "expected a mapping, got list [1, 2] (data, cfg.yaml)"),
    ([1, 2], "the config must be a mapping of sections, got list (cfg.yaml)"),
])
def test_each_problem_is_one_line_naming_where(raw, message):
    text = error_of(raw)
    assert message in text and "\n" not in text


@pytest.mark.parametrize("raw, message", [
    ({"train": {"val_months": 3}}, "train.val_months has no effect: train.validation is not 'time'"),
    ({"train": {"validation": "time", "val_fraction": 0.2}},
     "train.val_fraction has no effect: train.validation is not 'random'"),
    ({"train": {"min_delta": 0.1}}, "train.min_delta has no effect: neither train.patience nor a best-state"),
    ({"labels": {"kind": "tercile", "down": -0.05}}, "labels.down has no effect: labels.kind is 'tercile'"),
    ({"walk_forward": {"scheme": "rolling"}}, "walk_forward.scheme has no effect: walk_forward.retrain_every"),
    ({"labels": {"kind": "tercile", "excess": True}}, "labels.excess has no effect: labels.kind is 'tercile'"),
    ({"preprocess": {"percentile": 0.05}}, "preprocess.percentile has no effect: preprocess.winsorize is not"),
    ({"preprocess": {"winsorize": "none", "mad_k": 3}}, "preprocess.mad_k has no effect: preprocess.winsorize is"),
    ({"backtest": {"selections": ["class"], "top_pct": 0.2}},
     "backtest.top_pct has no effect: 'top_pct' is not among backtest.selections"),
    ({"data": {"factors": ["bp"]}}, "data.factors has no effect: data.source is not 'panel'"),
    ({"data": {"source": "daily", "path": "bars.csv", "styles": {"value": ["bp"]}}},
     "data.styles has no effect: data.source is not 'panel'"),
    ({"data": {"benchmark": "sh.000300"}}, "data.benchmark has no effect: data.source is not 'daily'"),
    ({"data": {"industry_map": "map.csv"}}, "data.industry_map has no effect: data.source is not 'daily'"),
    ({"backtest": {"top_pct": 0.6}}, r"backtest.top_pct 0.6 is above 0.5: the top_pct high and low baskets share "
                                     r"at least 20% of the stocks"),
])
def test_a_key_that_another_setting_turns_off_is_a_warning(raw, message):
    with pytest.warns(ConfigWarning, match=message):
        build_config(raw, "my.yaml")


@pytest.mark.parametrize("raw", [
    {"train": {"validation": "time", "val_months": 6, "purge_months": 5}},
    {"train": {"select": "rank_ic", "min_delta": 0.01}},  # the best state is restored: it matters
    {"train": {"patience": 3, "min_delta": 0.01}},
    {"labels": {"kind": "fixed", "up": 0.05}},
    {"walk_forward": {"retrain_every": 12, "scheme": "rolling"}},
    {"data": {"source": "panel", "path": "p.csv", "factors": ["bp"], "styles": {"value": ["bp"]}}},
    {"data": {"source": "daily", "path": "bars.csv", "benchmark": "sh.000300", "industry_map": "map.csv"}},
    {"data": {"synthetic": {"n_stocks": 50}}},
    {"data": {"source": "panel", "path": "p.csv", "synthetic": {"n_stocks": 50}}},  # kept while switching
    {"backtest": {"top_pct": 0.4, "selections": ["top_pct"]}},
])
def test_keys_that_take_effect_do_not_warn(raw, recwarn):
    build_config(raw, "my.yaml")
    assert not [w for w in recwarn if issubclass(w.category, ConfigWarning)]


@pytest.mark.parametrize("text, value", [
    ("010", 10), ("+5", 5), ("0x1f", 31), ("1e7", 1e7), ("-1e7", -1e7), ("1e-3", 1e-3), (".5", 0.5),
    # YAML 1.1 read these as octal 8, base-60 90 and 201412
    ("1:30", "1:30"), ("2014_12", "2014_12"), ("1_000", "1_000"), ("2016-05-01", "2016-05-01"),
])
def test_numbers_are_read_as_yaml_1_2_reads_them(text, value):
    assert apply_overrides({}, [f"x={text}"])["x"] == value


@pytest.mark.filterwarnings("ignore:data.:pipeline.config.ConfigWarning")  # factors, benchmark: not read here
def test_a_text_setting_written_as_a_number_keeps_its_digits(tmp_path):
    # YAML reads 010 and 000300 as numbers; a run name or an index code must not lose its zeros.
    path = tmp_path / "c.yaml"
    path.write_text("name: 010\ndata:\n  benchmark: 000300\n  factors: [0050, 1.50]\n"
                    "train:\n  steps: 020\n  lr: 1e-3\n")
    config = load_config(path)
    assert (config.name, config.data.benchmark, config.data.factors) == ("010", "000300", ["0050", "1.50"])
    assert config.sections["train"].steps == 20 and type(config.sections["train"].steps) is int
    assert config.sections["train"].lr == 0.001
    assert "name: '010'" in dump_config(config) and "benchmark: '000300'" in dump_config(config)
    assert load_config(path, ["name=0x1F"]).name == "0x1F"
    assert load_config(path, ["name=2016"]).name == "2016"


def test_replacing_a_whole_mapping_with_set_names_the_keys_it_drops(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  synthetic: {n_stocks: 100, delist_hazard: 0.01}\n")
    with pytest.warns(ConfigWarning, match=r"--set data.synthetic=\{\.\.\.\} replaces the whole mapping, dropping "
                                           r"the config's delist_hazard \(to change one key, write --set data.synthetic.<key>"):
        config = load_config(path, ["data.synthetic={n_stocks: 300}"])
    assert config.data.synthetic == {"n_stocks": 300}


def test_a_set_that_keeps_every_key_of_a_mapping_is_quiet(tmp_path, recwarn):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  synthetic: {n_stocks: 100}\n")
    assert load_config(path, ["data.synthetic={n_stocks: 300, idio_vol: 0.1}"]).data.synthetic == {"n_stocks": 300,
                                                                                     "idio_vol": 0.1}
    assert load_config(path, ["data.synthetic.idio_vol=0.2"]).data.synthetic == {"n_stocks": 100, "idio_vol": 0.2}
    assert not [w for w in recwarn if issubclass(w.category, ConfigWarning)]


def test_a_key_written_twice_is_an_error_naming_both_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("train:\n  steps: 2\n  batch_size: 256\nseed: 0\ntrain:\n  lr: 0.003\n")
    with pytest.raises(ConfigError, match=r"invalid YAML: key 'train' appears twice in one mapping "
                                          r"\(lines 1 and 5\) \(.*twice.yaml:5\)"):
        load_config(path)


def test_a_home_folder_in_a_path_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    config = build_config({"output": {"cache_dir": "~/models", "dir": "~/runs/x"},
                           "data": {"source": "panel", "path": "~/panel.csv"}}, "cfg.yaml")
    assert (config.output.cache_dir, config.output.dir, config.data.path) == (
        str(tmp_path / "models"), str(tmp_path / "runs" / "x"), str(tmp_path / "panel.csv"))


def test_yaml_dates_and_numbers_are_accepted(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("dates:\n  train_start: 2008-01-01\nbacktest:\n  gross: 1\n")
    config = load_config(path)
    assert config.dates.train_start == "2008-01-01" and config.backtest.gross == 1.0
    assert config.name == "study"
    assert "train_start: '2008-01-01'" in dump_config(config)


def test_overrides_are_parsed_as_yaml_and_validated(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("backtest:\n  lot: 100\n")
    config = load_config(path, ["backtest.lot=0", "backtest.books=[high, low]", "data.synthetic.n_stocks=50"])
    assert config.backtest.lot == 0 and config.backtest.books == ["high", "low"]
    assert config.data.synthetic == {"n_stocks": 50}
    with pytest.raises(ConfigError, match=r"unknown key 'lott'"):
        load_config(path, ["backtest.lott=1"])
    with pytest.raises(ConfigError, match="is not key.sub=value"):
        apply_overrides({}, ["backtest.lot"])
    with pytest.raises(ConfigError, match="'lot' is not a section"):
        apply_overrides({"backtest": {"lot": 1}}, ["backtest.lot.x=1"])


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\nb: 3\n")
    with pytest.raises(ConfigError, match=r"invalid YAML: .* \(.*bad.yaml:\d+\)"):
        load_config(bad)


def test_run_directory_publishes_only_on_success(tmp_path):
    final = tmp_path / "runs" / "demo"
    with RunDirectory(final) as staging:
        (staging / "metrics.json").write_text("{}")
        assert not final.exists()
    assert (final / "metrics.json").read_text() == "{}"
    with pytest.raises(RuntimeError):
        with RunDirectory(final) as staging:
            (staging / "metrics.json").write_text("half")
            raise RuntimeError("boom")
    assert (final / "metrics.json").read_text() == "{}"  # the earlier run is untouched
    assert os.listdir(final.parent) == ["demo"]  # and no staging directory is left behind
    with RunDirectory(final) as staging:
        (staging / "new.txt").write_text("x")
    assert sorted(os.listdir(final)) == [MARKER, "new.txt"] and os.listdir(final.parent) == ["demo"]


def test_write_atomic_and_fingerprint(tmp_path):
    target = tmp_path / "model.pt"
    with pytest.raises(ValueError):
        write_atomic(target, lambda p: (p.write_text("half"), (_ for _ in ()).throw(ValueError("x"))))
    assert not target.exists() and os.listdir(tmp_path) == []
    write_atomic(target, lambda p: p.write_text("ok"))
    assert target.read_text() == "ok"
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
