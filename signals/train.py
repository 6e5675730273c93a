"""The training loop: Adam on cross-entropy, a step/epoch budget, early stopping, history.

Kept apart from the modules (as qlib's ``pytorch_lstm`` keeps its trainer apart from
its ``nn.Module``): :func:`train` builds the module from a :class:`ModelConfig` inside
a seeded, deterministic scope, draws shuffled batches from a seeded generator,
evaluates every ``eval_every`` steps on a fixed validation subsample, stops after
``patience`` evaluations without a better validation loss and then restores the best state.
The same loop trains every recurrent kind (LSTM, GRU, RNN) and the logistic baseline.
"""
from __future__ import annotations

import contextlib
import copy
import math
import platform
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as nnf
from torch.optim import swa_utils
from tqdm.auto import tqdm

from feeds.errors import UserError
from .model import ModelConfig, build_model
from .ranking import mean_rank_ic
from .windows import BatchSampler, WindowDataset

VALIDATION = ("random", "time")
SELECT = ("loss", "rank_ic")
REFIT = ("none", "steps", "epochs")
DEVICES = ("auto", "cpu", "cuda")
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


class TrainError(UserError):
    """Training settings or data cannot be used."""


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (defaults in brackets; seed values where the study gives them).

    Parameters
    ----------
    batch_size : int
        [1000] samples per optimizer step, drawn at random (seed).
    lr : float
        [0.001] Adam learning rate (seed).
    steps : int or None
        [150] optimizer-step budget. The seed reports "100 iterations"; 150 is what
        fits the main command's time budget on 2 CPU cores (see docs/signals.md).
    epochs : float or None
        [None] budget in passes over the training samples; with ``steps`` too, the
        smaller budget wins. At least one of the two must be set.
    validation : {'random', 'time'}
        ['random'] the seed's protocol: ``val_fraction`` of the samples at random
        (optimistic: overlapping windows of the same stock fall on both sides).
        'time': the last ``val_months`` label months of the training window, with a
        purge gap before them (see ``purge_months``).
    val_fraction : float
        [0.1] share of samples held out by the 'random' protocol (seed).
    val_months : int
        [12] months held out by the 'time' protocol.
    purge_months : int or None
        [None = window - 1] months dropped between the training and validation months
        of the 'time' protocol: with ``window - 1`` no training window shares an input
        month with a validation window (labels never overlap: each is one month ahead).
    eval_every : int
        [10] steps between evaluations (one more at the end; step 0 records the input
        layer only): the rows of the history and the points of the training curves.
    eval_samples : int
        [3000] fixed seeded subsample of the validation set used at each evaluation
        (0 = all): enough for the curves at a tenth of a step's cost per 1,000 samples.
        Raise it when early stopping should act on small loss changes. The final
        validation accuracy always uses the whole set.
    select : {'loss', 'rank_ic'}
        ['loss'] the validation criterion of early stopping and of the restored state:
        the cross-entropy, or 'rank_ic', the mean monthly Spearman correlation of the
        score ``p_up - p_down`` with the next-month return over the validation samples
        (per label month). On raw ±3% labels the loss between checkpoints moves by a few
        1e-4, mostly the class priors following the market mix of recent batches, and
        says little about the cross-sectional ranking the strategy trades; the rank IC
        measures that ranking directly (docs/signals.md, "Model selection").
    patience : int or None
        [None] early stopping: stop after this many evaluations without a validation
        criterion better than the best by ``min_delta``; ``None`` runs the whole budget
        (the seed trains a fixed number of iterations).
    min_delta : float
        [0.0] improvement that resets the patience counter.
    restore_best : bool or None
        [None = on when ``patience`` is set or ``select`` is 'rank_ic'] end with the state
        of the best validation criterion instead of the last one.
    refit : {'none', 'steps', 'epochs'}
        ['none'] after the validation split has chosen the state, train the model again from
        the same initialisation and batch seed on EVERY sample of the training window (the
        training, purged and validation months) and serve that: for the selected number of
        steps ('steps') or for as many passes over the samples as the selected state made
        ('epochs': steps × all samples ÷ training samples). The choice is made on
        validation data (docs/signals.md, "Refit"); the validation figures a run reports
        stay those of the selected state, since the refitted model has seen those months.
    ensemble : int
        [1] train this many models with the seeds ``seed, seed + 1, ...`` on the same
        samples and split, and serve the average of their probabilities (one module,
        one checkpoint).
    weight_decay : float
        [0.0] Adam weight decay.
    ema : float or None
        [None] evaluate, select and serve an exponential moving average of the weights
        (``torch.optim.swa_utils``, updated after every step with this decay; 0.98 averages
        over about the last 50 steps) instead of the weights of the last step; the refit
        serves its average too.
    grad_clip : float or None
        [None] clip the gradient norm.
    seed : int
        [0] seeds initialisation, batch order and the validation split.
    device : {'auto', 'cpu', 'cuda'}
        ['auto'] CUDA when available, else CPU.
    num_threads : int or None
        [None] torch CPU threads during training (``None`` keeps the current setting).
    deterministic : bool
        [True] ``torch.use_deterministic_algorithms(True)`` while training (restored after).
    progress : bool
        [True] a tqdm bar with loss and accuracy.
    """

    batch_size: int = 1000
    lr: float = 1e-3
    steps: int | None = 150
    epochs: float | None = None
    validation: str = "random"
    val_fraction: float = 0.1
    val_months: int = 12
    purge_months: int | None = None
    eval_every: int = 10
    eval_samples: int = 3000
    select: str = "loss"
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool | None = None
    refit: str = "none"
    ensemble: int = 1
    weight_decay: float = 0.0
    ema: float | None = None
    grad_clip: float | None = None
    seed: int = 0
    device: str = "auto"
    num_threads: int | None = None
    deterministic: bool = True
    progress: bool = True

    def __post_init__(self):
        if self.steps is None and self.epochs is None:
            raise TrainError("train needs a budget: set train.steps and/or train.epochs")
        if self.steps is not None and self.steps < 1:
            raise TrainError(f"train.steps must be >= 1, got {self.steps}")
        if self.epochs is not None and not self.epochs > 0:
            raise TrainError(f"train.epochs must be > 0, got {self.epochs}")
        if self.batch_size < 1:
            raise TrainError(f"train.batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise TrainError(f"train.lr must be > 0, got {self.lr}")
        if self.validation not in VALIDATION:
            raise TrainError(f"train.validation must be one of {', '.join(VALIDATION)}, got {self.validation!r}")
        if not 0 < self.val_fraction < 1:
            raise TrainError(f"train.val_fraction must lie in (0, 1), got {self.val_fraction}")
        if self.val_months < 1:
            raise TrainError(f"train.val_months must be >= 1, got {self.val_months}")
        if self.purge_months is not None and self.purge_months < 0:
            raise TrainError(f"train.purge_months must be >= 0, got {self.purge_months}")
        if self.eval_every < 1:
            raise TrainError(f"train.eval_every must be >= 1, got {self.eval_every}")
        if self.patience is not None and self.patience < 1:
            raise TrainError(f"train.patience must be >= 1, got {self.patience}")
        if self.select not in SELECT:
            raise TrainError(f"train.select must be one of {', '.join(SELECT)}, got {self.select!r}")
        if self.refit not in REFIT:
            raise TrainError(f"train.refit must be one of {', '.join(REFIT)}, got {self.refit!r}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise TrainError(f"train.ema must lie in (0, 1) (or be null), got {self.ema}")
        if self.ensemble < 1:
            raise TrainError(f"train.ensemble must be >= 1, got {self.ensemble}")
        if self.device not in DEVICES:
            raise TrainError(f"train.device must be one of {', '.join(DEVICES)}, got {self.device!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        return cls(**data)

    @property
    def restores_best(self) -> bool:
        """Whether training ends with the best validation state (see ``restore_best``)."""
        if self.restore_best is None:
            return self.patience is not None or self.select == "rank_ic"
        return self.restore_best

    def refit_config(self, best_step: int, n_train: int, n_all: int) -> "TrainConfig":
        """The settings of the refit on all ``n_all`` samples after a selected ``best_step``
        on ``n_train`` (see ``refit``): that budget, run to its end, no selection."""
        steps = best_step if self.refit == "steps" else math.ceil(best_step * n_all / max(n_train, 1))
        steps = max(1, steps)
        return replace(self, steps=steps, epochs=None, select="loss", patience=None, restore_best=False,
                       eval_every=steps, refit="none")

    def total_steps(self, n_samples: int) -> int:
        """The step budget for ``n_samples`` training samples."""
        budgets = []
        if self.steps is not None:
            budgets.append(self.steps)
        if self.epochs is not None:
            budgets.append(max(1, math.ceil(self.epochs * n_samples / self.batch_size)))
        return min(budgets)


@dataclass
class TrainResult:
    """What :func:`train` returns next to the module.

    Attributes
    ----------
    history : DataFrame
        One row per evaluation: ``step, epoch, train_loss, train_acc, val_loss, val_acc,
        seconds`` and input-layer statistics ``w_in_*`` / ``b_in_*`` (mean, std,
        abs_mean and quantiles p01..p99 of the weights and biases).
    snapshots : list of dict
        ``{"step", "weight", "bias"}`` input-layer arrays at each evaluation (the
        histograms of SPEC §2).
    best_step : int
        Step of the returned state (the last step unless the best state was restored).
    best_val_loss, best_val_acc, best_val_rank_ic : float
        Its validation figures (on the evaluation subsample; the rank IC is NaN unless
        validation returns were given).
    validated_on_all : bool
        Whether the evaluations used the whole validation set.
    stopped_early : bool
    timings : dict
        ``train_seconds`` (optimizer steps only), ``eval_seconds``, ``steps``,
        ``seconds_per_100_steps``.
    """

    history: pd.DataFrame
    snapshots: list = field(default_factory=list)
    best_step: int = 0
    stopped_early: bool = False
    timings: dict = field(default_factory=dict)
    best_val_loss: float = math.nan
    best_val_acc: float = math.nan
    best_val_rank_ic: float = math.nan
    validated_on_all: bool = False


def resolve_device(device: str) -> torch.device:
    """'auto' → CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainError("train.device is 'cuda' but no CUDA device is available (use 'auto' or 'cpu')")
    return torch.device(device)


