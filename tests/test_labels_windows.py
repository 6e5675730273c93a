"""Labels (next-month class) and lazy sequence windows."""
import numpy as np
import pytest
import torch

from signals.fit import split_validation
from signals.labels import NO_LABEL, LabelConfig, LabelError, classify, make_labels
from signals.model import LastSnapshotLogistic, ModelConfig, RecurrentClassifier
from signals.train import TrainConfig
from signals.windows import (BatchSampler, WindowConfig, WindowDataset, WindowError, eligible, history_length,
                             sample_index)


# ------------------------------------------------------------------ labels
def test_fixed_labels_use_next_month_and_strict_thresholds():
    ret = np.array([[0.0, 0.0, 0.0, 0.0, 0.0],
                    [0.05, -0.05, 0.03, -0.03, np.nan],
                    [0.0, 0.0, 0.0, 0.0, 0.0]])
    listed = np.ones((3, 5), bool)
    labels = make_labels(ret, listed)
    assert labels[0].tolist() == [2, 0, 1, 1, NO_LABEL]  # classes of ret[1]; ±3% exactly is neutral
    assert (labels[-1] == NO_LABEL).all()  # the last month has no next return
    listed[0, 0] = False
    assert make_labels(ret, listed)[0, 0] == NO_LABEL


def test_excess_labels_subtract_the_cross_sectional_mean():
    r = np.array([[0.10, 0.08, 0.12, 0.02, np.nan]])  # mean of the finite ones: 0.08
    plain = classify(r, LabelConfig())
    excess = classify(r, LabelConfig(excess=True))
    assert plain[0].tolist() == [2, 2, 2, 1, NO_LABEL]
    assert excess[0].tolist() == [1, 1, 2, 0, NO_LABEL]


def test_tercile_labels_split_each_month_in_thirds():
    r = np.array([[9, 1, 5, 3, 7, 2, 8, 4, 6, np.nan]], dtype=float) / 100
    out = classify(r, LabelConfig(kind="tercile"))
    assert out[0].tolist() == [2, 0, 1, 0, 2, 0, 2, 1, 1, NO_LABEL]
    tied = classify(np.array([[0.0, 0.0, 0.0, 0.1, 0.2, 0.3]]), LabelConfig(kind="tercile"))
    assert tied[0, 0] == tied[0, 1] == tied[0, 2] == 0  # ties share a class


def test_label_config_is_validated():
    with pytest.raises(LabelError, match="kind"):
        LabelConfig(kind="quintile")
    with pytest.raises(LabelError, match="below"):
        LabelConfig(up=-0.01, down=0.01)


# ----------------------------------------------------------------- history
def test_history_length_counts_consecutive_listed_months():
    listed = np.array([[0, 1], [1, 1], [1, 1], [0, 1], [1, 1], [1, 1]], bool)
    assert history_length(listed, window=3).T.tolist() == [[0, 1, 2, 0, 1, 2], [1, 2, 3, 3, 3, 3]]
    assert eligible(listed, WindowConfig(window=3)).T.tolist() == [[False] * 6, [False, False, True, True, True, True]]


def test_window_config_validation_and_padding_switch():
    assert not WindowConfig(window=24).pads
    assert WindowConfig(window=24, min_history=12).pads
    with pytest.raises(WindowError, match="min_history"):
        WindowConfig(window=6, min_history=7)


def test_sample_index_needs_label_history_and_month():
    labels = np.zeros((5, 2), np.int8)
    labels[-1] = NO_LABEL
    labels[3, 1] = NO_LABEL
    listed = np.array([[1, 0], [1, 1], [1, 1], [1, 1], [1, 1]], bool)
    t, i = sample_index(labels, listed, WindowConfig(window=2))
    assert list(zip(t, i)) == [(1, 0), (2, 0), (2, 1), (3, 0)]
    t, i = sample_index(labels, listed, WindowConfig(window=2), months=slice(2, None))
    assert list(zip(t, i)) == [(2, 0), (2, 1), (3, 0)]


# ----------------------------------------------------------------- windows
def values_cube(T=8, N=3, F=2):
    return np.arange(T * N * F, dtype=np.float32).reshape(T, N, F)


