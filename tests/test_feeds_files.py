"""The shared file helpers of ``feeds``: table reading, numeric columns, atomic writes, grids."""
import os
import stat

import numpy as np
import pandas as pd
import pytest

from feeds.errors import UserError
from feeds.files import atomic_path, write_bytes_atomic
from feeds.grid import carry, ffill, first_row, last_row, shift
from feeds.tables import numeric_column, read_table, table_kind, table_stem


class TableError(UserError):
    pass


def test_table_kind_and_stem():
    assert table_kind("a/x.PARQUET") == table_kind("x.pq") == "parquet"
    assert table_kind("x.csv") == table_kind("x.txt.gz") == table_kind("x.CSV.zst") == "csv"
    assert table_kind("x.json") is None and table_kind("x.parquet.gz") is None
    assert table_stem("sh.600000.csv.gz") == table_stem("sh.600000.parquet") == "sh.600000"


def test_read_table_by_kind_with_the_callers_error(tmp_path):
    frame = pd.DataFrame({"code": ["000001", "600000"], "x": [0.1, 1e-300]})
    frame.to_csv(tmp_path / "t.csv.gz", index=False)
    frame.to_parquet(tmp_path / "t.pq", index=False)
    for name in ("t.csv.gz", "t.pq"):
        pd.testing.assert_frame_equal(read_table(tmp_path / name, "table", TableError, dtype={"code": str}), frame)
    with pytest.raises(TableError, match="^prices file not found: .*absent.csv$"):
        read_table(tmp_path / "absent.csv", "prices file", TableError)
    with pytest.raises(TableError, match=r"not found: .* \(a folder, not a file\)"):
        read_table(tmp_path, "prices file", TableError)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(TableError, match="^cannot read prices file .*bad.parquet: "):
        read_table(tmp_path / "bad.parquet", "prices file", TableError)


def test_numeric_column():
    numbers = pd.Series([1.0, np.nan])
    assert numeric_column(numbers, TableError, str) is numbers
    text = numeric_column(pd.Series(["1.5", None, "2"]), TableError, str)
    np.testing.assert_array_equal(text.to_numpy(float), [1.5, np.nan, 2.0])
    np.testing.assert_array_equal(numeric_column(pd.Series([True, False]), TableError, str), [1, 0])
    with pytest.raises(TableError, match=r"^non-numeric value 'x' in column 'c', row 1$"):
        numeric_column(pd.Series(["1", "x", "y"]), TableError, lambda i: f"in column 'c', row {i}")


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".out.txt.") and tmp.name.endswith(".tmp")
        tmp.write_text("first")
        assert not target.exists()
    assert target.read_text() == "first"
    for error in (ValueError, KeyboardInterrupt):
        with pytest.raises(error):
            with atomic_path(target) as tmp:
                tmp.write_text("half")
                raise error()
        assert target.read_text() == "first" and sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second  # two writers of one file never share a temporary
        first.write_text("one")
        second.write_text("two")
    assert target.read_text() == "one"  # the last rename wins, with a whole file


def test_write_bytes_atomic_gets_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = write_bytes_atomic(tmp_path / "model.pt", memoryview(b"weights"))
    finally:
        os.umask(umask)
    assert path.read_bytes() == b"weights" and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_grid_helpers():
    a = np.array([[np.nan, 1.0], [2.0, np.nan], [np.nan, 3.0]])
    np.testing.assert_array_equal(ffill(a), [[np.nan, 1.0], [2.0, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(shift(a, 0.0), [[0.0, 0.0], [np.nan, 1.0], [2.0, np.nan]])
    present = np.isfinite(a)
    np.testing.assert_array_equal(last_row(present), [[-1, 0], [1, 0], [1, 2]])
    np.testing.assert_array_equal(first_row(present), [1, 0])
    codes = np.array([[-1, 4], [7, -1], [-1, -1]], dtype=np.int32)
    carried = carry(codes, codes >= 0, -1)
    assert carried.dtype == np.int32
    np.testing.assert_array_equal(carried, [[-1, 4], [7, 4], [7, 4]])