@contextlib.contextmanager
def seeded_scope(seed: int, deterministic: bool = True, num_threads: int | None = None,
                 device: torch.device | None = None):
    """Seed torch inside the block and restore the caller's RNG, determinism and threads after.

    Determinism is enforced on CPU; on CUDA some kernels (cuBLAS without
    ``CUBLAS_WORKSPACE_CONFIG``, cuDNN RNNs) have no deterministic version, so there it
    only warns.
    """
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    was_filling = torch.utils.deterministic.fill_uninitialized_memory
    threads = torch.get_num_threads()
    on_cpu = device is None or device.type == "cpu"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            if deterministic:
                torch.use_deterministic_algorithms(True, warn_only=not on_cpu)
                # Filling every new tensor with NaN is a debugging aid that slows CPU training
                # (up to 2x here); our results never read uninitialised memory.
                torch.utils.deterministic.fill_uninitialized_memory = False
            if num_threads:
                torch.set_num_threads(num_threads)
            yield
        finally:
            torch.use_deterministic_algorithms(was_deterministic, warn_only=was_warn_only)
            torch.utils.deterministic.fill_uninitialized_memory = was_filling
            torch.set_num_threads(threads)


ESTIMATE_AFTER = 5  # steps timed before the up-front estimate (the first one warms up allocators)


