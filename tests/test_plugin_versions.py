"""What the lowest allowed library versions need: no API newer than requirements.txt's floors
(CI runs the suite on requirements-min.txt too), and the two files agree."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
from packaging.version import Version

from pipeline.backtest import online_offline_gap

ROOT = Path(__file__).resolve().parents[1]


def test_online_offline_gap_works_without_join_suffixes():
    # DataFrame.join(..., suffixes=...) exists from pandas 3.1 only; the floor is 2.2
    index = pd.MultiIndex.from_product([pd.to_datetime(["2016-04-30", "2016-05-31"]), ["a", "b"]],
                                       names=["date", "code"])
    offline = pd.DataFrame({"p_down": 0.2, "p_neutral": 0.3, "p_up": 0.5, "pred": "up"}, index=index)
    online = offline.copy()
    online.loc[(pd.Timestamp("2016-05-31"), "b"), "p_up"] = 0.5 + 1e-7
    assert np.isclose(online_offline_gap(online, offline), 1e-7, rtol=1e-6)
    extra = pd.concat([online, online.iloc[:1].rename(index={"a": "c"}, level="code")])
    assert online_offline_gap(extra, offline) == float("inf")  # a stock predicted on one side only
    later = online.rename(index={pd.Timestamp("2016-05-31"): pd.Timestamp("2016-06-30")}, level="date")
    assert online_offline_gap(pd.concat([online, later]), offline) > 0  # months offline lacks are left out


def floors(path):
    out = {}
    for line in (ROOT / path).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*(==|>=)\s*([^\s;#]+)", line)
        if match:
            out[match.group(1).lower()] = Version(match.group(3))
    return out


def optional_packages() -> dict[str, str]:
    """The optional extras of pyproject.toml, ``{name: requirement}`` (e.g. ray)."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("optional-dependencies", {})
    return {re.split(r"[=<>]", d)[0].lower(): d for group in extras.values() for d in group}


def test_requirements_min_pins_exactly_the_floors_of_requirements():
    allowed, lowest = floors("requirements.txt"), floors("requirements-min.txt")
    allowed = {name: v for name, v in allowed.items() if name not in optional_packages()}  # min runs without them
    assert allowed == lowest, "requirements-min.txt must pin each package at requirements.txt's floor"
    assert all("==" in line for line in (ROOT / "requirements-min.txt").read_text().splitlines()
               if line.strip() and not line.startswith("#"))


def test_pip_install_makes_every_package_and_the_main_command_importable():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert set(project["tool"]["setuptools"]["packages"]) == packages - {"tests"}
    assert project["tool"]["setuptools"]["py-modules"] == ["run_backtest"]
    assert project["project"]["scripts"]["lstm-tercile"] == "run_backtest:main"
    import run_backtest

    assert callable(run_backtest.main)
    dependencies = {re.split(r"[=<>]", d)[0].lower(): d for d in project["project"]["dependencies"]}
    required = {re.split(r"[=<>]", line)[0].lower(): line.split("#")[0].strip()
                for line in (ROOT / "requirements.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#") and not line.startswith("pytest")}
    assert dependencies | optional_packages() == required  # pip install -e . and -r requirements.txt allow the same versions
