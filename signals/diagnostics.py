"""What the model looks at: input-weight contribution (the seed's measure) and permutation importance."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as nnf

from .serve import SignalModel
from .train import INFERENCE_BATCH, BatchSampler
from .windows import WindowDataset


def input_weights(signal: SignalModel) -> tuple[np.ndarray, np.ndarray]:
    """The input layer's weights ``[units, F]`` and biases ``[units]`` as arrays.

    For the recurrent model: the first layer's input-to-hidden matrix (gates × hidden rows:
    4 gates for the LSTM, 3 for the GRU, 1 for the RNN) and ``bias_ih + bias_hh``; for the
    logistic baseline: its ``[3, F]`` coefficients.
    """
    weight, bias = signal.module.input_layer()
    return weight.detach().cpu().numpy().copy(), bias.detach().cpu().numpy().copy()


def factor_contribution(signal: SignalModel) -> pd.Series:
    """Sum of |input-layer weights| per factor, in the model's factor order (the seed's measure).

    Inputs are z-scored, so the weights of different factors are on one scale; the
    measure ignores the deeper layers, as the seed says.
    """
    weight, _ = input_weights(signal)
    return pd.Series(np.abs(weight).sum(axis=0), index=pd.Index(signal.factor_names, name="factor"),
                     name="contribution")


def style_contribution(signal: SignalModel) -> pd.Series:
    """:func:`factor_contribution` summed per style (factors outside every style: 'other')."""
    style_of = {f: "other" for f in signal.factor_names}
    for style, members in signal.styles.items():
        for f in members:
            style_of[f] = style
    contrib = factor_contribution(signal)
    out = contrib.groupby(contrib.index.map(style_of), sort=False).sum()
    out.index.name = "style"
    return out


@torch.no_grad()
def permutation_importance(signal: SignalModel, dataset: WindowDataset, by: str = "factor",
                           max_samples: int = 2000, repeats: int = 1, seed: int = 0,
                           batch_size: int = INFERENCE_BATCH) -> pd.DataFrame:
    """Loss increase and accuracy drop when one factor's (or style's) windows are shuffled across samples.

    Parameters
    ----------
    signal : SignalModel
    dataset : WindowDataset
        Labelled samples, normally ``FitResult.validation_set``.
    by : {'factor', 'style'}
        Permute one factor at a time, or all factors of a style together.
    max_samples : int
        Seeded subsample of ``dataset`` (each permutation costs one forward pass over it).
    repeats : int
        Permutations per group, averaged.
    seed : int

    Returns
    -------
    DataFrame
        Indexed by factor or style: ``loss_increase``, ``accuracy_drop`` (larger =
        more important), sorted by ``loss_increase`` descending.
    """
    if by not in ("factor", "style"):
        raise ValueError(f"permutation importance by must be 'factor' or 'style', got {by!r}")
    rng = np.random.default_rng(seed)
    if len(dataset) > max_samples:
        dataset = dataset.subset(np.sort(rng.choice(len(dataset), max_samples, replace=False)))
    x, lengths, y = dataset[torch.arange(len(dataset))]
    model = signal.module.eval()

    def loss_acc(inputs):
        logits = torch.cat([model(inputs[idx], None if lengths is None else lengths[idx])
                            for idx in BatchSampler(len(y), batch_size, shuffle=False)])
        return float(nnf.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())

    base_loss, base_acc = loss_acc(x)
    if by == "factor":
        groups = {f: [k] for k, f in enumerate(signal.factor_names)}
    else:
        position = {f: k for k, f in enumerate(signal.factor_names)}
        groups = {s: [position[f] for f in m if f in position] for s, m in signal.styles.items()}
        rest = sorted(set(range(len(signal.factor_names))) - {k for v in groups.values() for k in v})
        if rest:
            groups["other"] = rest
    rows = {}
    for name, cols in groups.items():
        losses, accs = [], []
        for _ in range(repeats):
            perm = torch.from_numpy(rng.permutation(len(y)))
            shuffled = x.clone()
            shuffled[:, :, cols] = x[perm][:, :, cols]
            loss, acc = loss_acc(shuffled)
            losses.append(loss - base_loss)
            accs.append(base_acc - acc)
        rows[name] = {"loss_increase": float(np.mean(losses)), "accuracy_drop": float(np.mean(accs))}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = by
    return out.sort_values("loss_increase", ascending=False)