def describe_device(device: torch.device) -> str:
    """What trains: ``'cuda (NVIDIA H200)'`` or ``'cpu (2 threads, AMD EPYC 9B14, AVX-512)'``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    model, flags = "", ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not model:
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = value
                if model and flags:
                    break
    except OSError:  # not Linux
        model = platform.processor()
    simd = "AVX-512" if " avx512f" in flags else "AVX2" if " avx2" in flags else ""
    threads = torch.get_num_threads()
    parts = [f"{threads} thread{'s' if threads != 1 else ''}", model or "unknown CPU", simd]
    return f"cpu ({', '.join(p for p in parts if p)})"


def estimate_line(desc: str, device: torch.device, seconds: float, steps: int, total: int, config: TrainConfig) -> str:
    """The up-front cost of a training run, from its first ``steps`` timed steps."""
    per_step = seconds / max(steps, 1)
    budget = per_step * total
    stop = " (early stopping may end it sooner)" if config.patience is not None else ""
    return (f"{desc}: {per_step:.3g} s/step on {describe_device(device)} over the first {steps} steps; "
            f"{total} steps ≈ {_duration(budget)} plus validation every {config.eval_every} steps{stop}")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 \
        else f"{seconds / 3600:.1f} h"


def train(model_config: ModelConfig, train_set: WindowDataset, val_set: WindowDataset,
          config: TrainConfig, desc: str = "train", on_evaluate=None,
          val_returns: np.ndarray | None = None, report=None) -> tuple[torch.nn.Module, TrainResult]:
    """Build and train a model; return it (on CPU, eval mode) and the record.

    The returned state is the last one, or the best validation state when
    ``config.restores_best`` (by default: with early stopping).

    Parameters
    ----------
    model_config : ModelConfig
    train_set, val_set : WindowDataset
        Labelled samples; ``val_set`` drives evaluation and early stopping.
    config : TrainConfig
    desc : str
        Label of the progress bar.
    on_evaluate : callable, optional
        ``on_evaluate(step, model)`` after each evaluation (e.g. to track out-of-sample
        figures along training); the model is in eval mode during the call and must be
        left where it is (same device).
    val_returns : ndarray [len(val_set)], optional
        Next-month return of each validation sample: adds the validation rank IC to the
        history; required by ``config.select == 'rank_ic'``.
    report : callable, optional
        ``report(line)`` gets one line after the first few steps: seconds per step on this
        device and what the whole budget would take (see :func:`estimate_line`).
    """
    if len(train_set) == 0:
        raise TrainError("no training samples: the training window holds no labelled stock-month "
                         "with enough history")
    if len(val_set) == 0:
        raise TrainError("no validation samples: widen the training window or change train.validation")
    if config.select == "rank_ic" and val_returns is None:
        raise TrainError("train.select 'rank_ic' needs the validation samples' next-month returns")
    if val_returns is not None and len(val_returns) != len(val_set):
        raise TrainError(f"{len(val_returns)} validation returns for {len(val_set)} validation samples")
    device = resolve_device(config.device)
    total = config.total_steps(len(train_set))
    with seeded_scope(config.seed, config.deterministic, config.num_threads, device):
        model = build_model(model_config).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        averaged = None if config.ema is None else swa_utils.AveragedModel(
            model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(config.ema))
        served = model if averaged is None else averaged.module  # what is evaluated, kept and returned
        generator = torch.Generator().manual_seed(config.seed)
        batches = BatchSampler(len(train_set), config.batch_size, generator).forever()
        eval_pos = _eval_positions(len(val_set), config.eval_samples, config.seed)
        eval_set = val_set.subset(eval_pos)
        eval_returns = None if val_returns is None else np.asarray(val_returns)[eval_pos]
        eval_months = eval_set.t.numpy()

        rows, snapshots = [], []
        keep_best = config.restores_best
        # criterion (lower is better), step, state (kept only to restore it), loss, accuracy, rank IC
        best = (math.inf, 0, None, np.nan, np.nan, np.nan)
        stale, stopped = 0, False
        run_loss = run_correct = run_n = 0.0
        train_seconds = eval_seconds = 0.0
        bar = tqdm(total=total, desc=desc, unit="step", disable=not config.progress, leave=False)

        def record(step, validate=True):
            nonlocal eval_seconds, best, stale, run_loss, run_correct, run_n
            start = time.perf_counter()
            val_loss = val_acc = val_ric = np.nan
            if validate:
                logits = predict_logits(served, eval_set, device=device)
                val_loss, val_acc = _loss_accuracy(logits, eval_set)
                if eval_returns is not None:
                    probs = torch.softmax(logits, dim=1).numpy()
                    val_ric = mean_rank_ic(probs[:, 2] - probs[:, 0], eval_returns, eval_months)
            weight, bias = (p.detach().cpu().numpy().copy() for p in served.input_layer())
            row = {"step": step, "epoch": step * config.batch_size / len(train_set),
                   "train_loss": run_loss / run_n if run_n else np.nan,
                   "train_acc": run_correct / run_n if run_n else np.nan,
                   "val_loss": val_loss, "val_acc": val_acc, "val_rank_ic": val_ric, "seconds": train_seconds}
            row.update(_stats("w_in", weight))
            row.update(_stats("b_in", bias))
            rows.append(row)
            snapshots.append({"step": step, "weight": weight, "bias": bias})
            run_loss = run_correct = run_n = 0.0
            if validate:
                criterion = -val_ric if config.select == "rank_ic" else val_loss
                if np.isnan(criterion):
                    criterion = math.inf  # a month-less validation set never beats a real one
                if criterion < best[0] - config.min_delta:
                    state = copy.deepcopy(served.state_dict()) if keep_best else None
                    best, stale = (criterion, step, state, val_loss, val_acc, val_ric), 0
                else:
                    stale += 1
                if on_evaluate is not None:
                    on_evaluate(step, served)
            eval_seconds += time.perf_counter() - start
            return val_loss, val_acc

        # Step 0 records the initial input layer (the figures start from it); validating the
        # untrained model would only cost time.
        record(0, validate=False)
        step = 0
        for step in range(1, total + 1):
            start = time.perf_counter()
            model.train()
            x, lengths, y = train_set[next(batches)]
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            logits = model(x, lengths)
            loss = nnf.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            if averaged is not None:
                averaged.update_parameters(model)
            batch_loss = loss.item()
            correct = float((logits.argmax(1) == y).sum())
            train_seconds += time.perf_counter() - start
            run_loss += batch_loss * len(y)
            run_correct += correct
            run_n += len(y)
            bar.update(1)
            bar.set_postfix(loss=f"{batch_loss:.4f}", acc=f"{correct / len(y):.3f}", refresh=False)
            if step == 1:
                warm_up = train_seconds  # allocators and thread pools start on the first step
            if report is not None and step == min(ESTIMATE_AFTER + 1, total):
                timed = step - 1 or 1
                report(estimate_line(desc, device, (train_seconds - warm_up) if step > 1 else train_seconds,
                                     timed, total, config))
            if step % config.eval_every == 0 or step == total:
                val_loss, val_acc = record(step)
                bar.set_postfix(loss=f"{batch_loss:.4f}", val_loss=f"{val_loss:.4f}", val_acc=f"{val_acc:.3f}")
                if config.patience is not None and stale >= config.patience:
                    stopped = True
                    break
        bar.close()
        if keep_best and best[2] is not None:
            served.load_state_dict(best[2])
        else:
            last = rows[-1]
            best = (math.nan, step, None, last["val_loss"], last["val_acc"], last["val_rank_ic"])
    model = served.cpu().eval()
    timings = {"train_seconds": train_seconds, "eval_seconds": eval_seconds, "steps": step,
               "seconds_per_100_steps": 100.0 * train_seconds / max(step, 1)}
    return model, TrainResult(history=pd.DataFrame(rows), snapshots=snapshots, best_step=best[1],
                              stopped_early=stopped, timings=timings, best_val_loss=best[3],
                              best_val_acc=best[4], best_val_rank_ic=best[5],
                              validated_on_all=len(eval_set) == len(val_set))


# Inference batch: the logits are the same at any size (bit for bit here), and batches of 1,024
# windows of the 2 x 400 LSTM run 1.3-1.5x faster than 4,096 on one thread (cache-resident
# gates), in a quarter of the memory (python benchmarks/inference_batch.py).
INFERENCE_BATCH = 1024


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset: WindowDataset, batch_size: int = INFERENCE_BATCH,
             device: torch.device | str = "cpu") -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on a labelled dataset."""
    return _loss_accuracy(predict_logits(model, dataset, batch_size, device), dataset)


