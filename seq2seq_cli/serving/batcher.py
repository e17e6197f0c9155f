"""Dynamic batching: requests that arrive together are decoded in one model call.

One worker thread owns the model: it loads it (``start``) and makes every model call. With
PyTorch that is more than tidiness. libgomp lets the threads of a parallel region spin
between regions only while it manages no more threads than there are CPUs; a model loaded
on the main thread leaves that thread's pool behind, a worker's pool then puts the count
over, and each of the many small regions of a decoding step waits for a sleeping thread
to wake (measured on 2 cores, 2 threads, one sentence: 9 ms on the loading thread, 31 ms
on another).

Requests wait in a queue bounded in sources; the worker takes the oldest and those with the
same key (the same search settings), up to ``max_batch`` sources. After a model call the
worker expects back the sources it just answered (their clients are about to send their
next requests) and those that queued meanwhile: it waits for that many, up to
``max_wait_ms`` after the call, then decodes what has come. A request that finds the model
idle with nothing expected (after a call of one source, or once ``max_wait_ms`` have
passed) is decoded at once: alone, waiting could only add latency. A batch never mixes
keys, and results go back to their own requests in order; a request whose sources alone
exceed ``max_batch`` is decoded alone, in one call. Requests are taken oldest first, so
none waits behind a stream of others.

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
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class BatchSettings:
    max_batch: int = 64  # sources per model call; 1 turns batching off
    # How long after a model call the next waits for the clients it answered to come back
    # over HTTP (measured on 2 cores: 32 answers and their next requests, ~5-7 ms).
    max_wait_ms: float = 6.0
    max_queue: int = 1024  # sources waiting; beyond it requests are refused


class QueueFull(Exception):
    """The queue holds ``max_queue`` sources already."""


class Stopped(Exception):
    """The batcher is stopping: a request submitted now might never be decoded."""


@dataclass
class _Job:
    key: Hashable
    items: list
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
        self._free_since = time.monotonic()  # when the last model call ended
        self._expected = 0  # sources expected for the next call: see _freed
        self._thread: threading.Thread | None = None

    @property
    def queued(self) -> int:
        """Sources waiting for the model."""
        return self._queued

    def start(self, prepare: Callable[[], T]) -> T:
        """Start the worker, which first calls ``prepare`` (loading the model: see the
        module docstring); what it returns, once it has, or what it raised (the worker then
        ends)."""
        prepared: Future = Future()
        self._thread = threading.Thread(target=self._work, args=(prepare, prepared),
                                        name="seq2seq-batcher",
                                        daemon=True)  # never keeps a forced exit waiting
        self._thread.start()
        return prepared.result()

    def stop(self, timeout: float | None = None) -> None:
        """Decode what is queued, then end the worker."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, key: Hashable, items: list) -> Future:
        """A future of the results of ``items``, in order; QueueFull when there is no room,
        Stopped once ``stop`` was called."""
        job = _Job(key, list(items))
        with self._changed:
            if self._stopping:
                raise Stopped
            if self._queued + len(job.items) > self._settings.max_queue:
                raise QueueFull
            self._pending.append(job)
            self._queued += len(job.items)
            self._changed.notify_all()
        return job.future

    # ------------------------------------------------------------ the worker

    def _work(self, prepare: Callable[[], object], prepared: Future) -> None:
        try:
            ready = prepare()
        except BaseException as exc:  # the caller raises it; this thread has nothing to do
            prepared.set_exception(exc)
            return
        # Before ``start`` returns: a request submitted at once must find the model idle.
        self._freed(answered=0)
        prepared.set_result(ready)
        while (jobs := self._next_batch()) is not None:
            self._decode(jobs)

    def _next_batch(self) -> list[_Job] | None:
        """The oldest request and those like it, once the sources expected have come (or a
        full batch) or the wait after the last call is over; None when stopping with
        nothing left."""
        with self._changed:
            while not self._pending:
                if self._stopping:
                    return None
                self._changed.wait()
            first = self._pending[0]
            deadline = self._free_since + self._settings.max_wait_ms / 1000
            expected = min(self._expected, self._settings.max_batch)
            while not self._stopping and self._queued < expected:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return self._take(first.key)

    def _freed(self, answered: int) -> None:
        """A model call that answered ``answered`` sources has ended. Closed-loop clients
        send their next request as soon as they have their answer, and the requests that
        queued during the call are waiting already: the next call waits for both, not for
        a full batch that nobody is sending (nor, alone, for the first to come back)."""
        with self._changed:
            self._free_since = time.monotonic()
            self._expected = answered + self._queued

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
        if not jobs:  # all given up: no call was made, the model has been free all along
            return
        items = [item for job in jobs for item in job.items]
        try:
            if items:
                self._on_batch(len(items))
            results = self._run(jobs[0].key, items) if items else []
        except Exception as exc:  # each request alone, so an error finds its own request
            if len(jobs) == 1:
                self._freed(answered=len(items))
                jobs[0].future.set_exception(exc)
            else:
                for job in jobs:
                    self._decode([job])
            return
        # Free before the answers go: a client answered may send its next request at once.
        self._freed(answered=len(items))
        start = 0
        for job in jobs:
            job.future.set_result(results[start:start + len(job.items)])
            start += len(job.items)
