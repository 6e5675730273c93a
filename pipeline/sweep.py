"""Sweeps: one ordinary run per point of a grid of settings, on Ray or in this process.

A config with a ``sweep`` section is a sweep over its other sections (the base config)::

    sweep:
      axes:                      # every combination of the values is one point
        seed: 0..9               # "a..b": the integers a to b; or a list: [64, 400]
        model.hidden: [64, 400]  # any config key, dotted as in --set
      replicates: [seed]         # axes averaged over in the summary (default: seed and *.seed axes)
      threads_per_point: 1       # torch threads of each point = CPUs reserved for it on Ray

Each point is the base config with the point's values set (as ``--set`` would), run by
:func:`pipeline.run.run` into ``<sweep dir>/points/<point id>/``: an ordinary run directory,
its models cached by their key as usual. A point whose directory already holds a complete run
of the very same config, code and data files (:mod:`pipeline.provenance`) is not run again, so
re-running a sweep only does what is missing. A point that fails is reported (one line, in the
progress and in ``sweep.csv``) and the others go on; a point's warnings are shown with its id and
kept in ``sweep.csv``. ``sweep.csv`` (one row per point) and ``sweep.html`` (mean ± std per setting, the baselines
as rows; :mod:`reports.sweep`) are rewritten as points finish.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .config import ConfigError, RunConfig, SweepConfig, dump_config, load_config
from .executors import PlainExecutor, make_executor
from .log import WARNING
from .output import OutputError, is_run_directory
from .provenance import inputs_stamp

SWEEP_MARKER = ".lstm-tercile-sweep"  # a sweep directory may only be reused by a sweep
_RANGE = re.compile(r"\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*")
_UNSAFE = re.compile(r"[^\w.=,+-]")




@dataclass(frozen=True)
class Point:
    """One point of the grid: its values, the config they make, and its run directory."""

    id: str
    values: dict
    config: RunConfig
    directory: Path


@dataclass(frozen=True)
class PointTask:
    """What an executor sends to :func:`run_point` (picklable, paths absolute)."""

    config: RunConfig
    directory: str
    root: str
    retrain: bool = False


class SweepWarning(UserWarning):
    """A warning a point's run raised, shown by the sweep with the point's id."""


def run_point(task: PointTask) -> dict:
    """Run one point (an ordinary run) and return its ``metrics.json``, its wall time and the
    warnings it raised (from its ``run.log``).

    Runs wherever the executor puts it (a Ray worker on another machine too, whose output
    never reaches the terminal: the sweep shows the warnings); raises what
    :func:`pipeline.run.run` raises.
    """
    from .run import run

    started = time.perf_counter()
    with warnings.catch_warnings(record=True):  # kept in run.log; the sweep shows them, with the point
        run(task.config, output=Path(task.directory), retrain=task.retrain, quiet=True, root=Path(task.root))
    return {"metrics": json.loads((Path(task.directory) / "metrics.json").read_text(encoding="utf-8")),
            "elapsed_s": round(time.perf_counter() - started, 2), "warnings": point_warnings(task.directory)}


def point_warnings(directory) -> list[str]:
    """The warnings a point's run raised, as its ``run.log`` keeps them."""
    try:
        lines = (Path(directory) / "run.log").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [line[len(WARNING):] for line in lines if line.startswith(WARNING)]


def is_sweep(config: RunConfig) -> bool:
    """True when ``config`` has a ``sweep`` section (the CLI then runs :func:`run_sweep`)."""
    return "sweep" in config.sections


def axis_values(key: str, values) -> list:
    """The values of one axis: a list, one value, or ``"a..b"`` ranges expanded."""
    out = []
    for value in values if isinstance(values, list) else [values]:
        match = _RANGE.fullmatch(value) if isinstance(value, str) else None
        if match:
            first, last = int(match[1]), int(match[2])
            if last < first:
                raise ConfigError(f"range '{value}' is empty (write a..b with a <= b)", f"sweep.axes.{key}")
            out.extend(range(first, last + 1))
        else:
            out.append(value)
    if not out:
        raise ConfigError("an axis needs at least one value", f"sweep.axes.{key}")
    return out