def test_dataset_gathers_windows_lazily_from_the_shared_tensor():
    values = values_cube()
    labels = np.arange(24).reshape(8, 3) % 3
    ds = WindowDataset(values, [3, 7, 5], [0, 2, 1], WindowConfig(window=3), labels=labels)
    assert ds.values.data_ptr() == torch.from_numpy(values).data_ptr()  # no copy of the panel
    x, lengths, y = ds[torch.tensor([0, 1, 2])]
    assert lengths is None and x.shape == (3, 3, 2)
    np.testing.assert_array_equal(x[0].numpy(), values[1:4, 0])
    np.testing.assert_array_equal(x[1].numpy(), values[5:8, 2])
    assert y.tolist() == [labels[3, 0], labels[7, 2], labels[5, 1]]
    x1, _, y1 = ds[1]
    np.testing.assert_array_equal(x1.numpy(), values[5:8, 2])
    sub = ds.subset([2])
    assert len(sub) == 1 and sub.values.data_ptr() == ds.values.data_ptr()
    with pytest.raises(WindowError, match="before the first month"):
        WindowDataset(values, [1], [0], WindowConfig(window=3))


def test_padded_windows_put_the_listed_months_first_and_zero_the_rest():
    values = values_cube() + 1
    listed = np.ones((8, 3), bool)
    listed[:4, 1] = False  # stock 1 lists at month 4
    history = history_length(listed, 4)
    ds = WindowDataset(values, [5, 7], [1, 0], WindowConfig(window=4, min_history=2), history=history)
    x, lengths, _ = ds[torch.tensor([0, 1])]
    assert lengths.tolist() == [2, 4]
    np.testing.assert_array_equal(x[0, :2].numpy(), values[4:6, 1])
    assert (x[0, 2:] == 0).all()
    np.testing.assert_array_equal(x[1].numpy(), values[4:8, 0])


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_padded_recurrent_model_reads_only_the_listed_months(kind):
    torch.manual_seed(0)
    model = RecurrentClassifier(ModelConfig(kind=kind, n_factors=2, hidden=5, layers=2)).eval()
    short = torch.randn(1, 3, 2)
    padded = torch.cat([short, torch.zeros(1, 3, 2)], dim=1)
    with torch.no_grad():
        direct = model(short)
        packed = model(torch.cat([padded, torch.randn(1, 6, 2)]), torch.tensor([3, 6]))[:1]
    torch.testing.assert_close(direct, packed)
    logistic = LastSnapshotLogistic(ModelConfig(kind="logistic", n_factors=2)).eval()
    with torch.no_grad():
        torch.testing.assert_close(logistic(padded, torch.tensor([3])), logistic(short))


def test_batch_sampler_is_seeded_and_covers_every_sample_once_per_epoch():
    a = list(BatchSampler(10, 4, torch.Generator().manual_seed(1)))
    b = list(BatchSampler(10, 4, torch.Generator().manual_seed(1)))
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert sorted(torch.cat(a).tolist()) == list(range(10)) and [len(x) for x in a] == [4, 4, 2]
    forever = BatchSampler(3, 2, torch.Generator().manual_seed(0)).forever()
    assert sum(len(next(forever)) for _ in range(4)) == 6


# -------------------------------------------------------------- validation
def test_random_split_is_seeded_and_holds_out_the_fraction():
    t = np.repeat(np.arange(30, 60), 10)
    train, val, purged = split_validation(t, TrainConfig(seed=3), WindowConfig(window=24))
    assert len(val) == 30 and len(train) == 270 and purged == 0
    assert not set(train) & set(val)
    again = split_validation(t, TrainConfig(seed=3), WindowConfig(window=24))
    assert np.array_equal(again[1], val)


def test_time_split_purges_every_shared_input_month():
    window = WindowConfig(window=6)
    t = np.repeat(np.arange(5, 40), 4)
    train, val, purged = split_validation(t, TrainConfig(validation="time", val_months=5), window)
    last_train, first_val = t[train].max(), t[val].min()
    assert set(t[val]) == set(range(35, 40))
    # Input months of the last training window end before the first validation window starts.
    assert last_train < first_val - window.window + 1
    assert last_train == first_val - window.window
    assert purged == 4 * (window.window - 1) and len(train) + len(val) + purged == len(t)
    with pytest.raises(ValueError, match="time validation"):
        split_validation(t, TrainConfig(validation="time", val_months=34), window)
