"""Ctrl-C and SIGTERM during a command: a request to stop cleanly, not a traceback."""

from __future__ import annotations

import signal
from types import FrameType


class StopOnSignal:
    """Turn the first Ctrl-C or SIGTERM into a request to stop after the current batch.

    Training then saves ``last.pt`` at the exact position and exits 130 (SIGINT) or 143
    (SIGTERM); a second Ctrl-C interrupts at once.
    """

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopOnSignal:
        for number in (signal.SIGINT, signal.SIGTERM):
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.signal_number is not None and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_number = number

    def requested(self) -> bool:
        return self.signal_number is not None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signal_number or signal.SIGINT)
