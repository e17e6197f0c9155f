"""The dynamic batcher alone, with a model call that records what it was given.

A gate holds the first call, so that the requests sent meanwhile queue behind it: what the
next calls then receive is decided by the batcher's rules, not by the machine's timing.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import pytest

from seq2seq_cli.serving import batcher as batcher_module
from seq2seq_cli.serving.batcher import Batcher, BatchSettings, QueueFull, Stopped

WAIT = 30.0  # seconds a result may take; the rules under test act in milliseconds


class Model:
    """Echoes each item with its key; the first call waits for ``release``."""

    def __init__(self, fail_on: object = None):
        self.calls: list[tuple[object, list]] = []
        self.gate, self.started = threading.Event(), threading.Event()
        self.fail_on = fail_on

    def __call__(self, key, items: list) -> list:
        self.calls.append((key, list(items)))
        if len(self.calls) == 1:
            self.started.set()
            assert self.gate.wait(WAIT)
        if self.fail_on in items:
            raise ValueError(f"cannot decode {self.fail_on!r}")
        return [(key, item) for item in items]


def started(model: Model, **settings) -> Batcher:
    batcher = Batcher(model, BatchSettings(**settings))
    assert batcher.start(lambda: "ready") == "ready"
    return batcher


def behind_a_busy_call(batcher: Batcher, model: Model,
                       requests: list[tuple[object, list]]) -> list[Future]:
    """Submit ``requests`` while a first call is held, then let the model go on."""
    first = batcher.submit("warm", ["w"])
    assert model.started.wait(WAIT)
    futures = [batcher.submit(key, items) for key, items in requests]
    model.gate.set()
    assert first.result(WAIT) == [("warm", "w")]
    return futures


def answered_at_once_by_an_idle_model() -> None:
    """A request sent to a freshly started, idle batcher is not held for its minute's wait."""
    model = Model()
    model.gate.set()
    batcher = started(model, max_batch=64, max_wait_ms=60_000)
    began = time.monotonic()
    assert batcher.submit("k", ["a"]).result(WAIT) == [("k", "a")]
    assert time.monotonic() - began < WAIT / 2
    batcher.stop(WAIT)


def test_requests_queued_together_share_one_call_and_get_their_own_results():
    model = Model()
    batcher = started(model, max_batch=64, max_wait_ms=5)
    requests = [("k", ["a"]), ("k", ["b", "c"]), ("k", ["d"])]
    futures = behind_a_busy_call(batcher, model, requests)
    assert [f.result(WAIT) for f in futures] == [[("k", "a")], [("k", "b"), ("k", "c")],
                                                [("k", "d")]]
    assert model.calls[1:] == [("k", ["a", "b", "c", "d"])]
    batcher.stop(WAIT)


def test_a_call_never_mixes_search_settings_and_the_oldest_goes_first():
    model = Model()
    batcher = started(model, max_batch=64, max_wait_ms=5)
    requests = [("greedy", ["a"]), ("beam", ["b"]), ("greedy", ["c"]), ("beam", ["d"])]
    futures = behind_a_busy_call(batcher, model, requests)
    assert [f.result(WAIT) for f in futures] == [[(k, i[0])] for k, i in requests]
    assert model.calls[1:] == [("greedy", ["a", "c"]), ("beam", ["b", "d"])]
    batcher.stop(WAIT)


def test_a_call_holds_at_most_max_batch_sources_and_order_is_kept():
    model = Model()
    batcher = started(model, max_batch=3, max_wait_ms=5)
    requests = [("k", ["a", "b"]), ("k", ["c", "d"]), ("k", ["e"]), ("k", list("fghij"))]
    futures = behind_a_busy_call(batcher, model, requests)
    for future, (key, items) in zip(futures, requests):
        assert future.result(WAIT) == [(key, item) for item in items]
    # The second request does not fit beside the first: it starts the next call. One
    # larger than max_batch is decoded alone, in one call.
    assert [items for _, items in model.calls[1:]] == [["a", "b"], ["c", "d", "e"],
                                                       list("fghij")]
    batcher.stop(WAIT)


def test_a_full_batch_goes_without_waiting_for_max_wait():
    model = Model()
    batcher = started(model, max_batch=4, max_wait_ms=60_000)
    began = time.monotonic()
    futures = behind_a_busy_call(batcher, model, [("k", [c]) for c in "abcd"])
    assert [f.result(WAIT) for f in futures] == [[("k", c)] for c in "abcd"]
    assert time.monotonic() - began < WAIT / 2  # a minute's wait was not served
    batcher.stop(WAIT)


