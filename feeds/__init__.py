"""Where data comes from and how Backtrader sees it.

The data modules (``panel``, ``synthetic``) import no Backtrader, so ``signals`` can use
them freely; the Backtrader feed is loaded lazily on first use of its names.
"""
from .panel import Panel, PanelError, load_panel, month_end, save_panel
from .synthetic import Market, MarketConfig, make_market

__all__ = ["Panel", "PanelError", "load_panel", "save_panel", "month_end",
           "Market", "MarketConfig", "make_market"]
