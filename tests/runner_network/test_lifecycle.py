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
    slots = sorted(
        p.name for p in Path("/run/isorun-net/slots").iterdir() if f" {inst} " in p.read_text()
    )
    addrs = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout.count(
        "10.232."
    )
    return {
        "netns": netns,
        "links": links,
        "slots": slots,
        "addrs": addrs,
        "elements": ruleset.count('"ir-'),
        "chains": ruleset.count("chain p_"),
        "sets": ruleset.count("set n_"),
    }


def test_many_creates_and_destroys_leak_nothing(netrunner, image):  # type: ignore[no-untyped-def]
    before = footprint(netrunner.state_dir)
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
    after = footprint(netrunner.state_dir)
    # links/netns of *other* runners on this host may come and go meanwhile: compare ours
    assert after["slots"] == before["slots"]
    assert after["elements"] == before["elements"]
    assert after["chains"] == before["chains"] and after["sets"] == before["sets"]
    assert after["addrs"] == before["addrs"]
    leftover_ns = [n for n in after["netns"] if n not in before["netns"]]  # type: ignore[union-attr]
    leftover_links = [n for n in after["links"] if n not in before["links"]]  # type: ignore[union-attr]
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
        f'[network]\nsubnet = "10.233.0.0/16"\nnameservers = []\n[network.hosts]\n{hosts}\n'
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
