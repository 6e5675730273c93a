"""The train stage: the run's models, trained or loaded from the cache by their model key.

:func:`train_signals` is the stage: one :class:`~pipeline.cache.SignalBundle` for a single
training window, or one per walk-forward fold served as one (:mod:`pipeline.walkforward`).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import re
import warnings
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from signals import SignalSpec, fit
from signals.checkpoint import library_versions, panel_fingerprint
from signals.model import RECURRENT_KINDS
from signals.spec import SECTIONS

from . import interrupts
from .cache import SignalBundle, load_bundle, store_bundle
from .config import ConfigError, RunConfig
from .data import RunData
from .output import fingerprint, remove_stale
from .walkforward import combine_folds, fold_config, folds, walk_forward

# The signal spec's sections are config sections; seed, device and progress come from the
# top level / the command line, so they are not settable inside ``train``.
SIGNAL_SECTIONS = SECTIONS
MANAGED = {"train": {"seed": "the top-level 'seed'", "device": "the top-level 'device'", "progress": "--quiet"},
           "model": {"n_factors": "the data", "members": "train.ensemble"}}

PROJECT = "lstm-tercile"
SOURCE = Path(__file__).resolve().parent.parent / "signals"  # the code that trains and serves


def signal_spec(config: RunConfig) -> SignalSpec:
    """The run's :class:`signals.SignalSpec` (defaults where a section is absent), with the
    top-level seed and device filled in."""
    spec = SignalSpec(**{name: config.sections[name] for name in SIGNAL_SECTIONS if config.sections.get(name)})
    if spec.model.kind not in RECURRENT_KINDS:  # the baselines are trained beside it, always
        raise ConfigError(f"model.kind must be one of {', '.join(RECURRENT_KINDS)}, got {spec.model.kind!r}",
                          "model.kind")
    return replace(spec, train=replace(spec.train, seed=config.seed, device=config.device))


@functools.lru_cache(maxsize=1)
def project_version() -> dict:
    """The project's version (package metadata, else pyproject.toml) and a digest of the
    ``signals`` source: a code change invalidates cached models even between releases."""
    try:
        version = importlib.metadata.version(PROJECT)
    except importlib.metadata.PackageNotFoundError:  # run from a checkout without `pip install`
        match = re.search(r'^version\s*=\s*"([^"]+)"', (SOURCE.parent / "pyproject.toml").read_text(), re.M)
        version = match.group(1) if match else "unknown"
    digest = hashlib.sha256()
    for path in sorted(SOURCE.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return {"version": version, "signals_source": digest.hexdigest()[:16]}


def model_key(config: RunConfig, data: RunData) -> str:
    """Hash of everything that determines the trained models."""
    train_end = config.timestamps["train_end"] + pd.offsets.MonthEnd(0)
    upto = int(data.panel.dates.searchsorted(train_end, "right"))
    return fingerprint({
        "panel": panel_fingerprint(data.panel.take(rows=slice(0, upto))),
        "dates": [config.dates.train_start, config.dates.train_end],
        "signal": signal_spec(config).fingerprint(),
        "versions": {k: v for k, v in library_versions().items() if k in ("torch", "numpy")},
        PROJECT: project_version(),
        "device": str(torch.cuda.is_available() and config.device != "cpu"),
    })


def model_cache(config: RunConfig, root: Path) -> Path:
    """The model cache of ``config``: ``output.cache_dir``, relative to ``root`` unless absolute."""
    path = Path(config.output.cache_dir)
    return path if path.is_absolute() else root / path


def train_signals(config: RunConfig, data: RunData, retrain: bool, quiet: bool, log, cache_root: Path
                  ) -> SignalBundle:
    """The train stage: one bundle, or one per walk-forward fold served as one."""
    if walk_forward(config) is None:
        return train_or_load(config, data, retrain, quiet, log, cache_root)
    plan = folds(config)
    log(f"walk-forward: {len(plan)} folds, retrained every {walk_forward(config).retrain_every} months "
        f"({walk_forward(config).scheme} window)")
    bundles = []
    for fold in plan:
        interrupts.check()  # minutes per fold: a swallowed signal stops here, not at the end
        log(f"walk-forward {fold.describe()}")
        bundles.append(train_or_load(fold_config(config, fold), data, retrain, quiet, log, cache_root))
    return combine_folds(plan, bundles)


def train_or_load(config: RunConfig, data: RunData, retrain: bool, quiet: bool, log,
                  cache_root: Path) -> SignalBundle:
    """Train the recurrent model and the baselines, or load them from the cache by :func:`model_key`.

    A damaged or foreign cache entry is retrained, with one warning line. Debris of killed
    runs in the cache root is removed first.
    """
    key = model_key(config, data)
    cache = cache_root / key
    remove_stale(cache_root, (".*.tmp",))
    stale = cache.exists()  # unusable or --retrain: the new entry replaces it
    spec = signal_spec(config)
    if cache.exists() and not retrain:
        try:
            bundle = load_bundle(cache, key)
        except Exception as exc:  # a damaged or foreign cache entry is retrained, never trusted
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            warnings.warn(f"model cache entry {cache} is unusable ({reason}); training again")
        else:  # outside the try: a warning turned into an error must not pass for a damaged entry
            log(f"model: loaded from cache {cache} (--retrain to train again)")
            # Styles only group factors for the report, so they stay out of the key; the saved
            # model.pt must still describe the styles of this run's data.
            for model in bundle.served.values():
                if model is not None:
                    model.styles = {k: list(v) for k, v in data.panel.styles.items()}
            warn_early_selection(bundle.training, spec.train)
            return bundle
    log(f"model: training {spec.model.describe()} on {config.dates.train_start}.."
        f"{config.dates.train_end} ({spec.train.validation} validation)")
    result = fit(data.panel, config.dates.train_start, config.dates.train_end, spec,
                 progress=not quiet, config=config.to_dict(), report=log)
    training = {
        "history": result.history, "baseline_history": result.baseline_history,
        "snapshots": result.train_result.snapshots,
        "validation_accuracy": result.validation_accuracy,
        "baseline_validation_accuracy": result.baseline_validation_accuracy,
        "validation": result.validation, "best_step": result.train_result.best_step,
        "refit": result.signal.meta.get("refit"), "samples": result.samples, "timings": result.timings,
        "members": result.signal.meta.get("members"),  # train.ensemble: each seed's own validation
    }
    bundle = SignalBundle(result.signal, result.baseline, result.composite, training, cached=False, key=key)
    store_bundle(cache_root, key, bundle, replace=stale)
    warn_early_selection(training, spec.train)
    return bundle


# A selection this early, with training gone on well past it, served a barely trained model:
# on one of five synthetic markets two walk-forward folds did so and lost to the baselines
# (README, "Five synthetic markets, walk-forward").
EARLY_EVALUATIONS = 2


def warn_early_selection(training: dict, train) -> None:
    """Warn when the validation split chose a state of the first ``EARLY_EVALUATIONS``
    evaluations although training went on for at least as many more without a better one."""
    if not train.restores_best:
        return  # the last state is served: nothing was selected
    history = training.get("history")  # the first member's; every member has the same budget and patience
    last = int(history["step"].max()) if history is not None and len(history) else 0
    members = training.get("members") or [{"seed": None, "best_step": training.get("best_step")}]
    early = [m for m in members if m.get("best_step") is not None
             and 0 < m["best_step"] <= EARLY_EVALUATIONS * train.eval_every
             and last - m["best_step"] >= EARLY_EVALUATIONS * train.eval_every]
    for member in early:
        seed = "" if member["seed"] is None or len(members) == 1 else f" (seed {member['seed']})"
        warnings.warn(f"the validation split selected the state after {member['best_step']} training steps{seed}, "
                      f"one of its first {EARLY_EVALUATIONS} evaluations, and no later state up to step {last} "
                      f"did better on it (train.select: {train.select}): the model served is barely trained "
                      f"(compare lstm_margin in metrics.json with the baselines)")
