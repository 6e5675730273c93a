"""benchmarks/signal_quality.py averages over market seeds within one setting only: results of
the inner year and of the out-of-sample year, or of different ensemble sizes, are never mixed."""
from __future__ import annotations

import json

import pytest

from benchmarks import signal_quality


@pytest.fixture(scope="module")
def quality():
    return signal_quality


def result(seed: int, lstm: float, *, inner: bool | None = None, ensemble: int | None = None) -> dict:
    figures = lambda value: {"validation_rank_ic": 0.1, "rank_ic_mean": value / 10, "ic_efficiency": value,  # noqa: E731
                             "ic_mean": 0.0, "icir": 0.0, "oos_accuracy": 0.4, "no_skill_accuracy": 0.4,
                             "n_months": 12}
    out = {"protocol": "honest", "kind": "lstm", "hidden": 64, "labels": "fixed-excess", "refit": "steps",
           "seed": seed, "lstm": figures(lstm), "lstm-selected": figures(lstm - 0.1),
           "logistic": figures(0.5), "composite": figures(0.6)}
    if inner is not None:
        out["inner"] = inner
    if ensemble is not None:
        out["ensemble"] = ensemble
    return out


def test_the_inner_year_and_ensembles_are_their_own_settings(quality):
    results = [result(0, 0.8, inner=False), result(1, 0.6, inner=False), result(0, 0.2, inner=True),
               result(0, 1.0, inner=False, ensemble=3)]
    table = quality.summary(results, validation_only=False)["ic_efficiency"]
    lstm = table.xs("lstm", level="model")
    assert lstm.xs("OOS", level="span").xs(1, level="ensemble")["mean"].item() == pytest.approx(0.7)
    assert lstm.xs("inner-year", level="span")["mean"].item() == pytest.approx(0.2)
    assert lstm.xs(3, level="ensemble")["mean"].item() == pytest.approx(1.0)


def test_summarize_reads_the_span_and_ensemble_of_older_files_from_their_settings(quality, tmp_path, capsys):
    names = []
    for name, inner, ensemble, lstm in (("oos", False, 1, 0.8), ("inner", True, 1, 0.2), ("ens", True, 3, 0.4)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"settings": {"inner": inner, "ensemble": ensemble, "validation_only": False},
                                    "results": [result(0, lstm)]}))
        names.append(str(path))
    quality.main(["--summarize", *names])
    margins = [line for line in capsys.readouterr().out.splitlines() if "minus the better baseline" in line]
    assert len(margins) == 3  # one line per setting, none averaged with another
    assert any("span OOS" in line and "ensemble 1" in line and "0 +0.200" in line for line in margins)
    assert any("span inner-year" in line and "ensemble 3" in line and "0 -0.200" in line for line in margins)
