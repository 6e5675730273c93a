"""A-share trading costs and lot sizes as a Backtrader commission scheme."""
from __future__ import annotations

import backtrader as bt
import numpy as np


def round_to_lot(shares, lot: float):
    """Whole ``lot`` s of ``shares``, rounded toward zero (``lot == 0``: unchanged, fractional).

    Works on scalars and arrays. A quotient within 1e-9 of a whole number of lots counts
    as that number, so float noise (299.9999999 shares) does not drop a lot.
    """
    if lot < 0:
        raise ValueError(f"lot must be >= 0, got {lot}")
    if not lot:
        return shares
    lots = np.trunc(np.round(np.asarray(shares, dtype=np.float64) / lot, 9)) * lot
    return float(lots) if np.ndim(lots) == 0 else lots


class AShareCommission(bt.CommInfoBase):
    """A-share stock costs: commission on both sides with a minimum, stamp duty on sells.

    For an execution of ``size`` shares at ``price`` (``value = |size| * price``)::

        fee = max(commission * value, min_commission)         (size != 0)
            + stamp_duty * value                               (sells only, size < 0)

    Backtrader passes a signed ``size`` (negative for sells, including a short sale);
    the fee is never negative. The minimum applies per execution leg: an order that
    closes a long and opens a short in one go pays it on each leg.

    Params:

      - ``commission`` (default: ``0.0003``): rate on traded value, both sides (0.03%)
      - ``min_commission`` (default: ``5.0``): minimum commission per execution (CNY)
      - ``stamp_duty`` (default: ``0.001``): rate on the value of sells (0.1%)
      - ``lot`` (default: ``100``): board lot; :meth:`getsize` returns whole lots
        (``0``: fractional shares, as the vectorized reference assumes)
      - ``stocklike`` (``True``), ``commtype`` (``COMM_PERC``), ``percabs`` (``True``):
        fixed, a stock with rates given as fractions
    """

    params = (
        ("commission", 0.0003),
        ("min_commission", 5.0),
        ("stamp_duty", 0.001),
        ("lot", 100),
        ("stocklike", True),
        ("commtype", bt.CommInfoBase.COMM_PERC),
        ("percabs", True),
    )

    def __init__(self):
        super().__init__()
        for name in ("commission", "min_commission", "stamp_duty", "lot"):
            value = getattr(self.p, name)
            if value is None or value < 0:
                raise ValueError(f"AShareCommission {name} must be >= 0, got {value}")

    def _getcommission(self, size, price, pseudoexec):
        if not size:
            return 0.0
        value = abs(size) * price
        fee = max(value * self.p.commission, self.p.min_commission)
        if size < 0:
            fee += value * self.p.stamp_duty
        return fee

    def getsize(self, price, cash):
        """Shares that ``cash`` buys at ``price``, in whole lots (fractional when ``lot == 0``)."""
        return round_to_lot(self.p.leverage * cash / price, self.p.lot)
