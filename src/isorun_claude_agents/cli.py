"""``isorun-claude-orchestrator``: serve a Claude Managed Agents environment on Isorun sandboxes.

    ANTHROPIC_ENVIRONMENT_ID=env_... ANTHROPIC_ENVIRONMENT_KEY=... ISORUN_API_KEY=... \\
        isorun-claude-orchestrator [--mode host-worker|runner] [--image IMAGE] \\
            [--vcpus N] [--memory MIB]
    isorun-claude-orchestrator build-image [--base python:3.12-slim]   # prints snapshot:<id>

Stops cleanly on Ctrl-C / SIGTERM after the work items in flight finish.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time

import isorun
from isorun_claude_agents.agent_image import build_agent_image
from isorun_claude_agents.orchestrator import (
    SNAPSHOT_PREFIX,
    OrchestratorEvent,
    VmAllocated,
    WorkClaimed,
    WorkCompleted,
    WorkFailed,
    run_orchestrator,
)


def format_event(event: OrchestratorEvent) -> str:
    stamp = time.strftime("%H:%M:%S")
    if isinstance(event, WorkClaimed):
        text = f"claimed    {event.work_id}  session {event.session_id}"
    elif isinstance(event, VmAllocated):
        how = "reused" if event.reused else f"booted in {event.boot_ms} ms"
        text = f"sandbox    {event.work_id}  {event.sandbox_id} ({how})"
    elif isinstance(event, WorkCompleted):
        text = f"completed  {event.work_id}  in {event.duration_ms / 1000:.1f} s"
    elif isinstance(event, WorkFailed):
        text = f"FAILED     {event.work_id}  {event.error}"
    else:  # pragma: no cover
        text = repr(event)
    return f"{stamp}  {text}"


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="isorun-claude-orchestrator",
        description="Serve a self-hosted Claude Managed Agents environment on Isorun sandboxes "
        "(subcommand `build-image` builds the agent image for runner mode).",
    )
    p.add_argument(
        "--environment-id",
        default=os.environ.get("ANTHROPIC_ENVIRONMENT_ID"),
        help="[env ANTHROPIC_ENVIRONMENT_ID]",
    )
    p.add_argument(
        "--environment-key",
        default=os.environ.get("ANTHROPIC_ENVIRONMENT_KEY"),
        help="prefer the variable ANTHROPIC_ENVIRONMENT_KEY (flags show in ps)",
    )
    p.add_argument(
        "--mode",
        choices=("host-worker", "runner"),
        default=os.environ.get("ISORUN_CLAUDE_MODE", "host-worker"),
    )
    p.add_argument(
        "--image",
        default=os.environ.get("ISORUN_CLAUDE_IMAGE", "python:3.12-slim"),
        help="image of new sandboxes, or snapshot:<id> [env ISORUN_CLAUDE_IMAGE]",
    )
    p.add_argument("--vcpus", type=int, default=_env_int("ISORUN_CLAUDE_VCPUS"))
    p.add_argument(
        "--memory",
        type=int,
        default=_env_int("ISORUN_CLAUDE_MEMORY_MIB"),
        help="MiB [env ISORUN_CLAUDE_MEMORY_MIB]",
    )
    p.add_argument("--session-timeout", type=float, default=3600)
    p.add_argument("--idle-ttl", type=float, default=1800)
    p.add_argument("--anthropic-base-url", default=os.environ.get("ANTHROPIC_BASE_URL"))
    p.add_argument("--isorun-api-key", default=None, help="default: ISORUN_API_KEY")
    p.add_argument("--isorun-api-url", default=None, help="default: ISORUN_API_URL")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # non-Unix
            loop.add_signal_handler(sig, stop.set)

    def show(event: OrchestratorEvent) -> None:
        print(format_event(event), flush=True)

    async with isorun.AsyncIsorun(api_key=args.isorun_api_key, api_url=args.isorun_api_url) as c:
        await run_orchestrator(
            c,
            environment_id=args.environment_id,
            environment_key=args.environment_key,
            image=args.image,
            mode=args.mode,
            vcpus=args.vcpus,
            mem_mib=args.memory,
            anthropic_base_url=args.anthropic_base_url,
            on_event=show,
            stop=stop,
            session_timeout_sec=args.session_timeout,
            sandbox_idle_ttl_sec=args.idle_ttl,
        )


async def _build(args: argparse.Namespace) -> None:
    async with isorun.AsyncIsorun(api_key=args.isorun_api_key, api_url=args.isorun_api_url) as c:
        snap = await build_agent_image(c, args.base)
    print(f"{SNAPSHOT_PREFIX}{snap.id}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["build-image"]:
        b = argparse.ArgumentParser(
            prog="isorun-claude-orchestrator build-image",
            description="Build the runner-mode agent image as a snapshot; prints snapshot:<id>.",
        )
        b.add_argument("--base", default="python:3.12-slim")
        b.add_argument("--isorun-api-key", default=None)
        b.add_argument("--isorun-api-url", default=None)
        asyncio.run(_build(b.parse_args(argv[1:])))
        return 0
    parser = _run_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.environment_id:
        parser.error("no environment id: set ANTHROPIC_ENVIRONMENT_ID or --environment-id")
    if not args.environment_key:
        parser.error("no environment key: set ANTHROPIC_ENVIRONMENT_KEY")
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
