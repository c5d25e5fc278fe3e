"""Errors of the image store; ``status`` is the HTTP status the API answers with."""

from __future__ import annotations


class ImageError(Exception):
    """Base class; ``str(exc)`` is a message meant for users."""

    status = 500

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class InvalidReference(ImageError):
    """The image reference is malformed."""

    status = 400


class ImageNotFound(ImageError):
    """The image is neither in the local store nor in its registry."""

    status = 404


class RegistryAuthError(ImageNotFound):
    """The registry refused the credentials (or has none for a private image)."""


class RegistryUnreachable(ImageError):
    """The registry could not be reached (connection refused, DNS, timeout, TLS)."""

    status = 502


class LayerError(ImageError):
    """A layer is corrupt or malicious (path traversal, write through a symlink...)."""

    status = 400


class ImageInUse(ImageError):
    """The image is used by a live sandbox."""

    status = 409