def _loss_accuracy(logits: torch.Tensor, dataset: WindowDataset) -> tuple[float, float]:
    y = dataset.labels[dataset.t, dataset.i]
    return float(nnf.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


@torch.no_grad()
def predict_logits(model: torch.nn.Module, dataset: WindowDataset, batch_size: int = INFERENCE_BATCH,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """Logits ``[len(dataset), classes]`` (on CPU) in sample order; the model is left in eval mode."""
    model.eval()
    out = []
    for idx in BatchSampler(len(dataset), batch_size, shuffle=False):
        x, lengths, _ = dataset[idx]
        out.append(model(x.to(device), lengths).float().cpu())
    if not out:
        return torch.empty(0, 3)
    return torch.cat(out)


def _eval_positions(n: int, size: int, seed: int) -> np.ndarray:
    """A fixed seeded subsample of ``n`` validation positions (all of them when ``size`` is 0 or >= n)."""
    if not size or n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def _stats(prefix: str, values: np.ndarray) -> dict:
    v = values.ravel().astype(np.float64)
    out = {f"{prefix}_mean": v.mean(), f"{prefix}_std": v.std(), f"{prefix}_abs_mean": np.abs(v).mean()}
    for q, value in zip(QUANTILES, np.quantile(v, QUANTILES)):
        out[f"{prefix}_p{int(round(q * 100)):02d}"] = value
    return out
