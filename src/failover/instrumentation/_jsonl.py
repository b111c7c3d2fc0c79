"""A JSONL trace of attempt outcomes, the input ``failover simulate --trace`` replays.

One line per finished attempt, in the order the attempts finished::

    {"t": 12.503117, "endpoint": "claude", "outcome": "error", "error": "overloaded",
     "status": 529, "latency": 0.212034}

Only timing, endpoint names, outcomes, failure kinds and HTTP statuses: never the
prompt, the answer, a key or a request id.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO

from .._events import AttemptFinished, Event

__all__ = ["JsonlTraceListener"]


class JsonlTraceListener:
    """Write one JSON line per finished attempt to a file.

    Fields: ``t`` (seconds from the listener's creation to the attempt's end, read under
    the writer's lock so lines are in ``t`` order), ``endpoint``, ``outcome`` (``"ok"``,
    ``"error"`` or ``"skipped"``), ``error`` (the failure kind, or null), ``status`` (the
    HTTP status received, or null) and ``latency`` (seconds; 0 for ``skipped``).

    Args:
        path_or_file: a path, opened for writing (truncated) and line-buffered so a
            crash loses at most one line, in which ``{pid}`` is replaced by the process
            id (several workers, one file each); or an open text file, written to and
            left open.
        clock: where time comes from (seconds, monotonic).
    """

    def __init__(
        self,
        path_or_file: str | os.PathLike[str] | IO[str],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(path_or_file, (str, os.PathLike)):
            path = os.fspath(path_or_file).replace("{pid}", str(os.getpid()))
            self._file: IO[str] = open(path, "w", encoding="utf-8", buffering=1)  # noqa: SIM115
            self._owned = True
            self.path: str | None = path
        else:
            self._file = path_or_file
            self._owned = False
            self.path = None
        self._clock = clock
        self._start = clock()
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if not isinstance(event, AttemptFinished):
            return
        with self._lock:
            if self._file.closed:
                return
            record = {
                "t": round(self._clock() - self._start, 6),
                "endpoint": event.endpoint,
                "outcome": event.outcome,
                "error": event.error,
                "status": event.status_code,
                "latency": round(event.latency, 6),
            }
            self._file.write(json.dumps(record, separators=(", ", ": ")) + "\n")

    def close(self) -> None:
        """Close the file if the listener opened it (a file given to it stays open)."""
        with self._lock:
            if self._owned and not self._file.closed:
                self._file.close()

    def __enter__(self) -> JsonlTraceListener:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JsonlTraceListener({self.path or self._file!r})"
