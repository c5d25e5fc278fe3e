"""The ``isorun`` console script: the CLI lives with the runner extra."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from isorun_runner.cli import main as cli_main
    except ImportError as exc:  # typer/rich/starlette not installed
        sys.stderr.write(
            f"isorun: the command-line tool needs the runner extra ({exc.name} is missing).\n"
            "Install it with: pip install 'isorun[runner]'\n"
        )
        raise SystemExit(2) from None
    cli_main()
