"""Clean teardown (many sandboxes, no leaks) and re-adoption after a runner crash."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import start_runner, stop_runner

from .conftest import probe

pytestmark = pytest.mark.runner

LEAK_N = int(os.environ.get("ISORUN_NET_LEAK_N", "200"))


def table_of(state_dir: Path) -> str:
    return "isorun_" + hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:8]


def footprint(state_dir: Path) -> dict[str, object]:
    table = table_of(state_dir)
    ruleset = subprocess.run(
        ["nft", "list", "table", "inet", table], capture_output=True, text=True
    ).stdout
    netns = (
        sorted(p.name for p in Path("/run/netns").iterdir() if p.name.startswith("isorun-sb-"))
        if Path("/run/netns").exists()
        else []
    )
    links = sorted(p.name for p in Path("/sys/class/net").iterdir() if p.name.startswith("ir-"))
    inst = table.split("_", 1)[1]
    # the sandbox id of each of our slots (claimed sandboxes and the warm pool)
    slots = sorted(
        text.split()[-1]
        for p in Path("/run/isorun-net/slots").iterdir()
        if f" {inst} " in (text := p.read_text())
    )
    # addresses on our own links only (other runners on this host may share the subnet)
    ours = {f"ir-{sid.split('-', 1)[1][:12]}" for sid in slots}
    addr_lines = subprocess.run(
        ["ip", "-4", "-o", "addr"], capture_output=True, text=True
    ).stdout.splitlines()
    addrs = sum(1 for line in addr_lines if len(line.split()) > 1 and line.split()[1] in ours)
    return {
        "netns": netns,
        "links": links,
        "slots": slots,
        "addrs": addrs,
        "elements": ruleset.count('"ir-'),
        "chains": ruleset.count("chain p_"),
        "sets": ruleset.count("set n_"),
    }


def settled_footprint(state_dir: Path) -> dict[str, object]:
    """The footprint once the warm pools have been refilled (unchanged for 1.5 s)."""
    last, same = footprint(state_dir), 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and same < 6:
        time.sleep(0.25)
        now = footprint(state_dir)
        same = same + 1 if now == last else 0
        last = now
    return last


def test_many_creates_and_destroys_leak_nothing(netrunner, image):  # type: ignore[no-untyped-def]
    with netrunner.http() as h:  # prime the warm sandboxes of this image first
        sid = h.post("/v1/runs", json={"image": image}).json()["id"]
        h.delete(f"/v1/runs/{sid}")
    before = settled_footprint(netrunner.state_dir)
    timings: list[float] = []

    def one(i: int) -> None:
        with netrunner.http() as h:
            t = time.monotonic()
            body = {"image": image, "timeout": 600}
            if i % 3 == 1:
                body["network"] = {
                    "allow": ["allowed.test", "10.9.0.0/16"],
                    "deny": ["10.9.1.0/24"],
                }
            elif i % 3 == 2:
                body["credentials"] = {"testsvc": "k"}
            r = h.post("/v1/runs", json=body)
            assert r.status_code == 200, r.text
            assert h.delete(f"/v1/runs/{r.json()['id']}").status_code == 200
            timings.append(time.monotonic() - t)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(LEAK_N)))
    after = settled_footprint(netrunner.state_dir)
    # links/netns of *other* runners on this host may come and go meanwhile: compare ours.
    # The warm pool holds the same number of prepared networks, under new ids.
    assert len(after["slots"]) == len(before["slots"])  # type: ignore[arg-type]
    assert after["elements"] == before["elements"]
    assert after["chains"] == before["chains"] and after["sets"] == before["sets"]
    assert after["addrs"] == before["addrs"]
    pooled = set(after["slots"])  # type: ignore[call-overload]
    pooled_links = {f"ir-{sid.split('-', 1)[1][:12]}" for sid in pooled}
    leftover_ns = [
        n
        for n in after["netns"]  # type: ignore[attr-defined]
        if n not in before["netns"] and n.removeprefix("isorun-") not in pooled  # type: ignore[operator]
    ]
    leftover_links = [
        n
        for n in after["links"]  # type: ignore[attr-defined]
        if n not in before["links"] and n not in pooled_links  # type: ignore[operator]
    ]
    assert not leftover_ns and not leftover_links, (leftover_ns, leftover_links)
    timings.sort()
    print(
        f"\n{LEAK_N} create+destroy: p50 {timings[len(timings) // 2] * 1000:.0f} ms, "
        f"p95 {timings[int(len(timings) * 0.95)] * 1000:.0f} ms"
    )


def test_restart_readopts_and_sweeps(tmp_path, inet, image):  # type: ignore[no-untyped-def]
    import isorun

    cfg = tmp_path / "runner.toml"
    hosts = "\n".join(f'"{k}" = "{v}"' for k, v in inet.items())
    cfg.write_text(
        f'[network]\nsubnet = "10.233.0.0/16"\nnameservers = []\nwarm_pool = 0\n'
        f"[network.hosts]\n{hosts}\n"
    )
    state = tmp_path / "state"
    env = {"ISORUN_RUNNER_CONFIG": str(cfg)}
    r = start_runner(state, extra_env=env)
    try:
        with isorun.Isorun(api_key=r.key, api_url=r.url) as c:
            keep = c.create(image, network={"allow": ["allowed.test"]}, timeout=600)
            broken = c.create(image, timeout=600)
            assert probe(keep, "allowed.test", http=True)["ok"]
        r.proc.kill()
        r.proc.wait()
        broken_if = "ir-" + broken.id.split("-", 1)[1][:12]
        subprocess.run(["ip", "link", "del", broken_if], check=True)
        r = start_runner(state, port=int(r.url.rsplit(":", 1)[1]), extra_env=env)
        with isorun.Isorun(api_key=r.key, api_url=r.url) as c:
            ids = {s.id for s in c.list()}
            assert keep.id in ids and broken.id not in ids
            sb = c.get(keep.id)
            assert probe(sb, "allowed.test", http=True)["ok"]  # DNS + rules back
            res = probe(sb, "10.240.0.3")
            assert not res["ok"] and res["secs"] < 1
            assert not Path(f"/run/netns/isorun-{broken.id}").exists()
            sb.destroy()
        fp = footprint(state)
        assert fp["slots"] == [] and fp["elements"] == 0 and fp["chains"] == 0
        assert not [n for n in fp["netns"] if keep.id in n or broken.id in n]
    finally:
        stop_runner(r)
        subprocess.run(["nft", "delete", "table", "inet", table_of(state)], check=False)


def test_warm_pool_is_used_refilled_and_cleaned_up(tmp_path, image):  # type: ignore[no-untyped-def]
    import isorun

    cfg = tmp_path / "runner.toml"
    cfg.write_text(
        "[limits]\nwarm_sandboxes = 0\n"
        '[network]\nsubnet = "10.234.0.0/16"\nnameservers = []\nwarm_pool = 2\n'
    )
    state = tmp_path / "state"
    env = {"ISORUN_RUNNER_CONFIG": str(cfg)}
    r = start_runner(state, extra_env=env)
    try:
        pool = settled_footprint(state)["slots"]
        assert len(pool) == 2  # type: ignore[arg-type]
        with isorun.Isorun(api_key=r.key, api_url=r.url) as c:
            sb = c.create(image, network={"deny": ["10.240.0.0/16"]}, timeout=600)
            assert sb.id in pool  # the create took a prepared network
            assert sb.exec("cat /sys/class/net/eth0/operstate").stdout.strip() == "up"
            after = settled_footprint(state)["slots"]
            assert len(after) == 3 and sb.id in after  # type: ignore[arg-type,operator]
            pooled_now = [s for s in after if s != sb.id]  # type: ignore[attr-defined]
            sb.destroy()
        # a crash leaves the pool behind; the next runner sweeps it and makes its own
        r.proc.kill()
        r.proc.wait()
        assert all(Path(f"/run/netns/isorun-{s}").exists() for s in pooled_now)
        r = start_runner(state, port=int(r.url.rsplit(":", 1)[1]), extra_env=env)
        fresh = settled_footprint(state)["slots"]
        assert len(fresh) == 2 and not set(fresh) & set(pooled_now)  # type: ignore[arg-type]
        assert not any(Path(f"/run/netns/isorun-{s}").exists() for s in pooled_now)
        # a clean stop removes the pool
        stop_runner(r)
        fp = footprint(state)
        assert fp["slots"] == []
        assert not any(Path(f"/run/netns/isorun-{s}").exists() for s in fresh)  # type: ignore[attr-defined]
    finally:
        if r.proc.poll() is None:
            stop_runner(r)
        subprocess.run(["nft", "delete", "table", "inet", table_of(state)], check=False)


def test_warm_sandboxes_are_claimed_with_their_own_policy(tmp_path, inet, image):  # type: ignore[no-untyped-def]
    import isorun

    cfg = tmp_path / "runner.toml"
    hosts = "\n".join(f'"{k}" = "{v}"' for k, v in inet.items())
    cfg.write_text(
        "[limits]\nwarm_sandboxes = 2\n"
        f'[network]\nsubnet = "10.235.0.0/16"\nnameservers = []\n[network.hosts]\n{hosts}\n'
    )
    state = tmp_path / "state"
    r = start_runner(state, extra_env={"ISORUN_RUNNER_CONFIG": str(cfg)})
    try:
        with isorun.Isorun(api_key=r.key, api_url=r.url) as c:
            first = c.create(image, timeout=600)  # cold: starts the warm pool for image
            first.destroy()
            settled_footprint(state)
            # with no sandbox of ours alive, the containers that run are the warm ones
            warm_ids = set(
                subprocess.run(
                    ["runc", "--root", str(state / "runc"), "list", "-q"],
                    capture_output=True,
                    text=True,
                ).stdout.split()
            )
            assert len(warm_ids) == 2
            locked = c.create(image, network_profile="locked-down", timeout=600)
            assert locked.id in warm_ids and locked.create_ms < 50
            assert locked.exec("hostname").stdout.strip() == locked.id
            assert not probe(locked, "10.240.0.2")["ok"]  # the policy of the create holds
            allowed = c.create(image, network={"allow": ["allowed.test"]}, timeout=600)
            assert allowed.id in warm_ids
            assert probe(allowed, "allowed.test", http=True)["ok"]
            assert not probe(allowed, "10.240.0.3")["ok"]
            # other resources or credentials: a sandbox of their own, not a warm one
            big = c.create(image, mem_mib=2048, timeout=600)
            assert big.id not in warm_ids and big.mem_mib == 2048
            assert len(c.list()) == 3  # warm sandboxes are not listed
            for sb in (locked, allowed, big):
                sb.destroy()
        stop_runner(r)
        out = subprocess.run(
            ["runc", "--root", str(state / "runc"), "list", "-q"], capture_output=True, text=True
        ).stdout
        assert out.strip() == ""  # a clean stop destroys the warm sandboxes
        assert footprint(state)["slots"] == []
    finally:
        if r.proc.poll() is None:
            stop_runner(r)
        subprocess.run(["nft", "delete", "table", "inet", table_of(state)], check=False)
