"""Dynamic batching: requests that arrive together are decoded in one model call.

One worker thread owns the model. Requests wait in a queue bounded in sources; the worker
takes the oldest and, when it is alone, waits up to ``max_wait_ms`` (counted from when it
arrived) for others with the same key (the same search settings) to fill a batch of up to
``max_batch`` sources. Requests queued while the model was busy are taken at once. A batch
never mixes keys, and results go back to their own requests in order; a request whose
sources alone exceed ``max_batch`` is decoded alone, in one call. Requests are
taken oldest first, so none waits behind a stream of others.

If a model call fails, each request of the batch is tried alone, so that an error (an empty
source that cannot be scored, say) belongs to the request that caused it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BatchSettings:
    max_batch: int = 64  # sources per model call; 1 turns batching off
    max_wait_ms: float = 2.0  # how long a lone request waits for company
    max_queue: int = 1024  # sources waiting; beyond it requests are refused


class QueueFull(Exception):
    """The queue holds ``max_queue`` sources already."""


@dataclass
class _Job:
    key: Hashable
    items: list
    arrived: float = field(default_factory=time.monotonic)
    future: Future = field(default_factory=Future)


# The model call: a key and the items of several requests -> one result per item.
RunBatch = Callable[[Hashable, list], list]


class Batcher:
    def __init__(self, run: RunBatch, settings: BatchSettings,
                 on_batch: Callable[[int], None] = lambda size: None):
        self._run, self._settings, self._on_batch = run, settings, on_batch
        self._pending: deque[_Job] = deque()
        self._queued = 0  # sources in _pending
        self._changed = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="seq2seq-batcher",
                                        daemon=True)  # never keeps a forced exit waiting

    @property
    def queued(self) -> int:
        """Sources waiting for the model."""
        return self._queued

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Decode what is queued, then end the worker."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join(timeout)

    def submit(self, key: Hashable, items: list) -> Future:
        """A future of the results of ``items``, in order; QueueFull when there is no room."""
        job = _Job(key, list(items))
        with self._changed:
            if self._queued + len(job.items) > self._settings.max_queue:
                raise QueueFull
            self._pending.append(job)
            self._queued += len(job.items)
            self._changed.notify_all()
        return job.future

    # ------------------------------------------------------------ the worker

    def _work(self) -> None:
        while (jobs := self._next_batch()) is not None:
            self._decode(jobs)

    def _next_batch(self) -> list[_Job] | None:
        """The oldest request and those like it, once the batch is full or its wait is
        over; None when stopping with nothing left."""
        with self._changed:
            while not self._pending:
                if self._stopping:
                    return None
                self._changed.wait()
            first = self._pending[0]
            deadline = first.arrived + self._settings.max_wait_ms / 1000
            while not self._stopping and self._sources_like(first) < self._settings.max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return self._take(first.key)

    def _sources_like(self, first: _Job) -> int:
        return sum(len(job.items) for job in self._pending if job.key == first.key)

    def _take(self, key: Hashable) -> list[_Job]:
        """The oldest request, then the next ones with its key while they fit (the first
        that does not fit ends the batch: order is kept). Requests given up meanwhile (a
        shutdown that ran out of time cancels them) are dropped."""
        jobs: list[_Job] = []
        size, kept = 0, deque()
        while self._pending:
            job = self._pending[0]
            if job.key == key and jobs and size + len(job.items) > self._settings.max_batch:
                break
            self._pending.popleft()
            if job.key != key:
                kept.append(job)
                continue
            self._queued -= len(job.items)
            if job.future.set_running_or_notify_cancel():  # from here on, not cancellable
                jobs.append(job)
                size += len(job.items)
        self._pending.extendleft(reversed(kept))
        return jobs

    def _decode(self, jobs: list[_Job]) -> None:
        items = [item for job in jobs for item in job.items]
        try:
            if items:
                self._on_batch(len(items))
            results = self._run(jobs[0].key, items) if items else []
        except Exception as exc:  # each request alone, so an error finds its own request
            if len(jobs) == 1:
                jobs[0].future.set_exception(exc)
            else:
                for job in jobs:
                    self._decode([job])
            return
        start = 0
        for job in jobs:
            job.future.set_result(results[start:start + len(job.items)])
            start += len(job.items)
