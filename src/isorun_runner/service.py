"""What the runner does, independent of HTTP: sandboxes, state operations, timers, audit.

Routes in :mod:`isorun_runner.app` translate requests into calls here and
:class:`ApiError` into JSON errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from isorun._audit import audit_hmac

from .backend import BackendError, RuncBackend, SandboxSpec, run
from .config import RunnerConfig
from .db import Database
from .fs import FileAccessError, aiter_fd

log = logging.getLogger("isorun.runner")


MAX_COMMAND_BYTES = 120_000


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def now_iso(ts: float | None = None) -> str:
    dt = datetime.fromtimestamp(time.time() if ts is None else ts, tz=timezone.utc)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _int_field(body: dict[str, Any], name: str, lo: int, hi: int, default: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ApiError(400, f"{name} must be an integer, got {json.dumps(value)}")
    if not lo <= value <= hi:
        raise ApiError(400, f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _dir_size(path: Path) -> int:
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


class Runner:
    def __init__(self, config: RunnerConfig, images: Any, network: Any = None) -> None:
        self.config = config
        self.state_dir = config.state_dir
        self.backend = RuncBackend(
            self.state_dir,
            pids_limit=config.limits.pids_limit,
            output_cap=config.limits.output_cap_bytes,
            compat_arches=config.limits.allow_32bit_syscalls,
        )
        self.images = images
        self.network = network
        self.snapshots_dir = self.state_dir / "snapshots"
        self.db: Database | None = None
        self.audit_key = b""
        self._locks: dict[str, asyncio.Lock] = {}
        self._creating = 0
        self._reaper: asyncio.Task[None] | None = None
        self._bg: set[asyncio.Future[Any]] = set()
        self._warm: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        self._warm_images: dict[tuple[Any, ...], Any] = {}
        self._warm_task: asyncio.Future[None] | None = None
        self._quiet_after = 0.0
        self._inflight = 0

    # ---- start and stop ----------------------------------------------------
    async def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o711)
        self.backend.prepare()
        self.snapshots_dir.mkdir(exist_ok=True, mode=0o700)
        self.db = Database(self.state_dir / "runner.db")
        key_file = self.state_dir / "audit-key"
        if not key_file.exists():
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        self.audit_key = key_file.read_text().strip().encode()
        if self.network is not None:
            await self.network.start()
        await self._recover()
        if self.network is not None:
            self.network.busy = lambda: self._inflight > 0
            self.network.refill()
        self._reaper = asyncio.create_task(self._reap_loop())

    async def stop(self) -> None:
        """Leave sandboxes running: a restarted runner re-adopts them (warm ones go)."""
        if self._warm_task is not None:
            self._warm_task.cancel()
            with contextlib.suppress(BaseException):
                await self._warm_task
        for pool in self._warm.values():
            for w in pool:
                await self._discard_warm(w)
        self._warm.clear()
        if self.network is not None:
            await self.network.stop()
        if self._reaper:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for task in list(self._bg):
            task.cancel()
        if self.db:
            self.db.close()

    @property
    def _db(self) -> Database:
        assert self.db is not None, "runner not started"
        return self.db

    async def _recover(self) -> None:
        """Re-adopt live sandboxes, destroy broken or half-made ones, sweep orphans."""
        known = {r["id"]: r for r in self._db.all("SELECT * FROM sandboxes")}
        live = set(await self.backend.list_containers())
        for sid, row in known.items():
            state = await self.backend.state(sid) if sid in live else None
            mounted = os.path.ismount(self.backend.bundle(sid) / "rootfs")
            ok = (
                row["status"] in ("running", "hibernated")
                and mounted
                and (
                    (row["status"] == "running" and state == "running")
                    or (row["status"] == "hibernated" and state == "paused")
                )
            )
            if ok and self.network is not None:
                ok = await self.network.adopt(sid, row["extra"].get("network"))
            if ok:
                log.info("re-adopted sandbox %s", sid)
            else:
                log.warning(
                    "destroying sandbox %s left %s by a previous runner", sid, row["status"]
                )
                await self._destroy_row(row, reason="runner-restart")
        for sid in live - set(known):
            log.warning("removing orphan container %s", sid)
            await self.backend.destroy(sid)
        for d in self.backend.sandboxes_dir.iterdir():
            if d.name not in known:
                await self.backend.destroy(d.name)
        if self.network is not None:
            await self.network.sweep(
                set(known) & set(r["id"] for r in self._db.all("SELECT id FROM sandboxes"))
            )
        self._gc_snapshots()

    # ---- helpers -----------------------------------------------------------
    def _lock(self, sid: str) -> asyncio.Lock:
        return self._locks.setdefault(sid, asyncio.Lock())

    def _row(self, sid: str) -> dict[str, Any]:
        row = self._db.get("sandboxes", sid)
        if row is None or row["status"] in ("creating", "destroying"):
            raise ApiError(404, f"sandbox {sid} not found")
        return row

    def _running(self, sid: str, action: str) -> dict[str, Any]:
        row = self._row(sid)
        if row["status"] != "running":
            raise ApiError(
                409,
                f"sandbox {sid} is {row['status']}; {action} needs it running"
                + (" (call resume first)" if row["status"] == "hibernated" else ""),
            )
        return row

    @staticmethod
    def record(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row["id"],
            "status": row["status"],
            "image": row["image"],
            "vcpus": row["vcpus"],
            "mem_mib": row["mem_mib"],
            "disk_mib": row["disk_mib"],
            "create_ms": row["create_ms"],
            "created_at": row["created_at"],
            "timeout": row["timeout"],
            "region": "local",
            "expires_at": now_iso(row["deadline"]) if row["deadline"] else None,
        }

    def _billed_ms(self, row: dict[str, Any], at: float | None = None) -> int:
        at = time.time() if at is None else at
        extra = int((at - row["running_since"]) * 1000) if row["running_since"] else 0
        return int(row["accrued_ms"]) + max(0, extra)

    def audit(self, sid: str, event: str, data: dict[str, Any]) -> None:
        last = self._db.execute(
            "SELECT seq, hmac FROM audit WHERE sandbox_id=? ORDER BY seq DESC LIMIT 1", (sid,)
        ).fetchone()
        seq = 0 if last is None else last["seq"] + 1
        fields = {"seq": seq, "ts": now_iso(), "sandbox_id": sid, "event": event, "data": data}
        mac = audit_hmac(self.audit_key, "" if last is None else last["hmac"], fields)
        self._db.execute(
            "INSERT INTO audit (sandbox_id, seq, ts, event, data, hmac) VALUES (?,?,?,?,?,?)",
            (sid, seq, fields["ts"], event, json.dumps(data), mac),
        )

    def _redact(self, row: dict[str, Any], text: str) -> str:
        for secret in row["extra"].get("secrets") or []:
            if secret:
                text = text.replace(secret, "[redacted]")
        return text

    # ---- create ------------------------------------------------------------
    def _validate_resources(self, body: dict[str, Any], base: dict[str, Any]) -> dict[str, int]:
        lim = self.config.limits
        return {
            "vcpus": _int_field(body, "vcpus", 1, lim.max_vcpus, base["vcpus"]),
            "mem_mib": _int_field(
                body, "mem_mib", lim.min_mem_mib, lim.max_mem_mib, base["mem_mib"]
            ),
            "disk_mib": _int_field(
                body, "disk_mib", lim.min_disk_mib, lim.max_disk_mib, base["disk_mib"]
            ),
            "timeout": _int_field(body, "timeout", 0, lim.max_timeout, base["timeout"]),
        }

    def _check_capacity(self, mem_mib: int, count: int = 1) -> None:
        lim = self.config.limits
        rows = self._db.all("SELECT mem_mib FROM sandboxes")
        if len(rows) + self._creating + count > lim.max_sandboxes:
            raise ApiError(
                429,
                f"capacity reached: at most {lim.max_sandboxes} sandboxes "
                "(destroy some, or raise limits.max_sandboxes)",
            )
        cap = lim.max_total_mem_mib or 4 * (
            os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20
        )
        used = sum(r["mem_mib"] for r in rows)
        if used + mem_mib * count > cap:
            raise ApiError(
                429, f"capacity reached: {used} MiB of {cap} MiB of sandbox memory in use"
            )

    def _defaults(self) -> dict[str, Any]:
        c = self.config
        return {
            "vcpus": c.default_vcpus,
            "mem_mib": c.default_mem_mib,
            "disk_mib": c.default_disk_mib,
            "timeout": 300,
        }

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        image_ref = body.get("image") or "node:22-slim"
        if not isinstance(image_ref, str) or len(image_ref) > 512:
            raise ApiError(400, "image must be a string naming an image")
        res = self._validate_resources(body, self._defaults())
        net = await self._network_policy(body)
        credentials = self._credentials(body)
        self._check_capacity(res["mem_mib"])
        self._creating += 1
        try:
            try:
                image = await self.images.ensure(image_ref)
            except Exception as exc:
                status = getattr(exc, "status", None)
                if status is None:
                    raise
                raise ApiError(int(status), str(exc)) from None
            # Creates with the default resources and no credentials can take a sandbox
            # started ahead of time for the same image (see _fill_warm).
            base = {k: v for k, v in self._defaults().items() if k != "timeout"}
            eligible = credentials is None and all(res[k] == v for k, v in base.items())
            warm_key = (image_ref, image.digest) if eligible else None
            record = await self._launch(
                image=image_ref,
                image_digest=image.digest,
                lowerdirs=list(image.layers),
                env=list(image.env),
                workdir=image.workdir or "/",
                res=res,
                net=net,
                credentials=credentials,
                event=("sandbox.created", {"image": image_ref, "digest": image.digest}),
                warm_key=warm_key,
            )
            self._background(self._touch_image, image_ref, self.images_in_use())
            if warm_key is not None:
                self._schedule_warm(warm_key, image)
            return record
        finally:
            self._creating -= 1

    def _background(self, fn: Any, *args: Any) -> None:
        """Run a blocking, best-effort chore in a thread without holding up the request."""
        task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    def images_in_use(self) -> set[str]:
        rows = self._db.all("SELECT image_digest FROM sandboxes")
        rows += self._db.all("SELECT image_digest FROM snapshots")
        warm = {key[1] for key in self._warm}
        return {r["image_digest"] for r in rows if r["image_digest"]} | warm

    # ---- warm sandboxes ------------------------------------------------------
    # Sandboxes of the most recently used images, started ahead of time with the
    # default resources and an open network that nothing uses yet: a create that fits
    # only has to write its network policy. They are not in the database until
    # claimed; a restarted runner removes them as orphans; stop() destroys them.
    @contextlib.contextmanager
    def activity(self) -> Iterator[None]:
        """Wrap each API request: warm pools refill only when no request is running."""
        self._inflight += 1
        try:
            yield
        finally:
            self._inflight -= 1
            self._quiet_after = time.monotonic() + 0.3
            if self.network is not None:
                self.network.hold_refill(self._quiet_after)

    async def _wait_quiet(self) -> None:
        while self._inflight or time.monotonic() < self._quiet_after:
            await asyncio.sleep(0.05)

    def _schedule_warm(self, key: tuple[Any, ...], image: Any) -> None:
        size = self.config.limits.warm_sandboxes
        if size <= 0:
            return
        self._warm.setdefault(key, [])
        self._warm_images[key] = image
        # keep pools for the two most recently used images only
        for old in [k for k in self._warm if k != key][: max(0, len(self._warm) - 2)]:
            for w in self._warm.pop(old):
                self._background_async(self._discard_warm(w))
            self._warm_images.pop(old, None)
        if self._warm_task is None or self._warm_task.done():
            self._warm_task = asyncio.ensure_future(self._fill_warm())

    async def _fill_warm(self) -> None:
        size = self.config.limits.warm_sandboxes
        while True:
            key = next((k for k, v in self._warm.items() if len(v) < size), None)
            if key is None:
                return
            await self._wait_quiet()
            image = self._warm_images.get(key)
            if image is None:  # its image fell out of use while we waited
                continue
            sid = (self.network.reserve_sid() if self.network else None) or (
                "sb-" + secrets.token_hex(8)
            )
            extra: dict[str, Any] = {}
            try:
                env = await self._start_new(
                    sid,
                    list(image.layers),
                    list(image.env),
                    image.workdir or "/",
                    self._defaults(),
                    None,
                    None,
                    extra,
                )
            except BaseException as exc:
                await self._discard_warm({"sid": sid, "info": extra.get("network")})
                if isinstance(exc, asyncio.CancelledError):
                    raise
                log.warning("could not start a warm sandbox: %s", exc)
                return
            info = extra.get("network")
            if key not in self._warm:  # its image fell out of use meanwhile
                await self._discard_warm({"sid": sid, "info": info})
                continue
            self._warm[key].append({"sid": sid, "info": info, "env": env})

    async def _discard_warm(self, warm: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            await self.backend.destroy(warm["sid"])
        if self.network is not None:
            with contextlib.suppress(Exception):
                await self.network.teardown(warm["sid"], warm.get("info"))

    def _background_async(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    def _touch_image(self, ref: str, in_use: set[str]) -> None:
        """Record the use (for ``image ls`` and LRU eviction), then evict if over budget."""
        with contextlib.suppress(Exception):
            self.images.touch(ref)
        with contextlib.suppress(Exception):
            self.images.evict(in_use=in_use)

    async def _start_new(
        self,
        sid: str,
        lowerdirs: list[Any],
        env: list[str],
        workdir: str,
        res: dict[str, int],
        net: Any,
        credentials: dict[str, Any] | None,
        extra: dict[str, Any],
    ) -> list[str]:
        """Disk, overlay and network (in parallel), then the container; returns its env."""
        spec = SandboxSpec(
            id=sid,
            lowerdirs=[Path(p) for p in lowerdirs],
            env=env,
            workdir=workdir,
            vcpus=res["vcpus"],
            mem_mib=res["mem_mib"],
            disk_mib=res["disk_mib"],
        )
        # Disk and overlay are made while the network namespace is set up.
        steps: list[Any] = [self.backend.prepare_fs(spec)]
        if self.network is not None:
            steps.append(self.network.setup(sid, net, credentials))
        results = await asyncio.gather(*steps, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        if self.network is not None:
            info = results[1]
            extra["network"] = info
            extra["secrets"] = info.get("secrets", [])
            env = env + list(info.get("env", []))
            spec = dataclasses.replace(
                spec, env=env, netns=info.get("netns"), dns=info.get("gateway")
            )
        await self.backend.start(spec)
        return env

    async def _launch(
        self,
        *,
        image: str,
        image_digest: str,
        lowerdirs: list[Any],
        env: list[str],
        workdir: str,
        res: dict[str, int],
        net: Any,
        credentials: dict[str, Any] | None,
        event: tuple[str, dict[str, Any]],
        warm_key: tuple[Any, ...] | None = None,
    ) -> dict[str, Any]:
        started = time.monotonic()
        self._quiet_after = started + 0.3
        pool = self._warm.get(warm_key) if warm_key is not None else None
        warm = pool.pop(0) if pool else None
        if warm is not None:
            sid = warm["sid"]
        else:
            reserved = self.network.reserve_sid() if self.network is not None else None
            sid = reserved or "sb-" + secrets.token_hex(8)
        now = time.time()
        extra: dict[str, Any] = {}
        row = {
            "id": sid,
            "status": "creating",
            "image": image,
            "image_digest": image_digest,
            "vcpus": res["vcpus"],
            "mem_mib": res["mem_mib"],
            "disk_mib": res["disk_mib"],
            "timeout": res["timeout"],
            "deadline": now + res["timeout"] if res["timeout"] else None,
            "created_at": now_iso(now),
            "created_ts": now,
            "create_ms": 0,
            "accrued_ms": 0,
            "running_since": None,
            "lowerdirs": [str(p) for p in lowerdirs],
            "env": env,
            "workdir": workdir,
            "extra": extra,
        }
        self._db.insert("sandboxes", row)
        try:
            if warm is not None:
                env = list(warm["env"])
                if self.network is not None:
                    # started ahead of time with an open, unused network: set its policy
                    extra["network"] = await self.network.set_policy(sid, net)
                    extra["secrets"] = []
            else:
                env = await self._start_new(
                    sid, lowerdirs, env, workdir, res, net, credentials, extra
                )
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await self.backend.destroy(sid)
            if self.network is not None:
                with contextlib.suppress(Exception):
                    await self.network.teardown(sid, extra.get("network"))
            self._db.delete("sandboxes", sid)
            self._db.execute("DELETE FROM audit WHERE sandbox_id=?", (sid,))
            if isinstance(exc, BackendError):
                log.error("create failed: %s", exc)
                raise ApiError(500, f"could not start the sandbox: {exc}") from None
            raise
        create_ms = int((time.monotonic() - started) * 1000)
        self._db.update(
            "sandboxes",
            sid,
            {
                "status": "running",
                "create_ms": create_ms,
                "running_since": time.time(),
                "env": env,
                "extra": extra,
            },
        )
        self.audit(
            sid,
            event[0],
            {
                **event[1],
                "vcpus": res["vcpus"],
                "mem_mib": res["mem_mib"],
                "disk_mib": res["disk_mib"],
                "timeout": res["timeout"],
            },
        )
        return self.record(self._row(sid))

    async def _network_policy(self, body: dict[str, Any]) -> Any:
        if self.network is None:
            if body.get("network") or body.get("network_profile"):
                raise ApiError(501, "network policies need the networking backend")
            return None
        try:
            return self.network.policy_from_request(body)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None

    def _credentials(self, body: dict[str, Any]) -> dict[str, Any] | None:
        creds = body.get("credentials")
        if creds is None:
            return None
        if not isinstance(creds, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in creds.items()
        ):
            raise ApiError(400, "credentials must be an object of string to string")
        if not creds:
            return None
        if self.network is None:
            raise ApiError(501, "credentials need the networking backend")
        try:
            return dict(self.network.check_credentials(creds))
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None

    # ---- read --------------------------------------------------------------
    def get(self, sid: str) -> dict[str, Any]:
        return self.record(self._row(sid))

    def list(self) -> list[dict[str, Any]]:
        rows = self._db.all(
            "SELECT * FROM sandboxes WHERE status IN ('running','hibernated') ORDER BY created_ts"
        )
        return [self.record(r) for r in rows]

    def history(self) -> list[dict[str, Any]]:
        rows = self._db.all("SELECT * FROM history ORDER BY destroyed_ts")
        keys = (
            "id",
            "image",
            "vcpus",
            "mem_mib",
            "create_ms",
            "created_at",
            "destroyed_at",
            "uptime_ms",
            "cpu_ms",
            "mem_peak_bytes",
            "cost_cents",
        )
        return [{k: r[k] for k in keys} for r in rows]

    def usage(self) -> dict[str, Any]:
        prices = self.config.prices
        now = time.time()
        active = self._db.all("SELECT * FROM sandboxes WHERE status IN ('running','hibernated')")
        hist = self._db.all("SELECT * FROM history")
        active_cost = sum(
            prices.cost_cents(r["vcpus"], r["mem_mib"], self._billed_ms(r, now)) for r in active
        )
        hist_cost = sum(r["cost_cents"] for r in hist)
        billed = [(r["vcpus"], r["mem_mib"], self._billed_ms(r, now)) for r in active] + [
            (r["vcpus"], r["mem_mib"], r["billed_ms"]) for r in hist
        ]
        return {
            "active_sandboxes": len(active),
            "history_sandboxes": len(hist),
            "active_cost_cents": round(active_cost, 6),
            "history_cost_cents": round(hist_cost, 6),
            "total_cost_cents": round(active_cost + hist_cost, 6),
            "cpu_seconds": round(sum(v * ms for v, _, ms in billed) / 1000, 3),
            "mem_seconds": round(sum(m / 1024 * ms for _, m, ms in billed) / 1000, 3),
            "as_of": now_iso(now),
        }

    # ---- timers and destroy ------------------------------------------------
    def set_timeout(self, sid: str, body: dict[str, Any]) -> dict[str, Any]:
        self._row(sid)
        if "timeout" not in body:
            raise ApiError(400, 'body must be {"timeout": seconds}')
        t = _int_field(body, "timeout", 0, self.config.limits.max_timeout, 0)
        deadline = time.time() + t if t else None
        self._db.update("sandboxes", sid, {"timeout": t, "deadline": deadline})
        self.audit(sid, "timeout.set", {"timeout": t})
        return self.record(self._row(sid))

    async def destroy(self, sid: str, reason: str = "api") -> dict[str, Any]:
        async with self._lock(sid):
            row = self._row(sid)
            return await self._destroy_row(row, reason)

    async def _destroy_row(self, row: dict[str, Any], reason: str) -> dict[str, Any]:
        sid = row["id"]
        self._quiet_after = time.monotonic() + 0.3
        self._db.update("sandboxes", sid, {"status": "destroying"})
        steps: list[Any] = [self.backend.destroy(sid)]
        if self.network is not None:
            steps.append(self.network.teardown(sid, row["extra"].get("network")))
        results = await asyncio.gather(*steps, return_exceptions=True)
        if isinstance(results[0], BaseException):
            raise results[0]
        if len(results) > 1 and isinstance(results[1], BaseException):
            log.warning("network teardown of %s failed: %s", sid, results[1])
        usage = results[0]
        now = time.time()
        uptime = int((now - row["created_ts"]) * 1000)
        billed = self._billed_ms(row, now)
        cost = self.config.prices.cost_cents(row["vcpus"], row["mem_mib"], billed)
        result = {
            "status": "destroyed",
            "cpu_ms": usage.cpu_ms,
            "mem_peak_bytes": usage.mem_peak_bytes,
            "uptime_ms": uptime,
            "cost_cents": cost,
        }
        if row["status"] != "creating":
            self.audit(sid, "sandbox.destroyed", {**result, "reason": reason})
            self._db.insert(
                "history",
                {
                    "id": sid,
                    "image": row["image"],
                    "vcpus": row["vcpus"],
                    "mem_mib": row["mem_mib"],
                    "create_ms": row["create_ms"],
                    "created_at": row["created_at"],
                    "destroyed_at": now_iso(now),
                    "destroyed_ts": now,
                    "uptime_ms": uptime,
                    "billed_ms": billed,
                    "cpu_ms": usage.cpu_ms,
                    "mem_peak_bytes": usage.mem_peak_bytes,
                    "cost_cents": cost,
                },
            )
        self._db.delete("sandboxes", sid)
        self._locks.pop(sid, None)
        self._gc_snapshots()
        return result

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                now = time.time()
                due = self._db.all(
                    "SELECT id FROM sandboxes WHERE deadline IS NOT NULL "
                    "AND deadline <= ? AND status IN ('running','hibernated')",
                    (now,),
                )
                for r in due:
                    with contextlib.suppress(ApiError):
                        await self.destroy(r["id"], reason="timeout")
                cutoff = now - self.config.audit_retention_days * 86400
                self._db.execute(
                    "DELETE FROM audit WHERE sandbox_id IN (SELECT id FROM history "
                    "WHERE destroyed_ts < ?)",
                    (cutoff,),
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reaper failed")

    # ---- exec and files ----------------------------------------------------
    async def exec(self, sid: str, body: dict[str, Any]) -> dict[str, Any]:
        command = body.get("command")
        if not isinstance(command, str) or not command:
            raise ApiError(400, "command must be a non-empty string")
        if "\x00" in command:
            raise ApiError(400, "command contains a NUL byte")
        if len(command.encode()) > MAX_COMMAND_BYTES:
            raise ApiError(
                413,
                f"command is longer than {MAX_COMMAND_BYTES} bytes (the kernel's limit for one "
                "argument); upload a script with the files API and run that",
            )
        timeout = body.get("timeout", 30)
        if timeout is None:
            timeout = 30
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not (0 < timeout <= self.config.limits.max_exec_timeout)
        ):
            raise ApiError(
                400,
                f"timeout must be a number of seconds in (0, "
                f"{self.config.limits.max_exec_timeout}], got {json.dumps(timeout)}",
            )
        row = self._running(sid, "exec")
        self.audit(
            sid, "exec.start", {"command": self._redact(row, command)[:1000], "timeout": timeout}
        )
        try:
            out = await self.backend.exec(sid, command, float(timeout), cwd=row["workdir"])
        except BackendError as exc:
            row = self._row(sid)
            raise ApiError(409, f"sandbox {sid} cannot run commands: {exc}") from None
        self.audit(
            sid,
            "exec.exit",
            {
                "exit_code": out.exit_code,
                "duration_ms": out.duration_ms,
                "timed_out": out.timed_out,
                "stdout_bytes": len(out.stdout),
                "stderr_bytes": len(out.stderr),
            },
        )
        return {"exit_code": out.exit_code, "stdout": out.stdout, "stderr": out.stderr}

    async def upload(
        self, sid: str, path: str, chunks: AsyncIterator[bytes], size_hint: int | None = None
    ) -> dict[str, Any]:
        row = self._running(sid, "file upload")
        if size_hint is not None and size_hint > row["disk_mib"] * 2**20:
            raise ApiError(
                413, f"{size_hint} bytes do not fit the sandbox's disk (disk_mib={row['disk_mib']})"
            )
        fs = self.backend.fs(sid)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=8)

        def pull() -> Iterator[bytes]:
            while True:
                item = asyncio.run_coroutine_threadsafe(queue.get(), loop).result()
                if item is None:
                    return
                yield item

        writer = asyncio.ensure_future(asyncio.to_thread(fs.write_chunks, path, pull()))

        async def feed(item: bytes | None) -> bool:
            """Hand one chunk to the writer; False once the writer has stopped."""
            put = asyncio.ensure_future(queue.put(item))
            await asyncio.wait({put, writer}, return_when=asyncio.FIRST_COMPLETED)
            if not put.done():
                put.cancel()
                return False
            return True

        try:
            async for chunk in chunks:
                if not await feed(chunk):
                    break
        finally:
            if not writer.done():
                await feed(None)
        try:
            size = await writer
        except FileAccessError as exc:
            raise ApiError(exc.status, str(exc)) from None
        self.audit(sid, "file.write", {"path": path, "bytes": size})
        return {"path": path, "size": size}

    def download(self, sid: str, path: str) -> tuple[AsyncIterator[bytes], int]:
        self._running(sid, "file download")
        try:
            fd, size = self.backend.fs(sid).open_read(path)
        except FileAccessError as exc:
            raise ApiError(exc.status, str(exc)) from None
        self.audit(sid, "file.read", {"path": path, "bytes": size})
        return aiter_fd(fd), size

    def listdir(self, sid: str, path: str) -> dict[str, Any]:
        self._running(sid, "file listing")
        try:
            return {"entries": self.backend.fs(sid).listdir(path)}
        except FileAccessError as exc:
            raise ApiError(exc.status, str(exc)) from None

    # ---- hibernate ---------------------------------------------------------
    async def hibernate(self, sid: str) -> dict[str, Any]:
        async with self._lock(sid):
            row = self._row(sid)
            if row["status"] == "hibernated":
                return self.record(row)
            await self.backend.freeze(sid)
            self._db.update(
                "sandboxes",
                sid,
                {"status": "hibernated", "running_since": None, "accrued_ms": self._billed_ms(row)},
            )
            self.audit(sid, "sandbox.hibernated", {})
            return self.record(self._row(sid))

    async def resume(self, sid: str) -> dict[str, Any]:
        async with self._lock(sid):
            row = self._row(sid)
            if row["status"] == "running":
                return self.record(row)
            await self.backend.thaw(sid)
            self._db.update("sandboxes", sid, {"status": "running", "running_since": time.time()})
            self.audit(sid, "sandbox.resumed", {})
            return self.record(self._row(sid))

    # ---- snapshots and forks -----------------------------------------------
    async def _capture(self, sid: str, hidden: bool) -> dict[str, Any]:
        """Freeze, copy the sandbox's writable layer into a new snapshot layer, thaw."""
        row = self._running(sid, "snapshot")
        snap_id = "snap-" + secrets.token_hex(8)
        dest = self.snapshots_dir / snap_id
        tmp = self.snapshots_dir / f".{snap_id}.tmp"
        await self.backend.freeze(sid)
        try:
            await run(
                "cp", "-a", "--reflink=auto", f"{self.backend.upper(sid)}/.", tmp, timeout=3600
            )
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            await self.backend.thaw(sid)
        tmp.rename(dest)
        size = await asyncio.to_thread(_dir_size, dest)
        snap = {
            "id": snap_id,
            "run_id": sid,
            "size_bytes": size,
            "created_at": now_iso(),
            "image": row["image"],
            "image_digest": row["image_digest"],
            "vcpus": row["vcpus"],
            "mem_mib": row["mem_mib"],
            "disk_mib": row["disk_mib"],
            "lowerdirs": [str(dest), *row["lowerdirs"]],
            "env": row["env"],
            "workdir": row["workdir"],
            "deleted": 1 if hidden else 0,
        }
        self._db.insert("snapshots", snap)
        return snap

    @staticmethod
    def snapshot_record(snap: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": snap["id"],
            "snapshot_id": snap["id"],
            "run_id": snap["run_id"],
            "size_bytes": snap["size_bytes"],
            "created_at": snap["created_at"],
            "captures": list(RuncBackend.captures),
        }

    async def snapshot(self, sid: str) -> dict[str, Any]:
        async with self._lock(sid):
            snap = await self._capture(sid, hidden=False)
        self.audit(
            sid,
            "sandbox.snapshotted",
            {"snapshot_id": snap["id"], "size_bytes": snap["size_bytes"]},
        )
        return self.snapshot_record(snap)

    def list_snapshots(self) -> dict[str, Any]:
        rows = self._db.all("SELECT * FROM snapshots WHERE deleted=0 ORDER BY created_at")
        return {"snapshots": [self.snapshot_record(r) for r in rows]}

    def delete_snapshot(self, snap_id: str) -> dict[str, Any]:
        snap = self._db.get("snapshots", snap_id)
        if snap is None or snap["deleted"]:
            raise ApiError(404, f"snapshot {snap_id} not found")
        self._db.update("snapshots", snap_id, {"deleted": 1})
        self._gc_snapshots()
        return {"id": snap_id, "deleted": True}

    def _gc_snapshots(self) -> None:
        """Free deleted snapshot layers that no sandbox or live snapshot stacks on."""
        in_use: set[str] = set()
        for r in self._db.all("SELECT lowerdirs FROM sandboxes"):
            in_use.update(r["lowerdirs"])
        for r in self._db.all("SELECT lowerdirs FROM snapshots WHERE deleted=0"):
            in_use.update(r["lowerdirs"])
        for snap in self._db.all("SELECT id FROM snapshots WHERE deleted=1"):
            path = self.snapshots_dir / snap["id"]
            if str(path) not in in_use:
                shutil.rmtree(path, ignore_errors=True)
                self._db.delete("snapshots", snap["id"])

    def _restore_source(self, snap_id: Any) -> dict[str, Any]:
        if not isinstance(snap_id, str) or not snap_id:
            raise ApiError(400, "snapshot_id must be a non-empty string")
        snap = self._db.get("snapshots", snap_id)
        if snap is None or snap["deleted"]:
            raise ApiError(404, f"snapshot {snap_id} not found")
        return snap

    async def restore(self, body: dict[str, Any]) -> dict[str, Any]:
        snap = self._restore_source(body.get("snapshot_id"))
        res = self._validate_resources(body, {**snap, "timeout": 300})
        net = await self._network_policy(body)
        credentials = self._credentials(body)
        self._check_capacity(res["mem_mib"])
        new = await self._launch(
            image=snap["image"],
            image_digest=snap["image_digest"],
            lowerdirs=snap["lowerdirs"],
            env=snap["env"],
            workdir=snap["workdir"],
            res=res,
            net=net,
            credentials=credentials,
            event=("sandbox.restored", {"snapshot_id": snap["id"], "from": snap["run_id"]}),
        )
        return new

    async def fork(self, sid: str, body: dict[str, Any]) -> dict[str, Any]:
        lim = self.config.limits
        count = _int_field(body, "count", 1, lim.max_fork, 1)
        row = self._running(sid, "fork")
        self._check_capacity(row["mem_mib"], count)
        async with self._lock(sid):
            snap = await self._capture(sid, hidden=True)
        res = {k: row[k] for k in ("vcpus", "mem_mib", "disk_mib", "timeout")}
        net = row["extra"].get("network", {}).get("policy") if self.network else None
        self._creating += count
        try:
            results = await asyncio.gather(
                *[
                    self._launch(
                        image=row["image"],
                        image_digest=row["image_digest"],
                        lowerdirs=snap["lowerdirs"],
                        env=row["env"],
                        workdir=row["workdir"],
                        res=res,
                        net=net,
                        credentials=None,
                        event=("sandbox.forked", {"parent": sid}),
                    )
                    for _ in range(count)
                ],
                return_exceptions=True,
            )
        finally:
            self._creating -= count
            self._gc_snapshots()
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            for r in results:
                if isinstance(r, dict):
                    with contextlib.suppress(Exception):
                        await self.destroy(r["id"], reason="fork-failed")
            err = failed[0]
            if isinstance(err, ApiError):
                raise err
            raise ApiError(500, f"fork failed: {err}")
        forks = [r for r in results if isinstance(r, dict)]
        self.audit(sid, "sandbox.forked", {"count": count, "children": [f["id"] for f in forks]})
        return {"forks": forks}

    # ---- audit -------------------------------------------------------------
    def audit_log(self, sid: str) -> list[dict[str, Any]]:
        rows = self._db.all("SELECT * FROM audit WHERE sandbox_id=? ORDER BY seq", (sid,))
        if not rows:
            raise ApiError(404, f"sandbox {sid} not found (or its audit log has expired)")
        return [
            {
                "seq": r["seq"],
                "ts": r["ts"],
                "sandbox_id": r["sandbox_id"],
                "event": r["event"],
                "data": json.loads(r["data"]),
                "hmac": r["hmac"],
            }
            for r in rows
        ]

    def network_profiles(self) -> list[dict[str, Any]]:
        if self.network is None:
            return []
        return list(self.network.profiles())
