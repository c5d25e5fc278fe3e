"""The in-sandbox runner: serve one claimed work item with the Anthropic environment worker.

    python3 -m isorun_claude_agents.runner [--context FILE] [--workdir /mnt/session]

It reads the work context the orchestrator uploaded (JSON with
``environmentKey``, ``environmentId``, ``sessionId``, ``workId`` and optional
``baseUrl`` / ``workSecret``) and deletes the file at once. Without the file it
reads ``ANTHROPIC_ENVIRONMENT_KEY``, ``ANTHROPIC_ENVIRONMENT_ID``,
``ANTHROPIC_SESSION_ID``, ``ANTHROPIC_WORK_ID`` and optional
``ANTHROPIC_BASE_URL`` / ``ANTHROPIC_WORK_SECRET``. The agent's tools then run
here, in the working directory, until the session goes idle. Exit status 0 on
success, 1 when serving failed, 2 for a missing or unreadable context.

Only the standard library and ``anthropic`` are imported, so an image needs
nothing else from isorun.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from dataclasses import dataclass

DEFAULT_CONTEXT_PATH = "/tmp/isorun-claude-work.json"
DEFAULT_WORKDIR = "/mnt/session"

_FIELDS = (  # (attribute, JSON key, environment variable, required)
    ("environment_key", "environmentKey", "ANTHROPIC_ENVIRONMENT_KEY", True),
    ("environment_id", "environmentId", "ANTHROPIC_ENVIRONMENT_ID", True),
    ("session_id", "sessionId", "ANTHROPIC_SESSION_ID", True),
    ("work_id", "workId", "ANTHROPIC_WORK_ID", True),
    ("base_url", "baseUrl", "ANTHROPIC_BASE_URL", False),
    ("work_secret", "workSecret", "ANTHROPIC_WORK_SECRET", False),
)


class ContextError(Exception):
    pass


@dataclass(frozen=True)
class WorkContext:
    environment_key: str
    environment_id: str
    session_id: str
    work_id: str
    base_url: str | None = None
    work_secret: str | None = None

    def __repr__(self) -> str:  # never print the key or the secret
        return (
            f"WorkContext(environment_id={self.environment_id!r}, "
            f"session_id={self.session_id!r}, work_id={self.work_id!r})"
        )


def load_context(path: str = DEFAULT_CONTEXT_PATH) -> WorkContext:
    """The work context from ``path`` (deleted once read), else from ``ANTHROPIC_*``."""
    values: dict[str, str | None] = {}
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                raw = json.load(f)
        except (OSError, ValueError) as e:
            raise ContextError(f"cannot read the work context {path}: {e}") from e
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if not isinstance(raw, dict):
            raise ContextError(f"the work context {path} is not a JSON object")
        for attr, key, _env, required in _FIELDS:
            value = raw.get(key)
            if required and not (isinstance(value, str) and value):
                raise ContextError(f"the work context {path} has no {key}")
            values[attr] = value if isinstance(value, str) and value else None
    else:
        for attr, _key, env, required in _FIELDS:
            value = os.environ.get(env) or None
            if required and value is None:
                raise ContextError(f"no work context file {path} and {env} is not set")
            values[attr] = value
    return WorkContext(**values)  # type: ignore[arg-type]


async def serve(ctx: WorkContext, workdir: str = DEFAULT_WORKDIR) -> None:
    """Hand the one work item to the SDK's environment worker (tools run in ``workdir``)."""
    from anthropic import AsyncAnthropic

    os.makedirs(workdir, exist_ok=True)
    os.chdir(workdir)
    # The tools' subprocesses must not inherit credentials (the SDK scrubs ANTHROPIC_*
    # from bash too); the values live only in this process from here on.
    for _attr, _key, env, _required in _FIELDS:
        os.environ.pop(env, None)
    client = AsyncAnthropic(api_key=ctx.environment_key, base_url=ctx.base_url)
    worker = client.beta.environments.work.worker(
        environment_id=ctx.environment_id, environment_key=ctx.environment_key, workdir=workdir
    )
    await worker.handle_item(
        work_id=ctx.work_id,
        environment_id=ctx.environment_id,
        session_id=ctx.session_id,
        environment_key=ctx.environment_key,
        work_secret=ctx.work_secret,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="isorun-claude-runner",
        description="Serve one claimed Claude Managed Agents work item in this sandbox.",
    )
    parser.add_argument(
        "--context", default=os.environ.get("ISORUN_CLAUDE_WORK_FILE", DEFAULT_CONTEXT_PATH)
    )
    parser.add_argument("--workdir", default=DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    try:
        ctx = load_context(args.context)
    except ContextError as e:
        print(f"isorun-claude-runner: {e}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(ctx, args.workdir))
    except Exception as e:
        print(
            f"isorun-claude-runner: work {ctx.work_id} failed: {type(e).__name__}: {e}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
