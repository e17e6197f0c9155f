"""A progress bar while a corpus is encoded: rich, on stderr, and only at a terminal."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

SHOWN_FROM_BYTES = 16 << 20  # a smaller corpus loads before a bar could say anything


class CorpusLoadingBar:
    """Call it with (bytes done, bytes in all) as loading proceeds; ``close`` when done."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.progress is None:
            if not self.console.is_terminal or total < SHOWN_FROM_BYTES:
                return
            self.progress = Progress(TextColumn("encoding the corpus"), BarColumn(),
                                     DownloadColumn(), TransferSpeedColumn(),
                                     TimeRemainingColumn(), console=self.console,
                                     transient=True)
            self.progress.start()
            self.task = self.progress.add_task("corpus", total=total)
        self.progress.update(self.task, completed=done)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def home_as_tilde(path: str) -> str:
    """A path under the home directory written with ``~``, as a shell would take it."""
    home = str(Path.home())
    return "~" + path[len(home):] if path.startswith(home + "/") else path
