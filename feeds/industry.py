"""The optional code → industry map used for industry neutralization.

A map is a CSV (or Parquet) file with two columns, ``code`` and ``industry``, one row
per instrument::

    code,industry
    sh.600000,Banks
    sz.000001,Banks
    sh.600519,Food & Beverage

It is static (one industry per code for the whole history). Codes of the data that the
map does not name keep industry ``-1`` (unknown); codes of the map that the data does
not hold are ignored. Without any map the panel has no industry at all and the
preprocessing falls back to whole-market demeaning with a warning (see
``docs/real_data.md``). Daily bars may instead carry a time-varying ``industry``
column, read by :func:`feeds.daily_bars.load_daily_bars`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .panel import PanelError
from .tables import read_table


class IndustryMapError(PanelError):
    """The industry map file is unusable; the message names the file, row or code."""


def load_industry_map(source) -> pd.Series:
    """Read a code → industry map.

    Parameters
    ----------
    source : str, Path, DataFrame or Mapping
        A CSV/Parquet file with columns ``code`` and ``industry``, a frame with those
        columns, or a plain ``{code: industry}`` mapping.

    Returns
    -------
    Series
        Industry name (str) indexed by code (str), sorted by code.

    Raises
    ------
    IndustryMapError
        File missing or unreadable, a missing column, an empty code or industry, or a
        code mapped to two different industries.
    """
    if isinstance(source, pd.Series):
        frame = pd.DataFrame({"code": source.index, "industry": source.to_numpy()})
        name = "industry map"
    elif isinstance(source, dict):
        frame = pd.DataFrame({"code": list(source), "industry": list(source.values())})
        name = "industry map"
    elif isinstance(source, pd.DataFrame):
        frame, name = source, "industry map"
    else:
        name = str(Path(source))
        frame = read_table(source, "industry map", IndustryMapError, dtype=str, keep_default_na=False,
                           na_values=[""])
    for col in ("code", "industry"):
        if col not in frame.columns:
            raise IndustryMapError(f"missing column '{col}' in industry map ({name}); "
                                   f"expected columns code,industry")
    if frame.empty:
        raise IndustryMapError(f"industry map is empty ({name})")
    codes = frame["code"]
    labels = frame["industry"]
    for col, values in (("code", codes), ("industry", labels)):
        blank = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
        if blank.any():
            raise IndustryMapError(f"empty '{col}' in industry map, row {int(np.flatnonzero(blank)[0])} "
                                   f"({name})")
    mapping = pd.DataFrame({"code": codes.astype(str).str.strip(),
                            "industry": labels.astype(str).str.strip()})
    dup = mapping.duplicated("code", keep=False)
    if dup.any():
        clash = mapping[dup].groupby("code")["industry"].nunique()
        clash = clash[clash > 1]
        if len(clash):
            code = clash.index[0]
            both = sorted(mapping.loc[mapping["code"] == code, "industry"].unique())
            raise IndustryMapError(f"code {code} is mapped to two industries ({both[0]!r} and "
                                   f"{both[1]!r}) in industry map ({name})")
        mapping = mapping.drop_duplicates("code")
    return pd.Series(mapping["industry"].to_numpy(), index=pd.Index(mapping["code"], name="code"),
                     name="industry").sort_index()


def assign_industries(codes, mapping: pd.Series) -> tuple[np.ndarray, list[str], list[str]]:
    """Industry index per code for a :class:`feeds.panel.Panel`.

    Parameters
    ----------
    codes : sequence of str
        The panel's instruments.
    mapping : Series
        From :func:`load_industry_map`.

    Returns
    -------
    industry : ndarray [N] int32
        Index into ``industries``; -1 where the map does not name the code.
    industries : list of str
        Sorted industry names present among ``codes``.
    unmapped : list of str
        Codes the map does not name.
    """
    labels = mapping.reindex(pd.Index([str(c) for c in codes]))
    industries = sorted(labels.dropna().unique().tolist())
    industry = pd.Index(industries).get_indexer(labels.fillna("\0")).astype(np.int32)
    unmapped = [str(c) for c, i in zip(codes, industry) if i < 0]
    return industry, industries, unmapped
