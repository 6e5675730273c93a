"""The reliability catalogue (SPEC §8, issue 11): every bad input and every fault, one case each.

Bad inputs (configs, data files, output paths, tampered checkpoints and cache entries) must end
in one line ``error: <what> (<where>)`` and exit status 2, or — for a damaged cache — a retrain
announced in one line; faults (Ctrl-C, SIGTERM, a killed run's debris, a full disk, two runs at
once) must leave no staging or cache debris and never touch a file the tool did not create.
The parametrised lists below are the catalogue; ``pytest tests/test_reliability.py -q`` counts it.
"""
import errno
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import warnings
import weakref
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import run_backtest
from feeds.panel import DataWarning, load_panel
from feeds.synthetic import make_market
from pipeline import interrupts as pipeline_interrupts
from pipeline import output as output_module
from pipeline import run as pipeline_run
from pipeline import cache as model_cache
from pipeline.output import MARKER, OutputError, RunDirectory, check_output, is_run_directory, staging_directory
from signals import CheckpointError, SignalModel
from signals.checkpoint import payload_digest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs" / "smoke.yaml")
# A run of seconds: a 40-stock market, a 2x8 LSTM trained 2 steps, one backtest, no tear sheets.
TINY = ["--quiet", "--set", "data.synthetic.n_stocks=40", "--set", "model.hidden=8", "--set", "train.steps=2",
        "--set", "train.eval_every=1", "--set", "output.tearsheets=false", "--set", "backtest.books=[long_short]",
        "--set", "backtest.selections=[class]"]


def cli(*args) -> int:
    return run_backtest.main([str(a) for a in args])


def tiny(output, cache, *extra):
    return cli("--config", SMOKE, "--output", output, "--set", f"output.cache_dir={cache}", *TINY, *extra)


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    others = [line for line in err.splitlines() if line.strip() and not line.startswith(("error: ", "warning: "))]
    assert len(errors) == 1 and not others, err
    return errors[0]


