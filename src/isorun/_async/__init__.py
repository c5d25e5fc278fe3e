"""The I/O layer, asyncio flavour: the source that scripts/gen_sync.py turns into ``_sync``."""

from isorun._async._client import AsyncIsorun
from isorun._async._sandbox import AsyncSandbox
from isorun._async._tools import AsyncToolSession

__all__ = ["AsyncIsorun", "AsyncSandbox", "AsyncToolSession"]
