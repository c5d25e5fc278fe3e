"""Retry policy: what may be re-sent, and how long to wait first.

A POST (create, exec, fork, snapshot, restore, upload) is not idempotent, so it
is re-sent only when the connection failed before any byte of it left.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PATCH", "PUT"})
RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry and the backoff shape (seconds)."""

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0


def retry_status(policy: RetryPolicy, method: str, status: int, attempt: int) -> bool:
    """Whether an HTTP error answer to attempt number ``attempt`` (0-based) is retried."""
    return (
        attempt < policy.max_retries
        and method.upper() in IDEMPOTENT_METHODS
        and status in RETRY_STATUSES
    )


def request_unsent(exc: BaseException) -> bool:
    """True when the request provably never reached the server."""
    return isinstance(exc, _UNSENT)


def retry_exception(policy: RetryPolicy, method: str, exc: BaseException, attempt: int) -> bool:
    """Whether a transport failure of attempt ``attempt`` is retried."""
    if attempt >= policy.max_retries or not isinstance(exc, httpx.TransportError):
        return False
    return request_unsent(exc) or method.upper() in IDEMPOTENT_METHODS


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff(
    policy: RetryPolicy,
    attempt: int,
    retry_after: str | None = None,
    *,
    now: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Delay before retry ``attempt + 1``: the server's Retry-After when sane, else
    exponential backoff with jitter (between half and all of the nominal delay)."""
    hinted = parse_retry_after(retry_after, now)
    if hinted is not None and hinted <= policy.max_retry_after:
        return hinted
    nominal = min(policy.initial_delay * 2.0**attempt, policy.max_delay)
    return nominal * (1 - 0.5 * rand())
