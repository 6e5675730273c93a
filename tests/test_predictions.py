"""The predictions frame (signals.predictions): schema, frame <-> grid, score; torch-free imports."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from signals.labels import CLASSES
from signals.predictions import (PREDICTION_COLUMNS, PROBABILITY_COLUMNS, PredictionsError, frame_from_probabilities,
                                 grid_positions, predicted_class, prediction_frame, probability_grid, score, to_grid)

ROOT = Path(__file__).resolve().parents[1]
DATES = pd.date_range("2020-01-31", periods=3, freq="ME")
CODES = pd.Index(["000001", "000002", "600000", "600001"], dtype=object)


def grid(dtype=np.float32):
    probs = np.random.default_rng(0).dirichlet([1, 1, 1], size=(len(DATES), len(CODES))).astype(dtype)
    probs[0, 1] = np.nan  # no prediction
    probs[2, 3, 0] = np.nan  # one missing probability: no prediction either
    return probs


def test_schema_follows_the_classes():
    assert PROBABILITY_COLUMNS == tuple(f"p_{c}" for c in CLASSES) == ("p_down", "p_neutral", "p_up")
    assert PREDICTION_COLUMNS == PROBABILITY_COLUMNS + ("pred",)


def test_frame_and_grid_convert_both_ways():
    probs = grid()
    frame = prediction_frame(DATES, CODES, probs)
    assert list(frame.columns) == list(PREDICTION_COLUMNS) and frame.index.names == ["date", "code"]
    assert len(frame) == probs.shape[0] * probs.shape[1] - 2
    assert (frame.dtypes[list(PROBABILITY_COLUMNS)] == np.float32).all()  # serving precision kept
    # month by month, codes in grid order inside a month
    assert list(frame.loc[DATES[0]].index) == [CODES[0], CODES[2], CODES[3]]
    np.testing.assert_array_equal(frame["pred"].to_numpy(dtype=object),
                                  np.asarray(CLASSES, dtype=object)[predicted_class(frame)])
    back = probability_grid(frame, DATES, CODES)
    kept = np.isfinite(probs).all(axis=2)
    np.testing.assert_array_equal(back[kept], probs[kept].astype(np.float64))
    assert np.isnan(back[~kept]).all()
    np.testing.assert_array_equal(to_grid(score(frame), DATES, CODES)[kept],
                                  (probs[..., 2] - probs[..., 0])[kept].astype(np.float64))


def test_empty_frames_have_the_schema():
    for probs in (np.zeros((0, len(CODES), 3)), np.full((2, len(CODES), 3), np.nan)):
        frame = prediction_frame(DATES[:len(probs)], CODES, probs)
        assert frame.empty and list(frame.columns) == list(PREDICTION_COLUMNS)
        assert np.isnan(probability_grid(frame, DATES, CODES)).all()


def test_frame_from_probabilities_on_any_index():
    index = pd.MultiIndex.from_arrays([[DATES[1]] * 2, ["a", "b"]], names=["date", "code"])
    frame = frame_from_probabilities(index, np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]]))
    assert list(frame["pred"]) == ["up", "down"]
    assert score(frame).tolist() == pytest.approx([0.6, -0.3])


def test_errors_name_the_problem():
    frame = prediction_frame(DATES, CODES, grid())
    with pytest.raises(PredictionsError, match=r"prediction for \(2020-01-31, 999999\) is not on the panel"):
        grid_positions(frame.rename(index={CODES[0]: "999999"}).index, DATES, CODES)
    with pytest.raises(PredictionsError, match=r"prediction for \(2020-03-31, .*\) is not on the panel"):
        probability_grid(frame, DATES[:2], CODES)
    with pytest.raises(PredictionsError, match="lack column 'p_up'"):
        probability_grid(frame.drop(columns="p_up"), DATES, CODES)
    with pytest.raises(PredictionsError, match=r"shape \(3, 4, 2\), expected \(3, 4, 3\)"):
        prediction_frame(DATES, CODES, grid()[..., :2])


def _fresh_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_numpy_only_modules_do_not_import_torch():
    modules = ["signals.predictions", "signals.labels", "signals.preprocess", "signals.ranking", "signals.evaluate"]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('torch' in sys.modules)"
    assert _fresh_python(code) == "False"


def test_package_names_load_on_first_use():
    # signals.quick imports the submodule signals.fit first: the name still means the function.
    code = ("import sys, types, signals\n"
            "assert 'torch' not in sys.modules\n"
            "import signals.quick\n"
            "from signals import fit, SignalModel, CLASSES\n"
            "assert callable(fit) and not isinstance(signals.fit, types.ModuleType) and signals.fit is fit\n"
            "missing = [n for n in signals.__all__ if not hasattr(signals, n)]\n"
            "print(missing)")
    assert _fresh_python(code) == "[]"