def test_a_request_that_finds_the_model_idle_is_decoded_at_once():
    answered_at_once_by_an_idle_model()


def test_the_next_call_waits_for_the_sources_the_last_one_answered_and_no_longer():
    model = Model()
    batcher = started(model, max_batch=64, max_wait_ms=60_000)
    began = time.monotonic()
    first = batcher.submit("k", ["a"])  # the model is idle: decoded at once (and held)
    assert model.started.wait(WAIT)
    queued = [batcher.submit("k", [source]) for source in "bc"]
    model.gate.set()
    assert first.result(WAIT) == [("k", "a")]
    # Two queued during the call and one answered by it: the call goes once its client
    # is back, with all three, not after the minute's wait nor without it.
    back = batcher.submit("k", ["a2"])
    assert [f.result(WAIT) for f in [*queued, back]] == [[("k", "b")], [("k", "c")],
                                                          [("k", "a2")]]
    # Three answered, coming back one by one: one call for the three.
    returning = []
    for source in "def":
        returning.append(batcher.submit("k", [source]))
        time.sleep(0.02)
    assert [f.result(WAIT) for f in returning] == [[("k", s)] for s in "def"]
    assert model.calls[1:] == [("k", ["b", "c", "a2"]), ("k", ["d", "e", "f"])]
    assert time.monotonic() - began < WAIT / 2  # no minute's wait was served
    batcher.stop(WAIT)


def test_an_error_reaches_only_the_request_that_caused_it():
    model = Model(fail_on="bad")
    batcher = started(model, max_batch=64, max_wait_ms=5)
    futures = behind_a_busy_call(batcher, model, [("k", ["a"]), ("k", ["bad"]),
                                                  ("k", ["c"])])
    assert futures[0].result(WAIT) == [("k", "a")]
    with pytest.raises(ValueError, match="cannot decode 'bad'"):
        futures[1].result(WAIT)
    assert futures[2].result(WAIT) == [("k", "c")]
    assert model.calls[1] == ("k", ["a", "bad", "c"])  # tried together, then each alone
    batcher.stop(WAIT)


def test_a_full_queue_refuses_and_a_cancelled_request_is_dropped():
    model = Model()
    batcher = started(model, max_batch=64, max_wait_ms=5, max_queue=3)
    first = batcher.submit("k", ["w"])
    assert model.started.wait(WAIT)
    kept, given_up = batcher.submit("k", ["a", "b"]), batcher.submit("k", ["c"])
    assert batcher.queued == 3
    with pytest.raises(QueueFull):
        batcher.submit("k", ["d"])
    assert given_up.cancel()  # its client went away
    model.gate.set()
    assert first.result(WAIT) == [("k", "w")]
    assert kept.result(WAIT) == [("k", "a"), ("k", "b")]
    assert model.calls[1:] == [("k", ["a", "b"])]
    batcher.stop(WAIT)
    assert batcher.queued == 0


def test_stop_decodes_what_is_queued_then_ends_the_worker():
    model = Model()
    batcher = started(model, max_batch=64, max_wait_ms=60_000)
    first = batcher.submit("k", ["w"])
    assert model.started.wait(WAIT)
    queued = batcher.submit("k", ["a"])
    stopper = threading.Thread(target=batcher.stop, args=(WAIT,))
    stopper.start()
    model.gate.set()
    stopper.join(WAIT)
    assert not stopper.is_alive()
    assert first.result(0) == [("k", "w")] and queued.result(0) == [("k", "a")]


def test_a_model_that_fails_to_load_raises_from_start():
    batcher = Batcher(Model(), BatchSettings())

    def broken():
        raise OSError("no such model")

    with pytest.raises(OSError, match="no such model"):
        batcher.start(broken)


def test_a_request_sent_as_start_returns_finds_the_model_idle(monkeypatch):
    """The worker records that the model is free before ``start`` returns: a request sent
    at once, even while the worker thread is slow to go on, is not held for max_wait."""

    class SlowToGoOn(Future):
        def set_result(self, result):
            super().set_result(result)  # ``start`` returns from here on
            time.sleep(0.3)  # the worker thread, descheduled

    monkeypatch.setattr(batcher_module, "Future", SlowToGoOn)
    answered_at_once_by_an_idle_model()


def test_a_request_submitted_after_stop_is_refused_not_lost():
    model = Model()
    model.gate.set()
    batcher = started(model)
    batcher.stop(WAIT)
    with pytest.raises(Stopped):
        batcher.submit("k", ["a"])
