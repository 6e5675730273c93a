"""Backtrader classes: the LSTM tercile strategy, A-share costs, analyzers, and the
vectorized reference the strategy's NAV is checked against."""
from .analyzers import BasketReturns, PredictionLog, Turnover
from .backtest import BookRun, run_book
from .baskets import (BASKETS, BOOKS, MAX_GROSS, SELECTIONS, StrategyParamError, StrategyWarning, book_sides,
                      book_weights, form_baskets, plan_rebalance)
from .commission import AShareCommission, round_to_lot
from .reference import book_returns
from .tercile import LSTMTercileStrategy, MonthRecord

__all__ = ["run_book", "BookRun", "LSTMTercileStrategy", "MonthRecord", "AShareCommission", "round_to_lot",
           "BasketReturns", "Turnover", "PredictionLog", "book_returns", "form_baskets", "book_sides",
           "book_weights", "plan_rebalance", "StrategyParamError", "StrategyWarning", "MAX_GROSS", "BASKETS", "BOOKS",
           "SELECTIONS"]
