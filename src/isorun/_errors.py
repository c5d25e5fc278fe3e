"""The exception hierarchy: every failure the SDK reports is an ``IsorunError``.

httpx and pydantic exceptions are translated at the boundary so callers only
ever need ``except isorun.IsorunError`` (or one of its subclasses).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from isorun._models import ExecResult

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CommandFailedError",
    "ConfigurationError",
    "ConflictError",
    "InternalServerError",
    "IsorunError",
    "MissingExtraError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "UnprocessableEntityError",
    "error_for_status",
    "require_extra",
]


class IsorunError(Exception):
    """Root of every SDK error; HTTP errors carry the response ``status`` and ``body``."""

    status: int | None
    body: str

    def __init__(self, status: int | None = None, body: str = "", message: str | None = None):
        if message is None:
            message = f"HTTP {status}: {body[:200]}"
        super().__init__(message)
        self.status = status
        self.body = body
        self.message = message


class BadRequestError(IsorunError):
    """HTTP 400: the server rejected the request as malformed."""


class AuthenticationError(IsorunError):
    """HTTP 401: the API key is missing, unknown or revoked."""


class PermissionDeniedError(IsorunError):
    """HTTP 403: the key is valid but may not do this."""


class NotFoundError(IsorunError):
    """HTTP 404: unknown or already destroyed sandbox, snapshot or path."""


class ConflictError(IsorunError):
    """HTTP 409: the resource is in the wrong state (e.g. exec on a hibernated sandbox)."""


class UnprocessableEntityError(IsorunError):
    """HTTP 422: the request was well formed but its values are invalid."""


class RateLimitError(IsorunError):
    """HTTP 429: too many requests; retried automatically before it is raised."""


class InternalServerError(IsorunError):
    """HTTP 5xx: the server failed; idempotent requests were retried first."""


class APIConnectionError(IsorunError):
    """The request could not be completed at the transport level (no HTTP status)."""

    def __init__(self, message: str = "connection error") -> None:
        super().__init__(None, "", message)


class APITimeoutError(APIConnectionError):
    """The request timed out; for a POST the server may still have acted on it."""

    def __init__(self, message: str = "request timed out") -> None:
        super().__init__(message)


class ConfigurationError(IsorunError):
    """The client cannot be built from the given arguments and environment."""

    def __init__(self, message: str) -> None:
        super().__init__(None, "", message)


class MissingExtraError(IsorunError, ImportError):
    """An optional integration was imported without its extra installed."""

    def __init__(self, extra: str, missing: str | None = None) -> None:
        what = f" ({missing} is not installed)" if missing else ""
        msg = f"this feature needs the '{extra}' extra{what}: pip install 'isorun[{extra}]'"
        IsorunError.__init__(self, None, "", msg)
        self.extra = extra


class CommandFailedError(IsorunError):
    """A command exited non-zero and the caller asked for ``check=True``."""

    def __init__(self, result: ExecResult, command: str | None = None) -> None:
        what = f"command {command!r}" if command is not None else "command"
        msg = f"{what} exited with status {result.exit_code}"
        if result.stderr.strip():
            msg += f": {result.stderr.strip()[:200]}"
        super().__init__(None, result.stderr, msg)
        self.result = result
        self.command = command
        self.exit_code = result.exit_code


_BY_STATUS: dict[int, type[IsorunError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_for_status(status: int, body: str) -> IsorunError:
    """Map a non-2xx status to the most specific exception class."""
    if status >= 500:
        return InternalServerError(status, body)
    return _BY_STATUS.get(status, IsorunError)(status, body)


def require_extra(extra: str, module_names: Iterable[str]) -> None:
    """Fail an adapter import early, with the pip command, when its extra is absent.

    Adapter packages call this first thing so users see ``MissingExtraError``
    instead of a bare ``ModuleNotFoundError`` from deep inside the adapter.
    """
    for name in module_names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise MissingExtraError(extra, name)