def debris(*folders) -> list[str]:
    """Staging, set-aside and temporary entries a run may create (none may survive it)."""
    found = []
    for folder in folders:
        if Path(folder).exists():
            found += [p.name for p in Path(folder).rglob("*")
                      if ".staging-" in p.name or ".old-" in p.name or p.name.endswith(".tmp")]
    return found


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny trained run shared by the catalogue: its run directory and its model cache."""
    base = tmp_path_factory.mktemp("tiny")
    assert tiny(base / "run", base / "cache") == 0
    (entry,) = [p for p in (base / "cache").iterdir() if not p.name.startswith(".")]
    return SimpleNamespace(out=base / "run", cache=base / "cache", entry=entry)


# ============================================================== 1. bad configs: one line, exit 2
CONFIG_FILES = [  # (id, file bytes or None for a directory, expected text)
    ("not-utf8", b"name: caf\xe9\n", "config file is not UTF-8 text (byte 0xe9 at offset 9)"),
    ("yaml-list", b"- name\n- seed\n", "the config must be a mapping of sections, got a YAML list"),
    ("yaml-scalar", b"42\n", "the config must be a mapping of sections, got a YAML int"),
    ("yaml-string", b"just some words\n", "the config must be a mapping of sections, got a YAML str"),
    ("empty", b"", "config file is empty"),
    ("comments-only", b"# nothing here\n", "config file is empty"),
    ("invalid-yaml", b"name: [a,\n", "invalid YAML"),
    ("directory", None, "is a directory, not a config file"),
]


@pytest.mark.parametrize("content, expected", [c[1:] for c in CONFIG_FILES], ids=[c[0] for c in CONFIG_FILES])
def test_bad_config_file(tmp_path, capsys, content, expected):
    path = tmp_path / "config.yaml"
    path.mkdir() if content is None else path.write_bytes(content)
    assert cli("--config", path, "--output", tmp_path / "out", "--quiet") == 2
    line = error_line(capsys)
    assert expected in line and f"({path}" in line
    assert not (tmp_path / "out").exists()


CONFIG_VALUES = [  # (id, --set overrides, expected text naming the key)
    ("commission-negative", ["backtest.costs.commission=-0.5"], "commission is a rate and must lie in [0, 1), got -0.5 (backtest.costs.commission"),
    ("stamp-duty-above-1", ["backtest.costs.stamp_duty=1.5"], "stamp_duty is a rate and must lie in [0, 1), got 1.5 (backtest.costs.stamp_duty"),
    ("min-commission-negative", ["backtest.costs.min_commission=-1"], "min_commission must be >= 0, got -1.0 (backtest.costs.min_commission"),
    ("gross-negative", ["backtest.gross=-1"], "gross (target exposure) must be > 0, got -1.0 (backtest.gross"),
    ("gross-zero", ["backtest.gross=0"], "gross (target exposure) must be > 0, got 0.0 (backtest.gross"),
    ("cash-negative", ["backtest.cash=-1e7"], "cash must be > 0, got -10000000.0 (backtest.cash"),
    ("cash-nan", ["backtest.cash=.nan"], "expected a finite number, got nan (backtest.cash"),
    ("top-pct-inf", ["backtest.top_pct=.inf"], "expected a finite number, got inf (backtest.top_pct"),
    ("lot-negative", ["backtest.lot=-100"], "lot must be >= 0, got -100 (backtest.lot"),
    ("seed-negative", ["seed=-1"], "seed must lie in 0..4294967295, got -1 (seed"),
    ("seed-too-large", ["seed=4294967296"], "seed must lie in 0..4294967295, got 4294967296 (seed"),
    ("seed-text", ["seed=abc"], "expected an integer, got 'abc' (seed"),
    ("n-stocks-text", ["data.synthetic.n_stocks=many"], "expected an integer, got 'many' (data.synthetic.n_stocks"),
    ("n-stocks-zero", ["data.synthetic.n_stocks=0"], "n_stocks must be >= 1, got 0 (data.synthetic.n_stocks"),
    ("n-industries-zero", ["data.synthetic.n_industries=0"], "n_industries must be >= 1, got 0 (data.synthetic.n_industries"),
    ("synthetic-seed", ["data.synthetic.seed=3"], "the market's seed is the top-level 'seed' (data.synthetic.seed"),
    ("synthetic-rate-above-1", ["data.synthetic.missing_rate=2"], "missing_rate is a share and must lie in [0, 1], got 2.0 (data.synthetic.missing_rate"),
    ("synthetic-vol-negative", ["data.synthetic.idio_vol=-0.1"], "idio_vol must be >= 0, got -0.1 (data.synthetic.idio_vol"),
    ("delist-hazard-1", ["data.synthetic.delist_hazard=1"], "delist_hazard is a monthly probability and must lie in [0, 1), got 1.0"),
    ("synthetic-start-not-a-month", ["data.synthetic.start=someday"], "'someday' is not a valid month (write YYYY-MM-DD or YYYY-MM) (data.synthetic.start"),
    ("name-escapes-up", ["name=../../escape"], "run name '../../escape' must be a plain name"),
    ("name-with-separator", ["name=a/b"], "run name 'a/b' must be a plain name"),
    ("name-dot-dot", ["name=.."], "run name '..' must be a plain name"),
    ("name-hidden", ["name=.hidden"], "run name '.hidden' must be a plain name"),
    ("train-test-same-month", ["dates.train_end=2013-12-15", "dates.test_start=2013-12-20"],
     "train_end 2013-12-15 and test_start 2013-12-20 fall in the same month 2013-12"),
    ("test-before-train-end", ["dates.test_start=2013-06-01"], "train_end 2013-12-31 must be before test_start 2013-06-01"),
]


@pytest.mark.parametrize("overrides, expected", [c[1:] for c in CONFIG_VALUES], ids=[c[0] for c in CONFIG_VALUES])
def test_bad_config_value(tmp_path, capsys, overrides, expected):
    args = ["--config", SMOKE, "--output", tmp_path / "out", "--quiet"]
    for item in overrides:
        args += ["--set", item]
    assert cli(*args) == 2
    line = error_line(capsys)
    assert expected in line and line.endswith(f"{SMOKE})")
    assert list(tmp_path.iterdir()) == []
    assert not (ROOT / "escape").exists() and not (ROOT.parent / "escape").exists()


def test_an_empty_mapping_is_the_explicit_way_to_run_every_default(tmp_path):
    from pipeline.config import load_config

    path = tmp_path / "defaults.yaml"
    path.write_text("{}\n")
    assert load_config(path).dates.train_start == "2007-05-01"


# ============================================================== 2. output paths: never destroy
def _user_dir(tmp_path):
    folder = tmp_path / "research"
    folder.mkdir()
    (folder / "notes.txt").write_text("months of work")
    return folder


def _user_file(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("a,b\n1,2\n")
    return path


def _below_file(tmp_path):
    return _user_file(tmp_path) / "run"


def _symlink(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(_user_dir(tmp_path), target_is_directory=True)
    return link


OUTPUTS = [  # (id, make the destination, expected text)
    ("folder-of-user-files", _user_dir, "the output directory exists and is not a run of this tool"),
    ("regular-file", _user_file, "the output exists and is not a directory"),
    ("below-a-regular-file", _below_file, "which is not a directory"),
    ("symbolic-link", _symlink, "the output is a symbolic link"),
]


@pytest.mark.parametrize("make, expected", [c[1:] for c in OUTPUTS], ids=[c[0] for c in OUTPUTS])
def test_output_that_is_not_ours_is_refused_untouched(tmp_path, capsys, make, expected):
    target = make(tmp_path)
    before = snapshot(tmp_path)
    assert cli("--config", SMOKE, "--output", target, *TINY) == 2
    line = error_line(capsys)
    assert expected in line and line.endswith(f"({target})")
    assert snapshot(tmp_path) == before and debris(tmp_path) == []


@pytest.mark.parametrize("moved_during", ["iterdir", "is_run_directory", "is_dir"])
def test_a_run_moved_aside_by_a_concurrent_run_during_the_check_is_not_taken_for_a_foreign_one(
        tmp_path, monkeypatch, moved_during):
    # _publish of a concurrent run renames the earlier run aside; check_output must not read the
    # moment the directory vanishes as "a directory without a marker" (a race CI once caught)
    with RunDirectory(tmp_path / "out") as staging:
        (staging / "a.txt").write_text("x")
    out = tmp_path / "out"

    def moved(original):
        def call(*args, **kwargs):
            if out.exists():
                os.replace(out, tmp_path / "aside")
            return original(*args, **kwargs)
        return call

    if moved_during in ("iterdir", "is_dir"):  # is_dir: "exists, and is not a directory" (CI once)
        monkeypatch.setattr(Path, moved_during, moved(getattr(Path, moved_during)))
    else:
        monkeypatch.setattr(output_module, "is_run_directory", moved(is_run_directory))
    assert check_output(out) == out
    monkeypatch.undo()
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "mine.txt").write_text("y")
    with pytest.raises(OutputError, match="not a run of this tool"):
        check_output(tmp_path / "foreign")  # a directory of the user's still is refused


def test_a_run_moved_aside_and_replaced_by_a_concurrent_run_during_the_check_is_ours(tmp_path, monkeypatch):
    # two racers: one moves the run aside and the other publishes a new one between the checks,
    # so the path exists again when the verdict is read (CI's lowest-versions job once failed so)
    for name in ("out", "next"):
        with RunDirectory(tmp_path / name) as staging:
            (staging / "a.txt").write_text(name)
    out, calls = tmp_path / "out", []

    def replaced_meanwhile(path):
        calls.append(path)
        if len(calls) == 1:
            os.replace(out, tmp_path / "aside")
            os.replace(tmp_path / "next", out)
            return False  # what the marker check saw: no directory at that moment
        return is_run_directory(path)

    monkeypatch.setattr(output_module, "is_run_directory", replaced_meanwhile)
    assert check_output(out) == out and len(calls) == 2 and (out / "a.txt").read_text() == "next"


def test_output_dir_from_the_config_is_checked_too(tmp_path, capsys):
    target = _user_dir(tmp_path)
    assert cli("--config", SMOKE, "--set", f"output.dir={target}", *TINY) == 2
    assert "is not a run of this tool" in error_line(capsys)
    assert (target / "notes.txt").read_text() == "months of work"


def test_output_in_a_directory_without_write_permission(tmp_path, capsys, monkeypatch):
    # the tests run as root, for whom chmod does not deny: the permission answer is simulated
    real = os.access
    monkeypatch.setattr(output_module.os, "access", lambda p, mode: False if Path(p) == tmp_path else real(p, mode))
    assert cli("--config", SMOKE, "--output", tmp_path / "run", *TINY) == 2
    assert f"cannot write in {tmp_path} (permission denied)" in error_line(capsys)


def test_an_empty_directory_receives_a_run_and_a_marked_run_is_replaced(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for _ in range(2):  # first the empty directory, then the run it became
        with RunDirectory(check_output(empty)) as staging:
            (staging / "metrics.json").write_text("{}")
        assert is_run_directory(empty) and (empty / "metrics.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]
    (empty / MARKER).write_text('{"tool": "something else"}')
    with pytest.raises(OutputError, match="not a run of this tool"):
        check_output(empty)


# ============================================================== 3. data files: load-time sanity
@pytest.fixture(scope="module")
def panel_frame():
    return make_market(seed=0, n_stocks=40, start="2010-01", end="2014-12").panel.to_frame().reset_index()


def _set(column, value, row=100):
    def edit(frame):
        frame[column] = frame[column].astype(float)
        frame.loc[row, column] = value
        return frame
    return edit


def _close_only(value):
    def edit(frame):
        frame = frame.drop(columns="ret")
        frame.loc[100, "close"] = value
        return frame
    return edit


def _empty_factor(frame):
    frame["blank"] = np.nan
    return frame


def _forward_returns(frame):
    frame["ret"] = frame.sort_values(["code", "date"]).groupby("code")["ret"].shift(-1)
    return frame


def _drop_month(frame):
    return frame[frame["date"] != frame["date"].unique()[30]]


def _stocks(n):
    def edit(frame):
        return frame[frame["code"].isin(sorted(frame["code"].unique())[:n])]
    return edit


DATA_FILES = [  # (id, edit of the long frame, extra overrides, expected text)
    ("return-minus-300pct", _set("ret", -3.0), [], "'ret' is -3 at"),
    ("return-minus-100pct", _set("ret", -1.0), [], "a stock cannot lose 100% or more in a month"),
    ("return-1e300", _set("ret", 1e300), [], "a monthly return beyond ±100"),
    ("close-negative", _close_only(-5.0), [], "'close' is -5 in row 100"),
    ("close-zero", _close_only(0.0), [], "prices must be positive"),
    ("close-1e300", _close_only(1e300), [], "an absurd price"),
    ("factor-1e300", _set("bp", 1e300), [], "factor 'bp' is 1e+300 in row 100"),
    ("factor-minus-1e20", _set("ep", -1e20), [], "beyond ±1e+15"),
    ("mcap-negative", _set("mcap", -1.0), [], "market caps must be positive"),
    ("mcap-1e300", _set("mcap", 1e300), [], "an absurd market cap"),
    ("factor-column-all-nan", _empty_factor, [], "factor column 'blank' is entirely NaN"),
    ("listed-factor-all-nan", _empty_factor, ["data.factors=[bp, blank]"], "factor 'blank' is entirely NaN"),
    ("forward-returns", _forward_returns, [], "'ret' is next month's return: in 100% of stock-months"),
    ("month-missing", _drop_month, [], "no rows for 2012-07: a panel needs every month"),
    ("single-stock", _stocks(1), [], "too few stocks for cross-sectional preprocessing: 1 listed per month"),
    ("two-stocks", _stocks(2), [], "too few stocks for cross-sectional preprocessing: 2 listed per month"),
]


@pytest.mark.parametrize("edit, overrides, expected", [c[1:] for c in DATA_FILES], ids=[c[0] for c in DATA_FILES])
def test_bad_data_file(tmp_path, capsys, panel_frame, edit, overrides, expected):
    path = tmp_path / "panel.csv"
    edit(panel_frame.copy()).to_csv(path, index=False)
    args = ["--config", SMOKE, "--output", tmp_path / "out", *TINY, "--set", "data.source=panel",
            "--set", f"data.path={path}", "--set", f"output.cache_dir={tmp_path / 'cache'}"]
    for item in overrides:
        args += ["--set", item]
    assert cli(*args) == 2
    line = error_line(capsys)
    assert expected in line, line
    assert str(path) in line or "per month" in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_a_rare_but_possible_return_is_a_warning_with_its_count(tmp_path, panel_frame):
    path = tmp_path / "panel.csv"
    _set("ret", 20.0)(panel_frame.copy()).to_csv(path, index=False)
    with pytest.warns(DataWarning, match=r"1 stock-month\(s\) with a return above \+1000%"):
        load_panel(path)


def test_a_test_end_beyond_the_data_is_a_warning_naming_the_last_month(tmp_path, capsys):
    code = cli("--config", SMOKE, "--output", tmp_path / "out", *TINY, "--set", "dates.test_end=2030-06-30",
               "--set", f"output.cache_dir={tmp_path / 'cache'}")
    assert code == 0
    assert "dates.test_end 2030-06 is after the data's last month 2014-12: the test ends there" in \
        capsys.readouterr().err


def test_a_mostly_missing_factor_is_a_warning_naming_its_share(tmp_path, capsys, panel_frame):
    frame = panel_frame.copy()
    frame.loc[frame.index % 10 < 7, "bp"] = np.nan  # 70% of the rows
    path = tmp_path / "panel.csv"
    frame.to_csv(path, index=False)
    assert tiny(tmp_path / "out", tmp_path / "cache", "--set", "data.source=panel", "--set", f"data.path={path}") == 0
    assert re.search(r"1 factor\(s\) missing in more than 50% of the listed stock-months from 2011-01 \(bp 7\d%\)",
                     capsys.readouterr().err)


def test_a_factor_that_knows_the_next_month_is_a_warning_naming_it(tmp_path, capsys, panel_frame):
    frame = panel_frame.sort_values(["code", "date"]).copy()
    frame["next_ret"] = frame.groupby("code")["ret"].shift(-1)  # the label, left among the factors
    path = tmp_path / "panel.csv"
    frame.to_csv(path, index=False)
    assert tiny(tmp_path / "out", tmp_path / "cache", "--set", "data.source=panel", "--set", f"data.path={path}") == 0
    assert re.search(r"mean rank IC beyond ±0.3 against the NEXT month's return over the training window: "
                     r"next_ret \+1\.00\. No real factor", capsys.readouterr().err)


@pytest.mark.parametrize("overrides", [
    ["dates.test_end=2014-01-31", "backtest.selections=[class, top_pct]"],  # one test month: no 3-month outcome
    ["data.synthetic.delist_hazard=0"],  # nobody delists (numpy's geometric needs p > 0)
], ids=["one-test-month", "no-delistings"])
def test_edge_settings_that_crashed_run(tmp_path, overrides):
    assert tiny(tmp_path / "out", tmp_path / "cache", *(a for o in overrides for a in ("--set", o))) == 0
    assert (tmp_path / "out" / "metrics.json").is_file()


def test_a_training_window_without_history_before_it_is_a_warning(tmp_path, capsys):
    # the first window - 1 training months gave no sample, and the report still named them
    assert tiny(tmp_path / "out", tmp_path / "cache", "--set", "data.synthetic.start=2012-06",
                "--set", "dates.train_start=2012-06-01") == 0
    assert ("dates.train_start 2012-06 leaves 0 month(s) of data before it: a sample needs 12 months of history, "
            "so the first training sample is 2013-05") in capsys.readouterr().err
    assert tiny(tmp_path / "out2", tmp_path / "cache") == 0  # the smoke config: a year of history first
    assert "month(s) of data before it" not in capsys.readouterr().err


@pytest.mark.parametrize("overrides, warned", [([], True), (["preprocess.neutralize=none"], False),
                                               (["data.synthetic.n_stocks=150"], False)])
def test_stocks_alone_in_their_industry_are_a_warning_with_their_share(tmp_path, capsys, overrides, warned):
    # 40 stocks in 28 industries: a fifth of the stock-months were neutralized to all-zero inputs
    assert tiny(tmp_path / "out", tmp_path / "cache", *(a for o in overrides for a in ("--set", o))) == 0
    said = re.search(r"(\d+)% of the listed stock-months from 2011-01 are alone in their industry that month: "
                     r"industry neutralization leaves every factor of theirs at 0", capsys.readouterr().err)
    assert bool(said) == warned and (not warned or int(said[1]) > 5)


def test_the_prescience_check_allows_for_the_noise_of_a_short_window(panel_frame):
    from feeds.panel import Panel
    from pipeline.data import _check_prescience

    frame = panel_frame.sort_values(["code", "date"]).copy()
    frame["next_ret"] = frame.groupby("code")["ret"].shift(-1)
    panel = Panel.from_frame(frame)
    honest = Panel.from_frame(panel_frame)
    warned = {"honest": 0, "next_ret": 0}
    for m in range(13, 50):  # one-month windows of 40 stocks: chance alone passed 0.3 in 29 of 37
        window = slice(m - 1, m)
        for name, tested in (("honest", honest), ("next_ret", panel)):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                _check_prescience(tested, window)
            warned[name] += any("next_ret" in str(w.message) for w in caught) if name == "next_ret" else bool(caught)
    assert warned == {"honest": 0, "next_ret": 37}


def test_a_cached_model_takes_the_styles_of_the_run_that_loads_it(tmp_path, panel_frame):
    path = tmp_path / "panel.csv"
    panel_frame.to_csv(path, index=False)
    runs = {}
    for name, styles in (("first", "{value: [bp]}"), ("second", "{value: [bp, ep], size: [ln_mcap]}")):
        assert tiny(tmp_path / name, tmp_path / "cache", "--set", "data.source=panel", "--set", f"data.path={path}",
                    "--set", f"data.styles={styles}") == 0
        runs[name] = SignalModel.load(tmp_path / name / "model.pt")
    assert json.loads((tmp_path / "second" / "metrics.json").read_text())["checks"]["model_cached"] is True
    assert runs["first"].styles == {"value": ["bp"]}
    assert runs["second"].styles == {"value": ["bp", "ep"], "size": ["ln_mcap"]}


# ============================================================== 4. tampered checkpoints
def _tensor_bytes(path: Path):
    """(offset, size) of the largest tensor's raw bytes inside a torch zip checkpoint."""
    data = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def _flip(count):
    def tamper(path):
        data = bytearray(path.read_bytes())
        start, size = _tensor_bytes(path)
        for k in range(count):
            data[start + size // 3 + k] ^= 0x5A
        path.write_bytes(bytes(data))
    return tamper


def _edit(change, resign=False):
    def tamper(path):
        payload = torch.load(path, weights_only=True)
        change(payload)
        if resign:  # whoever edits can recompute the digest: the finiteness check still holds
            payload["digest"] = payload_digest(payload)
        torch.save(payload, path)
    return tamper


def _first_weight(value):
    def change(payload):
        name = next(iter(payload["state_dict"]))
        payload["state_dict"][name] = payload["state_dict"][name].clone().fill_(value)
    return change


def _set_key(key, value):
    def change(payload):
        payload[key] = value(payload) if callable(value) else value
    return change


CHECKPOINTS = [  # (id, tampering of model.pt, expected text)
    ("1-byte-flipped", _flip(1), "tampered or corrupted checkpoint (inconsistent with its SHA-256 digest)"),
    ("64-bytes-flipped", _flip(64), "tampered or corrupted checkpoint"),
    ("nan-weight", _edit(_first_weight(float("nan"))), "tampered or corrupted checkpoint"),
    ("nan-weight-digest-recomputed", _edit(_first_weight(float("nan")), resign=True), "holds NaN or infinite values"),
    ("inf-weight-digest-recomputed", _edit(_first_weight(float("inf")), resign=True), "holds NaN or infinite values"),
    ("window-12-to-3", _edit(_set_key("window", lambda p: {**p["window"], "window": 3})), "tampered or corrupted"),
    ("factor-order-edited", _edit(_set_key("factor_names", lambda p: p["factor_names"][::-1])), "tampered or corrupted"),
    ("digest-removed", _edit(lambda p: p.pop("digest")), "missing 'digest'"),
    ("older-format-without-digest", _edit(_set_key("format_version", 1)), "checkpoint format version 1"),
]


@pytest.mark.parametrize("tamper, expected", [c[1:] for c in CHECKPOINTS], ids=[c[0] for c in CHECKPOINTS])
def test_tampered_checkpoint_is_refused(tmp_path, tiny_run, tamper, expected):
    path = tmp_path / "model.pt"
    shutil.copy(tiny_run.out / "model.pt", path)
    SignalModel.load(path)  # the untouched copy loads
    tamper(path)
    with pytest.raises(CheckpointError) as info:
        SignalModel.load(path)
    assert expected in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


# ============================================================== 5. the model cache
def _copy_over(source, target):
    def tamper(entry):
        shutil.copy(entry / source, entry / target)
    return tamper


def _flip_cached(entry):
    _flip(1)(entry / "model.pt")


def _truncate_training(entry):
    path = entry / "training.pt"
    path.write_bytes(path.read_bytes()[:100])


def _foreign_key(entry):
    doc = json.loads((entry / "entry.json").read_text())
    (entry / "entry.json").write_text(json.dumps({**doc, "key": "0123456789abcdef"}))


def _no_record(entry):
    (entry / "entry.json").unlink()


CACHE_ENTRIES = [  # (id, tampering of a cache entry, expected reason)
    ("baseline-copied-over-model", _copy_over("baseline.pt", "model.pt"), "model.pt is not the file that was cached"),
    ("flipped-byte-in-model", _flip_cached, "model.pt is not the file that was cached"),
    ("truncated-training-record", _truncate_training, "training.pt is not the file that was cached"),
    ("entry-of-another-key", _foreign_key, "it holds the model of key '0123456789abcdef'"),
    ("entry-without-record", _no_record, "no valid entry.json"),
]


@pytest.mark.parametrize("tamper, expected", [c[1:] for c in CACHE_ENTRIES], ids=[c[0] for c in CACHE_ENTRIES])
def test_cache_entry_that_is_not_what_its_key_names_is_refused(tmp_path, tiny_run, tamper, expected):
    entry = tmp_path / tiny_run.entry.name
    shutil.copytree(tiny_run.entry, entry)
    assert model_cache.load_bundle(entry, entry.name).cached  # the untouched copy is served
    tamper(entry)
    with pytest.raises(CheckpointError, match=expected):
        model_cache.load_bundle(entry, entry.name)


# ============================================================== 6. faults
def _kill_self(signum):
    def hook(*args, **kwargs):
        # Without the CLI's handler SIGTERM would end pytest itself: fail the test instead.
        assert callable(signal.getsignal(signum)), f"no Python handler for {signal.Signals(signum).name}"
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the handler raises before this ends
    return hook


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", "/full/disk")


def _read_only(*args, **kwargs):
    raise OSError(errno.EROFS, "Read-only file system", "/read/only")


def _earlier_run(tmp_path) -> Path:
    out = tmp_path / "runs" / "run"
    with RunDirectory(out) as staging:
        (staging / "metrics.json").write_text('{"earlier": true}')
    return out


SIGNALS = [  # (id, signal, exception the CLI's handler raises)
    ("sigint", signal.SIGINT, KeyboardInterrupt),
    ("sigterm", signal.SIGTERM, pipeline_interrupts.Terminated),
]


@pytest.mark.parametrize("signum, raised", [c[1:] for c in SIGNALS], ids=[c[0] for c in SIGNALS])
def test_signal_while_publishing_leaves_the_earlier_run_and_no_staging(tmp_path, monkeypatch, signum, raised):
    out = _earlier_run(tmp_path)
    before = snapshot(out)
    monkeypatch.setattr(output_module, "publishable", _kill_self(signum))
    with pytest.raises(raised), pipeline_interrupts.signals_raise():
        with RunDirectory(out) as staging:
            (staging / "metrics.json").write_text("{}")
    assert snapshot(out) == before and debris(tmp_path) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


@pytest.mark.parametrize("signum, raised", [c[1:] for c in SIGNALS], ids=[c[0] for c in SIGNALS])
def test_signal_while_caching_leaves_no_entry_and_no_staging(tmp_path, signum, raised):
    with pytest.raises(raised), pipeline_interrupts.signals_raise():
        model_cache.store_entry(tmp_path, "0123456789abcdef", {"model.pt": _kill_self(signum)})
    assert list(tmp_path.iterdir()) == []


def test_sigterm_while_caching_a_real_run_is_one_line_and_exit_143(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(model_cache, "save_training", _kill_self(signal.SIGTERM))
    assert tiny(tmp_path / "run", tmp_path / "cache") == 143
    assert error_line(capsys).startswith("error: terminated; no run directory was written")
    assert list((tmp_path / "cache").iterdir()) == [] and not (tmp_path / "run").exists()


class Box:
    """Something a weak reference can point at."""


def _swallowed(signum, real):
    """``real``, after ``signum`` came while Python ran a weakref callback: the handler's exception
    cannot leave a callback, so Python reports it ("Exception ignored") and drops it, as when the
    signal lands in importlib's module-lock callback (seen in CI: SIGTERM at 2 s, the run published)."""
    def hook(*args, **kwargs):
        box = Box()
        ref = weakref.ref(box, lambda _: (os.kill(os.getpid(), signum), time.sleep(5)))
        del box  # the callback runs now, and the signal interrupts its sleep
        assert ref() is None
        return real(*args, **kwargs)
    return hook


SWALLOWED = [  # (id, signal, module, function the signal comes in, exit status)
    ("sigterm-while-caching", signal.SIGTERM, model_cache, "save_training", 143),
    ("sigint-while-evaluating", signal.SIGINT, pipeline_run, "evaluate", 130),
]


@pytest.mark.parametrize("signum, module, name, status", [c[1:] for c in SWALLOWED], ids=[c[0] for c in SWALLOWED])
def test_a_signal_that_python_swallowed_still_ends_the_run(tmp_path, capsys, monkeypatch, signum, module, name, status):
    monkeypatch.setattr(module, name, _swallowed(signum, getattr(module, name)))
    assert tiny(tmp_path / "run", tmp_path / "cache") == status
    assert error_line(capsys).startswith("error: terminated" if status == 143 else "error: interrupted")
    assert not (tmp_path / "run").exists() and debris(tmp_path) == []


def test_a_swallowed_signal_is_not_reported_but_other_swallowed_errors_are(monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)

    def failing_callback(_):
        raise ValueError("a callback's own error")

    with pytest.raises(pipeline_interrupts.Terminated), pipeline_interrupts.signals_raise():
        _swallowed(signal.SIGTERM, lambda: None)()
        box = Box()
        ref = weakref.ref(box, failing_callback)
        del box, ref
        pipeline_interrupts.check()
    assert [type(report.exc_value) for report in reported] == [ValueError]
    assert sys.unraisablehook == reported.append  # restored


def _spawn(tmp_path, *extra):
    cmd = [sys.executable, str(ROOT / "run_backtest.py"), "--config", SMOKE, "--output", str(tmp_path / "run"),
           "--set", f"output.cache_dir={tmp_path / 'cache'}", *TINY, *extra]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})


