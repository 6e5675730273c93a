"""The run configuration: YAML in, a validated, typed :class:`RunConfig` out.

Every section is a dataclass, so the defaults live in one place and the YAML schema *is* the
dataclasses: an unknown key, a value of the wrong type or an impossible date range raises
:class:`ConfigError` with one line ``<what> (<where>)``, where ``<where>`` is the dotted key
path and the file. ``--set key.sub=value`` overrides are parsed as YAML scalars and go through
the same checks.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pandas as pd
import yaml

from feeds.errors import UserError
from pipeline.yaml_text import parse, plain


class ConfigError(UserError):
    """A configuration problem; ``str()`` is ``<what> (<where>)``."""

    def __init__(self, what: str, where: str = ""):
        super().__init__(f"{what} ({where})" if where else what)
        self.what, self.where = what, where

    def located(self, source: str) -> "ConfigError":
        """The same error with the file named after the key path."""
        return ConfigError(self.what, f"{self.where}, {source}" if self.where else source)


@dataclass
class DataConfig:
    """Where the panel comes from.

    source: ``synthetic`` (the embedded market), ``panel`` (a SPEC §4.2 file at ``path``) or
    ``daily`` (daily bars at ``path``, turned into a factor panel).
    synthetic: overrides for ``feeds.make_market`` (e.g. ``n_stocks: 300``).
    factors / styles: the factor columns and ``{style: [factor, ...]}`` of a panel file.
    industry_map: optional CSV ``code,industry`` for daily bars.
    benchmark: index code in a daily-bars file to report as the market (e.g. ``sh.000300``).
    """

    source: Literal["synthetic", "panel", "daily"] = "synthetic"
    synthetic: dict = field(default_factory=dict)
    path: str | None = None
    factors: list[str] | None = None
    styles: dict | None = None
    industry_map: str | None = None
    benchmark: str | None = None


@dataclass
class DatesConfig:
    """The study's protocol: train on [train_start, train_end], trade [test_start, test_end]."""

    train_start: str = "2007-05-01"
    train_end: str = "2016-04-30"
    test_start: str = "2016-05-01"
    test_end: str = "2017-04-30"


@dataclass
class CommissionConfig:
    """A-share costs (2016): commission on both sides with a minimum, stamp duty on sells."""

    commission: float = 0.0003
    min_commission: float = 5.0
    stamp_duty: float = 0.001


@dataclass
class BacktestConfig:
    """How the strategy trades; one Backtrader run per selection × book.

    ``workers``: processes the books, and then the tear sheets, run in at once (0, the default:
    the cores this process may use; 1: one after another in this process); the results do not
    depend on it.
    """

    selections: list[str] = field(default_factory=lambda: ["class", "top_pct"])
    books: list[str] = field(default_factory=lambda: ["high", "neutral", "low", "long_short"])
    top_pct: float = 0.30
    gross: float = 1.0
    lot: int = 100
    cash: float = 100_000_000.0
    execution: Literal["close", "next_open"] = "close"
    costs: CommissionConfig = field(default_factory=CommissionConfig)
    workers: int = 0


@dataclass
class OutputConfig:
    """Where results go: ``dir`` (default ``runs/<name>``) and the trained-model cache."""

    dir: str | None = None
    cache_dir: str = ".cache/models"
    tearsheets: bool = True


SELECTIONS = ("class", "top_pct")
BOOKS = ("high", "neutral", "low", "long_short")
_SECTIONS: dict[str, type] = {}  # filled by register_section for the signals' dataclasses
_MANAGED: dict[str, dict[str, str]] = {}
_OPTIONAL: set[str] = set()


def register_section(name: str, cls: type, managed: dict[str, str] | None = None, optional: bool = False) -> None:
    """Make a dataclass a top-level config section (used for the signal's own configs).

    ``managed`` maps fields the run sets itself to what sets them; the YAML may not set them.
    An ``optional`` section (``sweep``) is in ``RunConfig.sections`` only when the YAML has it,
    so a config without it dumps as before.
    """
    _SECTIONS[name] = cls
    _MANAGED[name] = dict(managed or {})
    if optional:
        _OPTIONAL.add(name)