def value_text(value) -> str:
    """A value as the point id and the tables show it (YAML-like: true, 0.001, lstm, [1, 2])."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def point_id(values: dict) -> str:
    """``key=value,key=value`` in axis order (the point's name in progress lines and tables)."""
    return ",".join(f"{key}={value_text(value)}" for key, value in values.items())


def point_directory_name(pid: str) -> str:
    """The point id as a directory name: unsafe characters replaced, long ids shortened
    with a hash of the whole id so that two points never share a directory."""
    name = _UNSAFE.sub("_", pid) or "point"
    if len(name) > 120:
        name = f"{name[:100]}~{hashlib.sha256(pid.encode()).hexdigest()[:12]}"
    return name


def replicate_axes(sweep: SweepConfig) -> list[str]:
    if sweep.replicates is not None:
        unknown = [key for key in sweep.replicates if key not in sweep.axes]
        if unknown:
            raise ConfigError(f"'{unknown[0]}' is not an axis (axes: {', '.join(sweep.axes)})", "sweep.replicates")
        return list(sweep.replicates)
    return [key for key in sweep.axes if key == "seed" or key.endswith(".seed")]


def expand(path, overrides: list[str], base: RunConfig, directory: Path) -> list[Point]:
    """The points of the sweep file at ``path`` (``base``: its config under ``overrides``),
    every point's config checked; their run directories under ``directory/points/``.

    Raises :class:`ConfigError` for a bad ``sweep`` section or a point whose config is wrong
    (e.g. an axis key that is no config key), before anything runs.
    """
    sweep: SweepConfig = base.sections.get("sweep")
    if not is_sweep(base) or not sweep.axes:
        raise ConfigError("the sweep section needs axes (e.g. axes: {seed: 0..9})", f"sweep.axes, {path}")
    if sweep.threads_per_point < 1:
        raise ConfigError(f"threads_per_point must be >= 1, got {sweep.threads_per_point}",
                          f"sweep.threads_per_point, {path}")
    sections = {name for name, value in vars(base).items() if dataclasses.is_dataclass(value)} | set(base.sections)
    for key in sweep.axes:
        if key == "sweep" or key.startswith("sweep.") or key in ("name", "output.dir"):
            raise ConfigError(f"'{key}' cannot be an axis (the sweep sets it for each point)",
                              f"sweep.axes.{key}, {path}")
        if key in sections:  # its values would replace the whole section, every other key of it lost
            raise ConfigError(f"'{key}' is a section, not a setting: name the setting (e.g. '{key}.<key>')",
                              f"sweep.axes.{key}, {path}")
        given = [item for item in overrides if item.split("=", 1)[0].strip() == key]
        if given:  # the axis would win over it without a word
            raise ConfigError(f"--set {given[0]} sets an axis of the sweep: change the axis instead "
                              f"(--set sweep.axes.{key}=...)", f"sweep.axes.{key}, {path}")
    _warn_shared_members(base, sweep)
    # One torch thread per reserved CPU and the books in the point's own process: parallel points
    # must not oversubscribe the cores.
    threads = [] if base.sections["train"].num_threads else [f"train.num_threads={sweep.threads_per_point}"]
    if not base.backtest.workers:
        threads.append("backtest.workers=1")
    grid = [axis_values(key, values) for key, values in sweep.axes.items()]
    points, seen = [], {}
    for combo in itertools.product(*grid):
        values = dict(zip(sweep.axes, combo))
        pid = point_id(values)
        config = load_config(path, [*overrides, *threads, *(f"{k}={json.dumps(v)}" for k, v in values.items())])
        config.sections.pop("sweep", None)  # a point is an ordinary run
        config.name = base.name
        name = point_directory_name(pid)
        if name in seen:
            raise ConfigError(f"points {seen[name]} and {pid} would share a directory (repeated axis value?)",
                              f"sweep.axes, {path}")
        seen[name] = pid
        points.append(Point(pid, values, config, directory / "points" / name))
    return points


def _warn_shared_members(base: RunConfig, sweep: SweepConfig) -> None:
    # train.ensemble k trains the seeds seed..seed+k-1: on one data set (a file; a synthetic
    # market changes with the seed) seeds closer than k share members, and the replicates'
    # spread understates the noise.
    k = base.sections["train"].ensemble
    if k < 2 or base.data.source == "synthetic" or "seed" not in sweep.axes:
        return
    seeds = sorted(set(axis_values("seed", sweep.axes["seed"])))
    close = [(a, b) for a, b in zip(seeds, seeds[1:]) if b - a < k]
    if close:
        warnings.warn(SweepWarning(
            f"sweep.axes.seed {close[0][0]} and {close[0][1]} are closer than train.ensemble ({k}): on the same "
            f"data the point seed={close[0][0]} trains seeds {close[0][0]}..{close[0][0] + k - 1}, so the points "
            f"share ensemble members; space the seeds by {k} (e.g. seed: [0, {k}, {2 * k}])"), stacklevel=3)


def completed(point: Point) -> dict | None:
    """The metrics of a complete earlier run of exactly this point's config, else ``None``."""
    try:
        if (is_run_directory(point.directory)
                and (point.directory / "config.yaml").read_text(encoding="utf-8") == dump_config(point.config)):
            return json.loads((point.directory / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass  # incomplete or unreadable: run it again
    return None


def prepare_directory(directory: Path) -> Path:
    """Create (or reuse) the sweep directory; refuse a folder that is not an earlier sweep."""
    directory = Path(directory)
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise OutputError("the sweep output exists and is not a directory", str(directory))
    if directory.exists() and any(directory.iterdir()) and not (directory / SWEEP_MARKER).is_file():
        raise OutputError(f"the output directory exists and is not a sweep of this tool (no {SWEEP_MARKER} "
                          "marker); choose another --output or remove it yourself", str(directory))
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / SWEEP_MARKER).write_text(json.dumps({"tool": "lstm-tercile", "kind": "sweep"}),
                                              encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write the sweep directory: {exc.strerror or exc}", str(directory)) from None
    return directory


def point_row(point: Point, status: str, doc: dict | None, elapsed: float | None, error: str,
              settings: list[str], replicates: list[str], warned: list[str] = ()) -> dict:
    """The point's row of ``sweep.csv`` (columns: :mod:`reports.sweep`); ``doc`` its metrics.json."""
    from reports.sweep import point_metrics

    model = point.config.sections["model"]
    return {"point": point.id, "status": status, "error": error, "warnings": " | ".join(warned),
            "model": f"{model.kind.upper()} {model.layers}x{model.hidden}",
            "setting": point_id({key: point.values[key] for key in settings}),
            "replicate": point_id({key: point.values[key] for key in replicates}),
            **{key: value_text(value) for key, value in point.values.items()},
            "directory": f"points/{point.directory.name}", "elapsed_s": elapsed,
            "cached": (doc or {}).get("checks", {}).get("model_cached"),
            **(point_metrics(doc) if doc else {})}


def progress_line(finished: int, total: int, row: dict) -> str:
    """``[ 3/20] done    seed=2,model.kind=gru 31.2 s  rank IC 0.044`` (or the error)."""
    figure = row.get("rank_ic")
    detail = row["error"] or (f"rank IC {figure:.3f}" if figure is not None and pd.notna(figure) else "")
    timing = f" {row['elapsed_s']:.1f} s" if row["elapsed_s"] is not None else ""
    return f"[{finished:>{len(str(total))}}/{total}] {row['status']:<7} {row['point']}{timing}  {detail}"


@dataclass
class SweepResult:
    """What :func:`run_sweep` did: the per-point frame (``sweep.csv``), the summary table as
    Markdown, and the counts."""

    directory: Path
    points: pd.DataFrame
    table: str
    counts: dict


def run_sweep(path, overrides: list[str] | None = None, output=None, *, executor="auto",
              ray_address: str | None = None, num_cpus: int | None = None, retrain: bool = False,
              quiet: bool = False, root=None) -> SweepResult:
    """Run every point of the sweep config at ``path`` that is not complete yet; write the summary.

    Parameters
    ----------
    path : str or Path
        A config with a ``sweep`` section.
    overrides : list of str
        ``key.sub=value`` overrides of the base config (``--set``).
    output : str or Path, optional
        The sweep directory (default ``output.dir`` or ``runs/<name>``).
    executor : {'auto', 'ray', 'plain'} or executor
        'auto': Ray when installed (a local instance, or the cluster at ``ray_address``),
        else the plain in-process executor. Or an executor object
        (:class:`pipeline.executors.RayExecutor`, ...), which the caller closes: one Ray
        instance for several sweeps.
    ray_address : str, optional
        A running Ray cluster (``head:6379``, ``ray://head:10001``, ``auto``).
    num_cpus : int, optional
        CPUs of a local Ray instance (default: all of this machine's).
    retrain : bool
        Train every point's models again and re-run every point.
    quiet : bool
        No progress lines on stderr.
    root : str or Path, optional
        What relative paths of the config resolve against (default: the working directory).

    Returns
    -------
    SweepResult
    """
    from reports.sweep import markdown_table, summary_table, write_sweep_csv, write_sweep_html

    started = time.perf_counter()
    overrides = list(overrides or [])
    root = Path(root or Path.cwd()).resolve()
    say = (lambda line: None) if quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    base = load_config(path, overrides)
    directory = Path(output or base.output.dir or root / "runs" / base.name)
    directory = (directory if directory.is_absolute() else root / directory).resolve()
    points = expand(path, overrides, base, directory)
    sweep: SweepConfig = base.sections["sweep"]
    replicates = replicate_axes(sweep)
    settings = [key for key in sweep.axes if key not in replicates]
    prepare_directory(directory)

    rows: dict[int, dict] = {}

    def record(index: int, status: str, doc: dict | None = None, elapsed: float | None = None,
               error: str = "", warned: list[str] = ()) -> None:
        rows[index] = point_row(points[index], status, doc, elapsed, error, settings, replicates, warned)
        say(progress_line(len(rows), len(points), rows[index]))
        for text in warned:  # a Ray worker's own output never reaches this terminal
            warnings.warn(SweepWarning(f"{points[index].id}: {text}"), stacklevel=3)

    def write_summary() -> tuple[pd.DataFrame, str]:
        frame = pd.DataFrame([rows[i] for i in sorted(rows)])
        table = summary_table(frame, selections=base.backtest.selections)
        context = {"name": base.name, "config": str(path), "replicates": replicates,
                   "axes": {key: value_text(values) for key, values in sweep.axes.items()},
                   "executor": runner.describe(), "wall_s": time.perf_counter() - started,
                   "points": len(points)}
        write_sweep_csv(directory / "sweep.csv", frame)
        write_sweep_html(directory / "sweep.html", frame, table, context)
        return frame, markdown_table(table)

    say(f"sweep {base.name}: {len(points)} points; outputs in {directory}/")
    todo, stale = [], 0
    for index, point in enumerate(points):
        doc = None if retrain else completed(point)
        if doc is not None and (doc.get("checks") or {}).get("inputs") != inputs_stamp(point.config, root):
            doc, stale = None, stale + 1  # same config, but the code or a data file changed since
        if doc is not None:
            record(index, "skipped", doc, warned=point_warnings(point.directory))
        else:
            todo.append(index)
    if stale:
        say(f"sweep {base.name}: {stale} complete point(s) run again: the code or their data files changed")
    owned = isinstance(executor, str)  # else the caller's executor, which the caller closes
    if not owned:
        runner = executor
    elif todo:
        runner = make_executor(executor, address=ray_address, num_cpus=num_cpus,
                               cpus_per_task=sweep.threads_per_point, env=worker_env(sweep.threads_per_point))
    else:
        runner = PlainExecutor()  # every point is complete already: no Ray instance for nothing
    say(f"sweep {base.name}: {len(todo)} points to run on {runner.describe()}")
    try:
        tasks = [PointTask(points[i].config, str(points[i].directory), str(root), retrain) for i in todo]
        for position, result, error in runner.map(run_point, tasks):
            index = todo[position]
            if error is None:
                record(index, "done", result["metrics"], result["elapsed_s"], warned=result["warnings"])
            else:
                record(index, "failed", error=error)
            write_summary()
    finally:
        if owned:
            runner.close()
    frame, table = write_summary()
    counts = {status: int((frame["status"] == status).sum()) for status in ("done", "skipped", "failed")}
    say(f"sweep {base.name}: {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed "
        f"({time.perf_counter() - started:.0f} s)")
    return SweepResult(directory, frame, table, counts)


def worker_env(threads: int) -> dict[str, str]:
    """Environment of every point's Ray worker: one BLAS thread (numpy's OpenBLAS stalls beside
    torch on busy cores, see run_backtest.py), the point's CPU share for OpenMP with passive waits
    (points share the machine's cores), no display."""
    return {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE",
            "MPLBACKEND": "Agg"}

