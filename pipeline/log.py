"""Progress lines of a run, on stderr and in the run directory's ``run.log``."""
from __future__ import annotations

import contextlib
import sys
import time
import warnings

from .config import ConfigError

WARNING = "warning: "  # how run.log starts a warning's line (pipeline.sweep reads them back)


class Log:
    """Progress lines of a run: on stderr from ``level`` up (none with ``quiet``), and every
    line from INFO up (DEBUG too when ``level`` is DEBUG) kept for the run directory's ``run.log``.

    ``progress`` says whether progress bars (tqdm) should draw: only on a terminal, never
    with ``quiet`` or a level above INFO, so redirected output holds lines, not carriage returns.
    """

    LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}

    def __init__(self, quiet: bool = False, level: str = "INFO", stream=None):
        if str(level).upper() not in self.LEVELS:
            raise ConfigError(f"log level must be one of {', '.join(self.LEVELS)}, got {level!r}", "--log-level")
        self.quiet = quiet
        self.level = self.LEVELS[str(level).upper()]
        self.stream = stream if stream is not None else sys.stderr
        self.lines: list[str] = []
        self.started = time.perf_counter()
        isatty = getattr(self.stream, "isatty", None)
        self.progress = not quiet and self.level <= self.LEVELS["INFO"] and bool(isatty and isatty())

    def __call__(self, message: str, level: str = "INFO") -> None:
        value = self.LEVELS[level]
        if value >= min(self.level, self.LEVELS["INFO"]):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            self.lines.extend(f"{stamp} {time.perf_counter() - self.started:7.1f}s {level:<7} {line}"
                              for line in str(message).splitlines() or [""])
        if not self.quiet and value >= self.level:
            print(message, file=self.stream, flush=True)

    @contextlib.contextmanager
    def capturing_warnings(self):
        """Inside the block every warning shown is also kept for ``run.log`` (shown as before)."""
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            self.record(f"{WARNING}{message}")
            shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        try:
            yield
        finally:
            warnings.showwarning = shown

    def record(self, message: str) -> None:
        """Keep ``message`` for ``run.log`` only (e.g. the summary table the CLI prints on stdout)."""
        self.lines.extend(str(message).splitlines())

    def debug(self, message: str) -> None:
        self(message, "DEBUG")

    def warning(self, message: str) -> None:
        self(message, "WARNING")

    def text(self) -> str:
        """What ``run.log`` holds."""
        return "\n".join(self.lines) + "\n"
