"""Run a self-hosted Claude Managed Agents environment on Isorun sandboxes.

One sandbox per session. The orchestrator polls the environment's work queue,
picks (or creates) the session's sandbox, and serves the work item in one of
two modes:

* ``"host-worker"`` (default): the Anthropic environment worker runs in this
  process and its tools (``bash``, ``read``, ``write``, ``edit``, ``glob``,
  ``grep``) execute in the sandbox. Any image works and the environment key
  never enters the sandbox.
* ``"runner"`` (TypeScript SDK parity): the work context is uploaded as a file
  and ``python3 -m isorun_claude_agents.runner`` runs inside the sandbox, so the
  image must contain the runner (see :func:`isorun_claude_agents.build_agent_image`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import shlex
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from anthropic import AsyncAnthropic

import isorun
from isorun_claude_agents.host_tools import DEFAULT_WORKDIR, sandbox_tools

__all__ = [
    "CONTEXT_PATH",
    "META_IMAGE",
    "META_SANDBOX_ID",
    "RUNNER_COMMAND",
    "SNAPSHOT_PREFIX",
    "OrchestratorEvent",
    "VmAllocated",
    "WorkClaimed",
    "WorkCompleted",
    "WorkFailed",
    "run_orchestrator",
]

log = logging.getLogger("isorun_claude_agents")

META_IMAGE = "isorun.image"
META_SANDBOX_ID = "isorun.sandbox_id"
CONTEXT_PATH = "/tmp/isorun-claude-work.json"
RUNNER_COMMAND = "python3 -m isorun_claude_agents.runner"
SNAPSHOT_PREFIX = "snapshot:"
Mode = Literal["host-worker", "runner"]


@dataclass(frozen=True)
class WorkClaimed:
    work_id: str
    session_id: str
    type: Literal["work_claimed"] = "work_claimed"


@dataclass(frozen=True)
class VmAllocated:
    work_id: str
    session_id: str
    sandbox_id: str
    boot_ms: int
    reused: bool
    type: Literal["vm_allocated"] = "vm_allocated"


@dataclass(frozen=True)
class WorkCompleted:
    work_id: str
    session_id: str
    duration_ms: int
    type: Literal["work_completed"] = "work_completed"


@dataclass(frozen=True)
class WorkFailed:
    work_id: str
    session_id: str
    error: str
    type: Literal["work_failed"] = "work_failed"


OrchestratorEvent = WorkClaimed | VmAllocated | WorkCompleted | WorkFailed
EventCallback = Callable[[OrchestratorEvent], Awaitable[None] | None]


class _AllocationError(Exception):
    pass


@dataclass
class _Binding:
    sandbox_id: str
    owned: bool  # created by us: re-timed and destroyed by us; bring-your-own: never


@dataclass
class _Orchestrator:
    client: isorun.AsyncIsorun
    anthropic: AsyncAnthropic
    environment_id: str
    environment_key: str
    image: str
    mode: Mode
    vcpus: int | None
    mem_mib: int | None
    anthropic_base_url: str | None
    on_event: EventCallback | None
    session_timeout_sec: float
    sandbox_idle_ttl_sec: float
    workdir: str
    network: Mapping[str, Sequence[str]] | None
    runner_command: str
    max_idle: float
    worker_options: Mapping[str, Any]
    bindings: dict[str, _Binding] = field(default_factory=dict)
    tails: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    in_flight: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def scoped(self) -> AsyncAnthropic:
        """The Anthropic client authenticating with the environment key (Bearer)."""
        return self.anthropic.with_options(api_key=self.environment_key)

    async def emit(self, event: OrchestratorEvent) -> None:
        if isinstance(event, WorkFailed):
            log.warning(
                "work_failed work=%s session=%s: %s", event.work_id, event.session_id, event.error
            )
        else:
            log.info("%s %s", event.type, {k: v for k, v in vars(event).items() if k != "type"})
        if self.on_event is None:
            return
        try:
            result = self.on_event(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("on_event callback failed for %s", event.type)

    # -- the loop --------------------------------------------------------

    async def poll(self, worker_id: str) -> None:
        poller = self.anthropic.beta.environments.work.poller(
            environment_id=self.environment_id,
            environment_key=self.environment_key,
            worker_id=worker_id,
            auto_stop=False,
        )
        async for item in poller:
            self.dispatch(item)

    def dispatch(self, item: Any) -> None:
        data = getattr(item, "data", None)
        session_id = getattr(data, "id", None) or ""
        if getattr(data, "type", None) != "session" or not session_id:
            task = asyncio.create_task(self.stop_item(item.id))
        else:
            previous = self.tails.get(session_id)
            task = asyncio.create_task(self.after(previous, item, session_id))
            self.tails[session_id] = task
            task.add_done_callback(lambda t: self._untail(session_id, t))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    def _untail(self, session_id: str, task: asyncio.Task[None]) -> None:
        if self.tails.get(session_id) is task:
            del self.tails[session_id]

    async def after(self, previous: asyncio.Task[None] | None, item: Any, sid: str) -> None:
        if previous is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(previous)
        await self.handle(item, sid)

    async def stop_item(self, work_id: str) -> None:
        try:
            await self.scoped.beta.environments.work.stop(
                work_id, environment_id=self.environment_id, force=True
            )
        except Exception as e:  # already stopped (409), gone, ...: nothing to do
            log.debug("stop of work %s failed (ignored): %s", work_id, e)

    # -- one work item ---------------------------------------------------

    async def handle(self, item: Any, sid: str) -> None:
        work_id = item.id
        started = time.monotonic()
        await self.emit(WorkClaimed(work_id, sid))
        metadata: Mapping[str, str] = {}
        try:
            session = await self.scoped.beta.sessions.retrieve(sid)
            metadata = dict(session.metadata or {})
        except Exception as e:
            log.debug("reading metadata of session %s failed (ignored): %s", sid, e)
        try:
            sandbox, binding, boot_ms, reused = await self.allocate(sid, metadata)
        except Exception as e:
            await self.stop_item(work_id)
            await self.emit(WorkFailed(work_id, sid, f"sandbox allocation failed: {e}"))
            return
        await self.emit(VmAllocated(work_id, sid, sandbox.id, boot_ms, reused))
        try:
            if self.mode == "runner":
                await self.serve_in_runner(sandbox, item, sid)
            else:
                await self.serve_on_host(sandbox, item, sid)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            await self.emit(WorkFailed(work_id, sid, str(e) or type(e).__name__))
        else:
            duration = int((time.monotonic() - started) * 1000)
            await self.emit(WorkCompleted(work_id, sid, duration))
        finally:
            if binding.owned:
                with contextlib.suppress(isorun.IsorunError):
                    await sandbox.set_timeout(self.sandbox_idle_ttl_sec)

    async def allocate(
        self, sid: str, metadata: Mapping[str, str]
    ) -> tuple[isorun.AsyncSandbox, _Binding, int, bool]:
        t0 = time.monotonic()
        bound = self.bindings.get(sid)
        if bound is not None:
            sandbox = await self.client.get(bound.sandbox_id)
            if sandbox is not None:
                if bound.owned:  # the auto-destroy timer covers the whole item
                    await sandbox.set_timeout(self.session_timeout_sec + 60)
                return sandbox, bound, int((time.monotonic() - t0) * 1000), True
            log.info("sandbox %s of session %s is gone; replacing it", bound.sandbox_id, sid)
            del self.bindings[sid]
        byo = metadata.get(META_SANDBOX_ID)
        if byo:
            found = await self.client.get(byo)
            if found is None:
                raise _AllocationError(f"sandbox {byo} (metadata {META_SANDBOX_ID}) does not exist")
            binding = _Binding(found.id, owned=False)
            sandbox = found
        else:
            image = metadata.get(META_IMAGE) or self.image
            sandbox = await self.create(image)
            binding = _Binding(sandbox.id, owned=True)
        self.bindings[sid] = binding
        return sandbox, binding, int((time.monotonic() - t0) * 1000), False

    async def create(self, image: str) -> isorun.AsyncSandbox:
        timeout = self.session_timeout_sec + 60
        if image.startswith(SNAPSHOT_PREFIX):
            return await self.client.restore(
                image[len(SNAPSHOT_PREFIX) :],
                vcpus=self.vcpus,
                mem_mib=self.mem_mib,
                timeout=timeout,
                network=self.network,
            )
        return await self.client.create(
            image, vcpus=self.vcpus, mem_mib=self.mem_mib, timeout=timeout, network=self.network
        )

    async def serve_on_host(self, sandbox: isorun.AsyncSandbox, item: Any, sid: str) -> None:
        await sandbox.exec(f"mkdir -p {shlex.quote(self.workdir)}", check=True)
        workdir = self.workdir

        def tools(ctx: Any) -> list[Any]:
            return sandbox_tools(sandbox, workdir)

        # The SDK's per-session context (skills download) lives in a host temp dir.
        with tempfile.TemporaryDirectory(prefix="isorun-claude-") as host_dir:
            options: dict[str, Any] = {"memory_sync_interval": None, "max_idle": self.max_idle}
            options.update(self.worker_options)
            worker = self.anthropic.beta.environments.work.worker(
                environment_id=self.environment_id,
                environment_key=self.environment_key,
                tools=tools,
                workdir=host_dir,
                **options,
            )
            await asyncio.wait_for(
                worker.handle_item(
                    work_id=item.id,
                    environment_id=self.environment_id,
                    session_id=sid,
                    environment_key=self.environment_key,
                    work_secret=getattr(item, "secret", None),
                ),
                self.session_timeout_sec,
            )

    async def serve_in_runner(self, sandbox: isorun.AsyncSandbox, item: Any, sid: str) -> None:
        context: dict[str, str] = {
            "environmentKey": self.environment_key,
            "environmentId": self.environment_id,
            "sessionId": sid,
            "workId": item.id,
        }
        if self.anthropic_base_url:
            context["baseUrl"] = self.anthropic_base_url
        secret = getattr(item, "secret", None)
        if secret:
            context["workSecret"] = secret
        # A file, never a command line: exec commands are recorded in the audit log.
        await sandbox.write_file(CONTEXT_PATH, json.dumps(context))
        try:
            result = await sandbox.exec(
                f"{self.runner_command} --workdir {shlex.quote(self.workdir)}",
                timeout=self.session_timeout_sec,
            )
        finally:
            # The runner deletes it; make sure even a runner that never started leaves no key.
            with contextlib.suppress(Exception):
                await sandbox.exec(f"rm -f {CONTEXT_PATH}")
        if result.stderr.strip():
            log.info("runner stderr (work %s):\n%s", item.id, result.stderr.rstrip())
        if result.exit_code != 0:
            await self.stop_item(item.id)
            detail = result.stderr.strip() or result.stdout.strip()
            raise RuntimeError(f"runner exited with status {result.exit_code}: {detail}")

    async def destroy_owned(self) -> None:
        for binding in list(self.bindings.values()):
            if not binding.owned:
                continue
            sandbox = await self.client.get(binding.sandbox_id)
            if sandbox is not None:
                with contextlib.suppress(isorun.IsorunError):
                    await sandbox.destroy()
        self.bindings.clear()


async def run_orchestrator(
    client: isorun.AsyncIsorun,
    *,
    environment_id: str,
    environment_key: str,
    image: str = "python:3.12-slim",
    mode: Mode = "host-worker",
    vcpus: int | None = None,
    mem_mib: int | None = None,
    anthropic_base_url: str | None = None,
    anthropic_client: AsyncAnthropic | None = None,
    on_event: EventCallback | None = None,
    stop: asyncio.Event | None = None,
    session_timeout_sec: float = 3600,
    sandbox_idle_ttl_sec: float = 1800,
    workdir: str = DEFAULT_WORKDIR,
    network: Mapping[str, Sequence[str]] | None = None,
    runner_command: str = RUNNER_COMMAND,
    max_idle: float = 60,
    worker_id: str | None = None,
    destroy_on_exit: bool = True,
    worker_options: Mapping[str, Any] | None = None,
) -> None:
    """Serve the environment's work items on Isorun sandboxes until ``stop`` is set or cancelled.

    ``image`` is the image of new sandboxes (``"snapshot:<id>"`` restores a
    snapshot, e.g. the one :func:`build_agent_image` returns); session metadata
    ``isorun.image`` overrides it and ``isorun.sandbox_id`` names an existing
    sandbox to use instead (never destroyed or re-timed). Items of one session
    run in order, sessions run concurrently. On stop or cancellation, polling
    ends and the items in flight finish first; then, with ``destroy_on_exit``,
    the sandboxes this orchestrator created are destroyed (their bindings live
    only in this process).
    """
    if mode not in ("host-worker", "runner"):
        raise ValueError(f"mode must be 'host-worker' or 'runner', got {mode!r}")
    if not environment_id or not environment_key:
        raise ValueError("environment_id and environment_key are required")
    anthropic = anthropic_client or AsyncAnthropic(
        api_key=environment_key, base_url=anthropic_base_url
    )
    orch = _Orchestrator(
        client=client,
        anthropic=anthropic,
        environment_id=environment_id,
        environment_key=environment_key,
        image=image,
        mode=mode,
        vcpus=vcpus,
        mem_mib=mem_mib,
        anthropic_base_url=anthropic_base_url or (str(anthropic.base_url).rstrip("/") or None),
        on_event=on_event,
        session_timeout_sec=session_timeout_sec,
        sandbox_idle_ttl_sec=sandbox_idle_ttl_sec,
        workdir=workdir,
        network=network,
        runner_command=runner_command,
        max_idle=max_idle,
        worker_options=dict(worker_options or {}),
    )
    worker_id = worker_id or f"isorun-{uuid.uuid4().hex[:12]}"
    stop = stop or asyncio.Event()
    poll_task = asyncio.create_task(orch.poll(worker_id))
    stop_task = asyncio.create_task(stop.wait())
    log.info("orchestrator %s polling environment %s (%s mode)", worker_id, environment_id, mode)
    try:
        done, _ = await asyncio.wait({poll_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        if poll_task in done:
            poll_task.result()  # a fatal poll error propagates
    finally:
        for task in (poll_task, stop_task):
            task.cancel()
        await asyncio.gather(poll_task, stop_task, return_exceptions=True)
        # Let the items in flight finish (shielded: a cancellation of run_orchestrator
        # itself still waits for them; cancel again to abandon them).
        while orch.in_flight:
            await asyncio.shield(asyncio.gather(*orch.in_flight, return_exceptions=True))
        if destroy_on_exit:
            with contextlib.suppress(Exception):
                await orch.destroy_owned()
        log.info("orchestrator %s stopped", worker_id)
