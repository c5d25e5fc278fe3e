"""The Isorun local runner: the v1 API on this machine, with runc isolation."""

__all__: list[str] = []
