"""Where data comes from and how Backtrader sees it.

The data modules (``panel``, ``synthetic``) import no Backtrader, so ``signals`` can use
them freely; the Backtrader feed is loaded lazily on first use of its names.
"""
from .panel import Panel, PanelError, load_panel, month_end, save_panel
from .synthetic import Market, MarketConfig, make_market

__all__ = ["Panel", "PanelError", "load_panel", "save_panel", "month_end",
           "Market", "MarketConfig", "make_market"]

# The Backtrader feed (feeds/btfeed.py) imports backtrader, so it loads on first use only.
_BTFEED_NAMES = ("add_panel_feeds", "PanelFeed", "PanelSource", "panel_feed_class",
                 "factor_line_name", "gather_snapshot", "history_snapshots", "Snapshot", "pandas_feeds")


def __getattr__(name):
    if name in _BTFEED_NAMES:
        from . import btfeed
        return getattr(btfeed, name)
    raise AttributeError(f"module 'feeds' has no attribute {name!r}")
