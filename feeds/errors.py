"""The one base class of every mistake a user can make (config, data, settings, files).

Every package's own error type (``PanelError``, ``ConfigError``, ``TrainError``,
``StrategyParamError``, ...) derives from :class:`UserError`, so the command line turns the
whole class into one line ``error: <what> (<where>)`` and exit status 2, and a new error type
cannot slip back to a traceback. It lives in ``feeds``, the bottom layer every package imports.
"""


class UserError(ValueError):
    """Something the user supplied cannot be used; ``str()`` says what and where, in one line."""
