"""The ``isorun-mcp`` command: stdio by default, ``--http`` for streamable HTTP on loopback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import isorun

HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isorun-mcp",
        description=(
            "MCP server for Isorun sandboxes. Reads ISORUN_API_KEY / ISORUN_API_URL "
            "(without a key it uses a local `isorun serve` runner's client.json)."
        ),
    )
    parser.add_argument(
        "--http",
        action="store_true",
        help=f"serve streamable HTTP on http://{HOST}:PORT/mcp instead of stdio",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port for --http (default {DEFAULT_PORT})",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 0 < args.port < 65536:
        print(f"isorun-mcp: --port must be in 1..65535, got {args.port}", file=sys.stderr)
        return 2
    if args.version:
        print(f"isorun-mcp {isorun.__version__}")
        return 0
    try:
        from isorun_mcp import build_server

        server = build_server()
    except isorun.IsorunError as exc:  # missing extra or configuration: say why, no traceback
        print(f"isorun-mcp: {exc}", file=sys.stderr)
        return 2
    try:
        if args.http:
            server.run("streamable-http", host=HOST, port=args.port)
        else:
            server.run("stdio")
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
