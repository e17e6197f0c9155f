"""What ``GET /metrics`` reports, in Prometheus's text format, from a registry of the app's
own (no process-wide state: two apps in one process count apart)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

ENDPOINTS = ("/translate", "/score", "/health", "/model", "/metrics")
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Telemetry:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple, Any] = {}
        self.requests = Counter("seq2seq_requests", "HTTP requests answered",
                                ["endpoint", "status"], registry=self.registry)
        self.sources = Counter("seq2seq_sources", "Sources received", ["endpoint"],
                               registry=self.registry)
        self.errors = Counter("seq2seq_errors", "Requests refused or failed, by kind",
                              ["kind"], registry=self.registry)
        self.batch_sources = Histogram("seq2seq_batch_sources", "Sources per model call",
                                       buckets=BATCH_BUCKETS, registry=self.registry)
        self.queue = Gauge("seq2seq_queue_sources", "Sources waiting for the model",
                           registry=self.registry)
        self.latency = Histogram("seq2seq_request_seconds",
                                 "Seconds from a request's arrival to its response",
                                 ["endpoint"], buckets=LATENCY_BUCKETS,
                                 registry=self.registry)

    def watch_queue(self, length: Callable[[], int]) -> None:
        self.queue.set_function(length)

    def refused(self, kind: str) -> None:
        self._child(self.errors, kind).inc()

    def received(self, endpoint: str, sources: int) -> None:
        self._child(self.sources, endpoint).inc(sources)

    def answered(self, path: str, status: int, seconds: float) -> None:
        endpoint = path if path in ENDPOINTS else "other"  # labels stay few
        self._child(self.requests, endpoint, status).inc()
        self._child(self.latency, endpoint).observe(seconds)

    def _child(self, metric: Any, *labels: object) -> Any:
        """``metric.labels(*labels)``, looked up once: ``labels`` checks, converts and
        locks on every call, a cost paid per request on the event loop."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def render(self) -> bytes:
        return generate_latest(self.registry)
