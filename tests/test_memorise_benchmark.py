"""benchmarks/memorise.py, the study's random-split replication meant for a GPU session: it must
run there in one call, so its use of the training API is checked here on a tiny market."""
from __future__ import annotations

import json

from benchmarks import memorise


def test_a_tiny_memorisation_curve_scores_every_evaluation_in_and_out_of_sample(tmp_path, capsys):
    out = tmp_path / "curve.json"
    curve = memorise.main(["--n-stocks", "300", "--hidden", "8", "--steps", "20", "--eval-every", "10",
                           "--threads", "1", "--device", "cpu", "--target", "0.0", "--json", str(out)])
    assert list(curve["step"]) == [10, 20] and list(curve.columns) == memorise.COLUMNS
    assert curve[["val_acc", "oos_accuracy", "ic_efficiency"]].notna().all().all()
    assert "first at step 10" in capsys.readouterr().out  # every accuracy is >= a target of 0
    saved = json.loads(out.read_text())
    assert saved["settings"]["steps"] == 20 and len(saved["curve"]) == 2 and saved["samples"]["validation"] > 0
