"""The runner's image store: registry pulls (skopeo), Debian builds (mmdebstrap),
archive imports, and safe per-layer unpacking for overlayfs.

See :mod:`isorun_runner.images._store` for the on-disk layout.
"""

from ._errors import (
    ImageError,
    ImageInUse,
    ImageNotFound,
    InvalidReference,
    LayerError,
    RegistryAuthError,
    RegistryUnreachable,
)
from ._layers import UnpackStats, unpack_file, unpack_stream
from ._refs import Reference, local_name, parse
from ._store import (
    BUILT_PATH,
    Image,
    ImageRecord,
    ImageStore,
    host_apt_options,
    host_sources,
)

__all__ = [
    "BUILT_PATH",
    "Image",
    "ImageError",
    "ImageInUse",
    "ImageNotFound",
    "ImageRecord",
    "ImageStore",
    "InvalidReference",
    "LayerError",
    "Reference",
    "RegistryAuthError",
    "RegistryUnreachable",
    "UnpackStats",
    "host_apt_options",
    "host_sources",
    "local_name",
    "parse",
    "unpack_file",
    "unpack_stream",
]