SIGNALS_REAL = [  # (id, signal, seconds after start: while importing, loading or training, status)
    ("sigint-at-0.5s", signal.SIGINT, 0.5, 130),
    ("sigint-at-1s", signal.SIGINT, 1.0, 130),  # once inside torch's C++ import: an abort, now deferred
    ("sigterm-at-1.5s", signal.SIGTERM, 1.5, 143),
    ("sigterm-at-2s", signal.SIGTERM, 2.0, 143),
    ("sigint-at-6s", signal.SIGINT, 6.0, 130),
]


@pytest.mark.slow
@pytest.mark.parametrize("signum, delay, status", [c[1:] for c in SIGNALS_REAL], ids=[c[0] for c in SIGNALS_REAL])
def test_signal_to_a_real_run_is_one_line(tmp_path, signum, delay, status):
    process = _spawn(tmp_path, "--set", "train.steps=2000")  # still training when the signal comes
    time.sleep(delay)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == status, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "run").exists() and debris(tmp_path) == []


PUBLISH_FAULTS = [  # (id, what to break, the line's text)
    ("disk-full-when-publishing", ("publishable", _disk_full), "disk full while writing the run directory (No space left on device)"),
    ("read-only-when-staging", ("tempfile.mkdtemp", _read_only), "cannot write the run directory: Read-only"),
    ("read-only-when-creating-the-parent", ("Path.mkdir", _read_only), "cannot write the run directory: Read-only"),
]


