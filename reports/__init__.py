"""Reports of a finished run: metrics (empyrical), tear sheets (quantstats), figures, summary page.

What each output file holds is described in ``docs/reports.md``.
"""
from .figures import (basket_nav_figure, factor_contribution_figure, figure_png, input_distribution_figure,
                      long_short_excess_figure, long_short_nav_figure, oos_accuracy_figure, rank_ic_figure,
                      save_figures, style_contribution_figure, training_accuracy_figure, training_loss_figure)
from .inputs import ReportError, ReportWarning
from .metrics import (book_metrics, long_short, long_short_excess, metrics_document,
                      monthly_prediction_stats, nav, prediction_metrics, selection_metrics)
from .summary import build_figures, write_report
from .tearsheet import write_tearsheet

__all__ = [
    "ReportError", "ReportWarning", "book_metrics", "long_short", "long_short_excess", "nav",
    "monthly_prediction_stats", "prediction_metrics", "selection_metrics", "metrics_document", "write_tearsheet",
    "training_loss_figure", "training_accuracy_figure", "input_distribution_figure", "oos_accuracy_figure",
    "rank_ic_figure", "basket_nav_figure", "long_short_nav_figure", "long_short_excess_figure",
    "factor_contribution_figure", "style_contribution_figure", "figure_png", "save_figures",
    "build_figures", "write_report",
]
