"""Image references, normalized the way Docker does (``distribution/reference``).

``python:3.12-slim`` -> ``docker.io/library/python:3.12-slim``;
``ghcr.io/org/app:1.4`` stays; ``host:5000/team/agent@sha256:...`` is a pin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._errors import InvalidReference

DOCKER_HUB = "docker.io"
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN_RE = re.compile(
    r"^(?:\[[0-9a-fA-F:]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]+)?$"
)


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str  # "library/python"
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def host(self) -> str:
        """The domain without its port (``[::1]`` -> ``::1``)."""
        d = self.domain
        if d.startswith("["):
            return d[1 : d.index("]")]
        return d.rsplit(":", 1)[0] if ":" in d else d

    def __str__(self) -> str:
        """Normalized name: a pin drops the tag (a digest says it all)."""
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or 'latest'}"

    def transport(self) -> str:
        """The skopeo source (``docker://...``); a tag+digest pin pulls by digest."""
        return f"docker://{self}"


def is_digest(ref: str) -> bool:
    return bool(_DIGEST_RE.match(ref))


def split_name(ref: str) -> tuple[str, str | None, str | None]:
    """``name[:tag][@digest]`` -> (name, tag, digest) without normalizing."""
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = None
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        ref, tag = ref[:colon], ref[colon + 1 :]
    return ref, tag, digest


def parse(ref: str) -> Reference:
    """Parse and normalize a registry reference; raise InvalidReference."""
    original = ref
    if not ref or len(ref) > 512 or any(c.isspace() for c in ref):
        raise InvalidReference(f"invalid image reference {original!r}")
    name, tag, digest = split_name(ref)
    if digest is not None and not _DIGEST_RE.match(digest):
        raise InvalidReference(
            f"invalid image reference {original!r}: the digest must be sha256:<64 hex>"
        )
    if tag is not None and not _TAG_RE.match(tag):
        raise InvalidReference(f"invalid image reference {original!r}: bad tag {tag!r}")
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = DOCKER_HUB, name
    if domain in ("index.docker.io", "registry-1.docker.io"):
        domain = DOCKER_HUB
    if not _DOMAIN_RE.match(domain):
        raise InvalidReference(f"invalid image reference {original!r}: bad registry {domain!r}")
    if domain == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not path or not all(_PATH_COMPONENT_RE.match(p) for p in path.split("/")):
        raise InvalidReference(
            f"invalid image reference {original!r}: repository names are lowercase "
            "letters, digits and separators (. _ __ -)"
        )
    if tag is None and digest is None:
        tag = "latest"
    return Reference(domain, path, tag, digest)


def local_name(name: str) -> str:
    """A user-chosen local name (build/import), with ``:latest`` added if untagged."""
    if not name or len(name) > 256 or any(c.isspace() for c in name) or "@" in name:
        raise InvalidReference(
            f"invalid image name {name!r}: use letters, digits, '.', '_', '-', '/' and a ':tag'"
        )
    base, tag, _ = split_name(name)
    if tag is not None and not _TAG_RE.match(tag):
        raise InvalidReference(f"invalid image name {name!r}: bad tag {tag!r}")
    parts = base.split("/")
    if not all(p and re.match(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$", p) for p in parts):
        raise InvalidReference(
            f"invalid image name {name!r}: use letters, digits, '.', '_', '-', '/' and a ':tag'"
        )
    return name if tag is not None else f"{name}:latest"