@pytest.mark.parametrize("target, expected", [c[1:] for c in PUBLISH_FAULTS], ids=[c[0] for c in PUBLISH_FAULTS])
def test_file_system_fault_when_publishing_is_one_line(tmp_path, monkeypatch, target, expected):
    out = _earlier_run(tmp_path)
    before = snapshot(out)
    name, fault = target
    monkeypatch.setattr(f"pipeline.output.{name}", fault)
    with pytest.raises(OutputError) as info:
        with RunDirectory(out) as staging:
            (staging / "metrics.json").write_text("{}")
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert snapshot(out) == before and debris(tmp_path) == []


_FDOPEN = os.fdopen


class _FullDisk:
    """A file object whose writes fail as on a full disk (after torch has serialised)."""

    def __init__(self, fd, mode="wb"):
        self.handle = _FDOPEN(fd, mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_caching_is_one_warning_and_leaves_no_staging(tmp_path, monkeypatch, tiny_run):
    monkeypatch.setattr("feeds.files.os.fdopen", _FullDisk)
    model = SignalModel.load(tiny_run.out / "model.pt")
    with pytest.warns(UserWarning, match=r"not cached \(disk full while writing the model cache \(No space left"):
        model_cache.store_entry(tmp_path, "0123456789abcdef", {"model.pt": model.save})
    assert list(tmp_path.iterdir()) == []


def test_disk_full_while_writing_a_run_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, tiny_run):
    cache = tmp_path / "cache"
    shutil.copytree(tiny_run.cache, cache)
    monkeypatch.setattr("feeds.files.os.fdopen", _FullDisk)  # torch.save of model.pt meets a full disk
    assert tiny(tmp_path / "out" / "run", cache) == 2
    assert "No space left on device" in error_line(capsys)
    assert not (tmp_path / "out" / "run").exists() and debris(tmp_path) == []


