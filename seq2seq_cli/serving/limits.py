"""What a request may ask, and the checks that turn a bad one into a JSON error.

Every refusal is a ``RequestError``: an HTTP status, a kind (a stable word for scripts and
for the ``errors`` metric), a message and, for a limit, the option that sets it and its
value. Nothing a client sends reaches the model unchecked.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    max_sources: int = 64  # per request (and targets, for /score)
    max_source_length: int = 1000  # characters of one source or target, as sent
    max_beam_size: int = 16
    max_n_best: int = 16
    max_output_length: int | None = None  # None: the model's default max length
    max_body_bytes: int = 1 << 20
    # Seconds a client may take to send its body once the headers are in: a client that
    # trickles a body, or stops halfway, is answered 408 instead of holding the request.
    body_timeout: float = 30.0


@dataclass(frozen=True)
class SearchSettings:
    """How a source is decoded; requests with equal settings may share a model call."""

    beam_size: int
    n_best: int
    length_penalty: float
    max_length: int


class RequestError(Exception):
    def __init__(self, status: int, kind: str, message: str, *, limit: str | None = None,
                 maximum: float | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message
        self.limit, self.maximum, self.headers = limit, maximum, headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.kind, "message": self.message}
        if self.limit is not None:
            body |= {"limit": self.limit, "maximum": self.maximum}
        return body


def limit_error(kind: str, what: str, option: str, maximum: int, status: int = 400
                ) -> RequestError:
    return RequestError(status, kind, f"{what}; at most {maximum:,} ({option})",
                        limit=option, maximum=maximum)


def invalid(message: str) -> RequestError:
    return RequestError(400, "invalid_request", message)


def parse_json(body: bytes) -> Any:
    """The body as JSON; NaN and Infinity are not JSON and are refused too."""
    try:
        return json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise RequestError(400, "malformed_json", f"the body is not valid JSON ({reason})"
                           ) from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def parse_translate(body: Any, limits: Limits,
                    default_max_length: int) -> tuple[list[str], SearchSettings]:
    """``{"sources": [...], "beam_size", "n_best", "length_penalty", "max_length"}``."""
    fields = _object(body, ("sources", "beam_size", "n_best", "length_penalty",
                            "max_length"))
    sources = _texts(fields, "sources", limits)
    beam_size = _integer(fields, "beam_size", 1)
    if beam_size > limits.max_beam_size:
        raise limit_error("beam_size_too_large", f"beam_size {beam_size}", "--max-beam-size",
                          limits.max_beam_size)
    n_best = _integer(fields, "n_best", 1)
    if n_best > limits.max_n_best:
        raise limit_error("n_best_too_large", f"n_best {n_best}", "--max-n-best",
                          limits.max_n_best)
    if n_best > beam_size:
        raise invalid(f"n_best {n_best}: must be at most beam_size ({beam_size})")
    length_penalty = fields.get("length_penalty", 1.0)
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, int | float) \
            or not 0 <= length_penalty < math.inf:
        raise invalid(f"length_penalty {json.dumps(length_penalty)}: must be a number >= 0")
    cap = limits.max_output_length or default_max_length
    max_length = fields.get("max_length")
    if max_length is None:
        max_length = cap
    else:
        max_length = _integer(fields, "max_length", cap)
        if max_length > cap:
            raise limit_error("max_length_too_large", f"max_length {max_length}",
                              "--max-output-length", cap)
    return sources, SearchSettings(beam_size, n_best, float(length_penalty), max_length)


def parse_score(body: Any, limits: Limits) -> tuple[list[str], list[str]]:
    """``{"sources": [...], "targets": [...]}``, one target per source."""
    fields = _object(body, ("sources", "targets"))
    sources, targets = _texts(fields, "sources", limits), _texts(fields, "targets", limits)
    if len(sources) != len(targets):
        raise invalid(f"{len(sources)} sources but {len(targets)} targets: give one target "
                      "per source")
    return sources, targets


def _object(body: Any, known: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid(f"the body must be a JSON object with the fields {', '.join(known)}")
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise invalid(f"unknown field {unknown[0]!r}; the fields are {', '.join(known)}")
    return body


def _texts(fields: dict[str, Any], name: str, limits: Limits) -> list[str]:
    texts = fields.get(name)
    if not isinstance(texts, list):
        raise invalid(f"{name!r} must be a list of strings")
    if len(texts) > limits.max_sources:
        raise limit_error("too_many_sources", f"{len(texts):,} {name} in one request",
                          "--max-sources", limits.max_sources)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise invalid(f"{name}[{i}] must be a string, not {json.dumps(text)[:40]}")
        if len(text) > limits.max_source_length:
            raise limit_error("source_too_long", f"{name}[{i}] has {len(text):,} characters",
                              "--max-source-length", limits.max_source_length)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise invalid(f"{name}[{i}] is not valid Unicode (it holds a lone surrogate)"
                          ) from None
    return texts


def _integer(fields: dict[str, Any], name: str, default: int) -> int:
    value = fields.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(f"{name} {json.dumps(value)[:40]}: must be an integer >= 1")
    return value
