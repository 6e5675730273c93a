"""Reading user tables (CSV or Parquet) and turning their columns into numbers.

Every table the project reads from the user (panel files, daily bars, fundamentals,
industry maps) goes through :func:`read_table`, and every numeric column through
:func:`numeric_column`, so that each reader fails the same way: one line of the
reader's own error type naming the file, column and row.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

#: read_csv keywords for exact floats: pandas < 3 parses CSV floats to within one ulp by default
#: (a CSV and a Parquet of the same values then differ); pandas 3 is exact and deprecates the option.
EXACT_CSV_FLOATS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}

_PARQUET = re.compile(r"\.(parquet|pq)$", re.I)
_CSV = re.compile(r"\.(csv|txt)(\.(gz|bz2|zip|xz|zst))?$", re.I)


def table_kind(path) -> str | None:
    """``"parquet"`` (``.parquet``, ``.pq``), ``"csv"`` (``.csv`` / ``.txt``, optionally
    compressed) or None for any other file name."""
    name = Path(path).name
    if _PARQUET.search(name):
        return "parquet"
    if _CSV.search(name):
        return "csv"
    return None


def table_stem(path) -> str:
    """The file name without its table suffixes (``sh.600000.csv.gz`` → ``sh.600000``)."""
    return re.sub(r"\.(csv|txt|parquet|pq)(\.(gz|bz2|zip|xz|zst))?$", "", Path(path).name, flags=re.I)


def read_table(path, what: str, error: type[Exception], **csv_options) -> pd.DataFrame:
    """Read a Parquet file, or any other file as CSV, raising ``error`` in one line.

    Parameters
    ----------
    path : str or Path
    what : str
        What the file is, for messages: ``"panel file"`` → ``panel file not found: <path>``
        and ``cannot read panel file <path>: <pandas' reason>``.
    error : exception type
        The caller's error type (a :class:`~feeds.errors.UserError`).
    **csv_options
        ``pandas.read_csv`` keywords (``dtype``, ...); floats are parsed exactly
        (:data:`EXACT_CSV_FLOATS`) unless overridden.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} not found: {path}" + (" (a folder, not a file)" if path.is_dir() else ""))
    try:
        if table_kind(path) == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, **{**EXACT_CSV_FLOATS, **csv_options})
    except Exception as exc:  # pandas raises many types for unreadable files
        raise error(f"cannot read {what} {path}: {exc}") from None


def numeric_column(values: pd.Series, error: type[Exception], where: Callable[[int], str]) -> pd.Series:
    """``values`` as numbers: text numbers are parsed, a blank stays missing.

    A numeric (not boolean) column is returned as it is. Otherwise a value that is present
    but is not a number raises ``error("non-numeric value <value> <where(row)>")``, where
    ``where`` names the place of the first such row, e.g. ``"in column 'ret', row 3 (file)"``.
    """
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values
    converted = pd.to_numeric(values, errors="coerce")
    bad = (converted.isna() & values.notna()).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise error(f"non-numeric value {values.iloc[i]!r} {where(i)}")
    return converted


#: the spellings of a flag a file may use (case and surrounding blanks ignored)
TRUTH = {"1": True, "1.0": True, "true": True, "t": True, "yes": True, "y": True, "是": True,
         "0": False, "0.0": False, "false": False, "f": False, "no": False, "n": False, "否": False}


def boolean_column(values: pd.Series, error: type[Exception], where: Callable[[int], str],
                   blank: bool = False) -> np.ndarray:
    """``values`` as a bool array, a blank as ``blank``; a value that is not one of :data:`TRUTH`'s
    spellings raises ``error("non-boolean value <value> <where(row)>")`` (``astype(bool)``
    would take any text, "N" and "否" included, for True)."""
    if pd.api.types.is_bool_dtype(values):
        return values.fillna(blank).to_numpy(bool)
    text = values.astype("string").str.strip().str.lower()
    mapped = text.map(TRUTH)
    bad = (mapped.isna() & text.notna()).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise error(f"non-boolean value {values.iloc[i]!r} {where(i)}")
    return np.where(mapped.isna().to_numpy(), blank, mapped.to_numpy(object)).astype(bool)