def _killed_staging(parent: Path, prefix: str, suffix: str = "") -> Path:
    """A staging directory whose writer died by SIGKILL (its lock is gone with it)."""
    code = (f"import sys, time; sys.path.insert(0, {str(ROOT)!r}); from pathlib import Path; "
            f"from pipeline.output import staging_directory; "
            f"p, _ = staging_directory(Path({str(parent)!r}), {prefix!r}, {suffix!r}); "
            f"(p / 'model.pt.x.tmp').write_bytes(b'half'); print(p, flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    path = Path(child.stdout.readline().strip())
    child.kill()
    child.wait()
    return path


def test_the_run_after_a_crash_cleans_debris_retrains_a_tampered_cache_and_replaces_the_earlier_run(
        tmp_path, capsys, monkeypatch, tiny_run):
    out, cache = _earlier_run(tmp_path), tmp_path / "cache"
    shutil.copytree(tiny_run.cache, cache)
    entry = cache / tiny_run.entry.name
    shutil.copy(entry / "baseline.pt", entry / "model.pt")  # the cache serves only what its key names
    dead = [_killed_staging(out.parent, ".run.staging-"), _killed_staging(cache, f".{entry.name}.", ".tmp"),
            out.parent / ".run.staging-k1ll3d0l", cache / f".{entry.name}.tmp"]  # left by a version without marker
    for legacy in dead[2:]:
        (legacy / "figures").mkdir(parents=True)
        (legacy / "model.pt").write_bytes(b"half")
    live, lock = staging_directory(out.parent, ".run.staging-")  # a concurrent run still writing
    foreign = out.parent / ".run.staging-mine"  # the user's own folder with a look-alike name
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    monkeypatch.setattr(output_module, "_STARTED", time.time() + 1)  # all of it predates "this" run
    try:
        assert tiny(out, cache) == 0
    finally:
        output_module.unlock(lock)
    warning = [ln for ln in capsys.readouterr().err.splitlines() if "model cache entry" in ln]
    assert len(warning) == 1 and "is unusable (model.pt is not the file that was cached" in warning[0]
    assert json.loads((out / "metrics.json").read_text())["checks"]["model_cached"] is False
    assert model_cache.load_bundle(entry, entry.name).cached  # repaired
    assert all(not p.exists() for p in dead)
    assert live.exists() and (foreign / "notes.txt").read_text() == "mine"
    assert is_run_directory(out) and "earlier" not in (out / "metrics.json").read_text()


def test_an_entry_that_appears_while_training_is_kept(tmp_path, tiny_run):
    cache, key = tmp_path / "cache", tiny_run.entry.name
    cache.mkdir()

    def concurrent_run_finishes_first(path):
        shutil.copytree(tiny_run.entry, cache / key)
        path.write_bytes(b"mine")

    model_cache.store_entry(cache, key, {"model.pt": concurrent_run_finishes_first})
    assert model_cache.load_bundle(cache / key, key).cached  # the complete entry of the other run
    assert sorted(p.name for p in cache.iterdir()) == [key]


_RACER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from pipeline.output import RunDirectory
from pipeline.cache import store_entry
base, tag = Path(sys.argv[2]), sys.argv[3]
for i in range(12):
    write = lambda path, i=i: path.write_text(f"{tag}{i}")
    store_entry(base / "cache", "0123456789abcdef", {"model.pt": write, "baseline.pt": write}, replace=i % 2 == 0)
    with RunDirectory(base / "out") as staging:
        for name in ("a.txt", "b.txt"):
            (staging / name).write_text(f"{tag}{i}")
"""


def test_two_processes_racing_on_one_cache_key_and_one_output_never_mix_files(tmp_path):
    racers = [subprocess.Popen([sys.executable, "-c", _RACER, str(ROOT), str(tmp_path), tag],
                               stderr=subprocess.PIPE, text=True) for tag in "XY"]
    for racer in racers:
        _, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
    out, entry = tmp_path / "out", tmp_path / "cache" / "0123456789abcdef"
    assert is_run_directory(out) and (out / "a.txt").read_text() == (out / "b.txt").read_text()
    record = json.loads((entry / "entry.json").read_text())
    assert (entry / "model.pt").read_text() == (entry / "baseline.pt").read_text()
    assert all(model_cache.sha256(entry / name) == digest for name, digest in record["files"].items())
    assert debris(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["cache", "out"]


@pytest.mark.slow
def test_two_concurrent_runs_of_the_same_model_and_output_never_mix(tmp_path):
    first, second = _spawn(tmp_path), _spawn(tmp_path)
    for process in (first, second):
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
    out = tmp_path / "run"
    assert is_run_directory(out) and json.loads((out / "metrics.json").read_text())["class"]
    SignalModel.load(out / "model.pt")
    (entry,) = [p for p in (tmp_path / "cache").iterdir()]
    assert model_cache.load_bundle(entry, entry.name).cached
    assert debris(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["cache", "run"]