@dataclass
class SweepConfig:
    """The ``sweep`` section (see :mod:`pipeline.sweep`).

    axes : dict
        ``{dotted config key: values}``; values a list, one value, or ``"a..b"`` (the integers
        a to b, also as a list element). Every combination is one point, in the order written.
    replicates : list of str or None
        [None = the axes named ``seed`` or ending in ``.seed``] axes the summary averages over;
        every other axis is part of a point's setting.
    threads_per_point : int
        [1] torch threads of each point (``train.num_threads``, unless the config sets it) and
        the CPUs Ray reserves for each point, so the points running at once fit the cores.
    """

    axes: dict = field(default_factory=dict)
    replicates: list[str] | None = None
    threads_per_point: int = 1


register_section("sweep", SweepConfig, optional=True)


@dataclass
class RunConfig:
    """The whole run. ``sections`` holds the signal's dataclass sections (preprocess, labels,
    model, train) by name."""

    name: str = "run"
    seed: int = 0
    device: str = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    dates: DatesConfig = field(default_factory=DatesConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    sections: dict[str, Any] = field(default_factory=dict, init=False)

    def to_dict(self) -> dict:
        """Plain nested dict, the signal's sections included (the resolved config.yaml)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "sections"}
        out = {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for k, v in out.items()}
        out.update({k: dataclasses.asdict(v) for k, v in self.sections.items()})
        return out

    @property
    def timestamps(self) -> dict[str, pd.Timestamp]:
        return {k: pd.Timestamp(v) for k, v in dataclasses.asdict(self.dates).items()}


# ------------------------------------------------------------------------------ building
def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value, tp, where: str):
    """Check ``value`` against the annotation ``tp``; return it (ints widen to float)."""
    origin = get_origin(tp)
    if tp is Any:
        return plain(value)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(a) for a in get_args(tp))
            raise ConfigError(f"{value!r} is not one of {choices}", where)
        return plain(value)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"expected a list, got {type(value).__name__} {value!r}", where)
        (item,) = get_args(tp)[:1] or (Any,)
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"expected a mapping, got {type(value).__name__} {value!r}", where)
        return plain(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"expected true or false, got {value!r}", where)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"expected a number, got {value!r}", where)
        if not math.isfinite(value):
            raise ConfigError(f"expected a finite number, got {value!r}", where)
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"expected an integer, got {value!r}", where)
        return int(value)
    if tp is str:
        if hasattr(value, "isoformat"):  # YAML dates
            return value.isoformat()
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"expected a string, got {value!r}", where)
        return getattr(value, "text", None) or str(value)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"expected {_type_name(tp)}, got {value!r}", where)
    return value


def _build(cls: type, values, where: str):
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"expected a mapping, got {type(values).__name__} {values!r}", where)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    for key in values:
        if key not in names:
            raise ConfigError(f"unknown key '{key}' (known: {', '.join(sorted(names))})",
                              f"{where}.{key}" if where else key)
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in values.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc), where or cls.__name__) from None


def build_config(raw: dict, source: str = "config") -> RunConfig:
    """Validate a mapping (a parsed YAML file) into a :class:`RunConfig`."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"the config must be a mapping of sections, got {type(raw).__name__}", source)
    raw = dict(raw)
    given = {name: set(value) for name, value in raw.items() if isinstance(value, dict)}
    known = {f.name for f in dataclasses.fields(RunConfig) if f.init} | set(_SECTIONS)
    for key in raw:
        if key not in known:
            raise ConfigError(f"unknown key '{key}' (known: {', '.join(sorted(known))})", f"{key}, {source}")
    for name, managed in _MANAGED.items():
        for key, hint in managed.items():
            if isinstance(raw.get(name), dict) and key in raw[name]:
                raise ConfigError(f"'{name}.{key}' is set by {hint}", f"{name}.{key}, {source}")
    try:
        sections = {name: _build(cls, raw.pop(name, None), name) for name, cls in _SECTIONS.items()
                    if name in raw or name not in _OPTIONAL}
        config = _build(RunConfig, raw, "")
        config.sections = sections
        _expand_home(config)
        _check_run(config)
        _check_dates(config)
        _check_backtest(config)
        _check_synthetic(config)
    except ConfigError as exc:
        raise exc.located(source) from None
    _warn_ignored(config, given, source)
    return config


class ConfigWarning(UserWarning):
    """A setting the run accepts but that changes nothing (another setting turns it off) or
    empties a figure."""


# The data keys only some sources read (pipeline.data.load_data); given for another source, they
# would be dropped without a word (a synthetic run with data.factors still reads all 48 factors).
# The sources' own settings (data.synthetic, data.path) are left out: a config keeps them when
# --set data.source switches to another source.
DATA_KEYS = {"factors": ("panel",), "styles": ("panel",), "industry_map": ("daily",), "benchmark": ("daily",)}

#: (section, key, is the key ignored given its section, why): keys a config may set to no effect
IGNORED = (
    ("train", "val_months", lambda t: t.validation != "time", "train.validation is not 'time'"),
    ("train", "purge_months", lambda t: t.validation != "time", "train.validation is not 'time'"),
    ("train", "val_fraction", lambda t: t.validation != "random", "train.validation is not 'random'"),
    ("train", "min_delta", lambda t: t.patience is None and not (
        t.select == "rank_ic" if t.restore_best is None else t.restore_best),
     "neither train.patience nor a best-state restore is on"),
    ("labels", "up", lambda labels: labels.kind == "tercile", "labels.kind is 'tercile'"),
    ("labels", "down", lambda labels: labels.kind == "tercile", "labels.kind is 'tercile'"),
    ("labels", "excess", lambda labels: labels.kind == "tercile",
     "labels.kind is 'tercile' (ranks are the same with and without the month's mean)"),
    ("preprocess", "mad_k", lambda p: p.winsorize != "mad", "preprocess.winsorize is not 'mad'"),
    ("preprocess", "percentile", lambda p: p.winsorize != "percentile", "preprocess.winsorize is not 'percentile'"),
    ("backtest", "top_pct", lambda b: "top_pct" not in b.selections, "'top_pct' is not among backtest.selections"),
    ("walk_forward", "scheme", lambda w: w.retrain_every is None, "walk_forward.retrain_every is not set"),
    *(("data", key, lambda d, used=used: d.source not in used,
       "data.source is not " + " or ".join(f"'{u}'" for u in used)) for key, used in DATA_KEYS.items()),
)


def _warn_ignored(config: RunConfig, given: dict[str, set], source: str) -> None:
    # Such a key still enters the model's cache key: a run that "tries" it retrains for nothing.
    for section, key, ignored, why in IGNORED:
        value = config.sections.get(section, getattr(config, section, None))
        if key in given.get(section, ()) and value is not None and ignored(value):
            warnings.warn(ConfigWarning(f"{section}.{key} has no effect: {why} ({source})"), stacklevel=3)


# A run name becomes a directory under the output root: a plain name, never a path.
_NAME = re.compile(r"[^\W][\w.+-]{0,99}")
SEED_MAX = 2**32 - 1  # numpy's legacy seeding (and many users' tools) accept 0 .. 2**32 - 1


def _expand_home(config: RunConfig) -> None:
    # A shell expands ~ only at the start of a word: in a config file, or in --set key=~/x, it
    # would become a folder named "~" in the working directory.
    for section, key in (("data", "path"), ("data", "industry_map"), ("output", "dir"), ("output", "cache_dir")):
        value = getattr(getattr(config, section), key)
        if isinstance(value, str) and value.startswith("~"):
            setattr(getattr(config, section), key, os.path.expanduser(value))


def _check_run(config: RunConfig) -> None:
    if not _NAME.fullmatch(config.name) or ".." in config.name:
        raise ConfigError(f"run name {config.name!r} must be a plain name (letters, digits, '.', '_', '-', "
                          "'+'; no path separators, no '..', at most 100 characters)", "name")
    if not 0 <= config.seed <= SEED_MAX:
        raise ConfigError(f"seed must lie in 0..{SEED_MAX}, got {config.seed}", "seed")


def _check_dates(config: RunConfig) -> None:
    stamps = {}
    for key, value in dataclasses.asdict(config.dates).items():
        stamps[key] = iso_date(value, f"dates.{key}")
    order = ["train_start", "train_end", "test_start", "test_end"]
    for a, b in zip(order, order[1:]):
        if stamps[a] >= stamps[b]:
            raise ConfigError(f"{a} {stamps[a].date()} must be before {b} {stamps[b].date()}", f"dates.{b}")
    # The panel is monthly: a date stands for its month. Training must end a month before the
    # test starts, or the last training label (next month's return) is a test month's return.
    end, start = (stamps[k] + pd.offsets.MonthEnd(0) for k in ("train_end", "test_start"))
    if end >= start:
        raise ConfigError(f"train_end {stamps['train_end'].date()} and test_start {stamps['test_start'].date()} "
                          f"fall in the same month {end:%Y-%m}; the test must start in a later month",
                          "dates.test_start")


_ISO = re.compile(r"\d{4}-\d{1,2}(?:-\d{1,2})?")


def iso_date(value, where: str, what: str = "date") -> pd.Timestamp:
    """``value`` (``YYYY-MM-DD`` or ``YYYY-MM``) as a Timestamp, else a :class:`ConfigError`.

    Other spellings are refused: ``06/12/2014`` would be read month first, ``13/12/2014`` day
    first, and neither would say so.
    """
    text = str(value).strip()
    try:
        if not _ISO.fullmatch(text):
            raise ValueError
        return pd.Timestamp(text)
    except (ValueError, TypeError):
        raise ConfigError(f"'{value}' is not a valid {what} (write YYYY-MM-DD or YYYY-MM)", where) from None


def _check_backtest(config: RunConfig) -> None:
    bt = config.backtest
    for s in bt.selections:
        if s not in SELECTIONS:
            raise ConfigError(f"unknown selection '{s}' (one of {', '.join(SELECTIONS)})", "backtest.selections")
    for b in bt.books:
        if b not in BOOKS:
            raise ConfigError(f"unknown book '{b}' (one of {', '.join(BOOKS)})", "backtest.books")
    if not bt.selections or not bt.books:
        raise ConfigError("at least one selection and one book are needed", "backtest")
    if not 0 < bt.top_pct <= 1:
        raise ConfigError(f"top_pct must be in (0, 1], got {bt.top_pct}", "backtest.top_pct")
    if bt.top_pct > 0.5 and "top_pct" in bt.selections:
        warnings.warn(ConfigWarning(
            f"backtest.top_pct {bt.top_pct:g} is above 0.5: the top_pct high and low baskets share at least "
            f"{2 * bt.top_pct - 1:.0%} of the stocks, which the long/short figures and a long_short book net "
            "out (at 1 both baskets are the whole universe and long/short is 0)"), stacklevel=4)
    if bt.lot < 0:
        raise ConfigError(f"lot must be >= 0, got {bt.lot}", "backtest.lot")
    if not bt.gross > 0:
        raise ConfigError(f"gross (target exposure) must be > 0, got {bt.gross}", "backtest.gross")
    if not bt.cash > 0:
        raise ConfigError(f"cash must be > 0, got {bt.cash}", "backtest.cash")
    if bt.workers < 0:
        raise ConfigError(f"workers must be >= 0 (0: the cores available), got {bt.workers}", "backtest.workers")
    for key in ("commission", "stamp_duty"):
        rate = getattr(bt.costs, key)
        if not 0 <= rate < 1:
            raise ConfigError(f"{key} is a rate and must lie in [0, 1), got {rate}", f"backtest.costs.{key}")
    if bt.costs.min_commission < 0:
        raise ConfigError(f"min_commission must be >= 0, got {bt.costs.min_commission}",
                          "backtest.costs.min_commission")
    if config.data.source in ("panel", "daily") and not config.data.path:
        raise ConfigError(f"data.source '{config.data.source}' needs data.path", "data.path")


def _check_synthetic(config: RunConfig) -> None:
    """Type- and range-check ``data.synthetic`` against the generator's own settings."""
    from feeds.synthetic import MarketConfig  # numpy only; imported when a config is checked

    hints = typing.get_type_hints(MarketConfig)
    for key, value in config.data.synthetic.items():
        where = f"data.synthetic.{key}"
        if key not in hints or key == "seed":
            known = ", ".join(sorted(k for k in hints if k != "seed"))
            hint = "; the market's seed is the top-level 'seed'" if key == "seed" else ""
            raise ConfigError(f"unknown synthetic market setting '{key}' (known: {known}){hint}", where)
        value = _coerce(value, hints[key], where)
        if key in ("start", "end"):
            iso_date(value, where, "month")
        elif key in ("n_stocks", "n_industries") and value < 1:
            raise ConfigError(f"{key} must be >= 1, got {value}", where)
        elif isinstance(value, (int, float)) and value < 0:
            raise ConfigError(f"{key} must be >= 0, got {value}", where)
        elif key.endswith("_rate") and value > 1:
            raise ConfigError(f"{key} is a share and must lie in [0, 1], got {value}", where)
        elif key == "delist_hazard" and value >= 1:
            raise ConfigError(f"{key} is a monthly probability and must lie in [0, 1), got {value}", where)
        config.data.synthetic[key] = value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``key.sub=value`` strings (values parsed as YAML) to a raw config mapping."""
    raw = dict(raw or {})
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not key.sub=value", "--set")
        key, text = item.split("=", 1)
        try:
            value = parse(text)
        except yaml.YAMLError:
            value = text
        node = raw
        parts = key.strip().split(".")
        if parts[:2] == ["sweep", "axes"] and len(parts) > 3:  # an axis name is a dotted key itself
            parts = [*parts[:2], ".".join(parts[2:])]
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"cannot set '{key}': '{part}' is not a section", f"--set {item}")
            node[part] = child = dict(child)
            node = child
        old = node.get(parts[-1])
        # --set data.synthetic={n_stocks: 300} looks like "change n_stocks" but replaces the mapping.
        lost = [str(k) for k in old if k not in value] if isinstance(old, dict) and isinstance(value, dict) else []
        if lost:
            warnings.warn(ConfigWarning(
                f"--set {key}={{...}} replaces the whole mapping, dropping the config's {', '.join(lost)} "
                f"(to change one key, write --set {key}.<key>=value)"), stacklevel=2)
        node[parts[-1]] = value
    return raw


def load_config(path, overrides: list[str] | None = None) -> RunConfig:
    """Read, override and validate a YAML config file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError("config file not found", str(path))
    if path.is_dir():
        raise ConfigError("is a directory, not a config file", str(path))
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                          f"{exc.start})", str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror or exc}", str(path)) from None
    try:
        raw = parse(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"invalid YAML: {getattr(exc, 'problem', exc)}", where) from None
    if raw is None:
        # Most likely a truncated or wrong file; a silent full default run would cost minutes.
        raise ConfigError("config file is empty (to run every default, write '{}' or a 'name:' line)", str(path))
    if not isinstance(raw, dict):
        raise ConfigError(f"the config must be a mapping of sections, got a YAML {type(raw).__name__}", str(path))
    config = build_config(apply_overrides(raw, overrides or []), source=str(path))
    if config.name == "run":  # the default name: the config file's, made a plain name
        config.name = re.sub(r"[^\w.+-]+", "_", path.stem).strip("._")[:100] or "run"
    return config


def dump_config(config: RunConfig) -> str:
    """The resolved config as YAML (what ``config.yaml`` in a run directory holds)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
