"""Runner speed: create, exec `true`, write+read 1 MiB, destroy, snapshot/restore, fork.

Starts its own runner (needs root and the default image), prints median and p95 of
each operation and the runner's RSS. Usage: python bench/bench_runner.py [-n 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import start_runner, stop_runner

import isorun

IMAGE = os.environ.get("ISORUN_TEST_IMAGE", "python:3.12-slim")


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def report(name: str, samples: list[float]) -> None:
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    print(
        f"{name:<34} median {statistics.median(samples):8.1f} ms   p95 {p95:8.1f} ms"
        f"   (n={len(samples)})"
    )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=30)
    args = ap.parse_args()
    n = args.n
    with tempfile.TemporaryDirectory() as tmp:
        r = start_runner(Path(tmp) / "state")
        try:
            c = isorun.Isorun(api_key=r.key, api_url=r.url)
            c.connect()
            c.create(IMAGE).destroy()  # warm the image cache
            create, destroy, sbs = [], [], []
            for _ in range(n):
                t = time.perf_counter()
                sbs.append(c.create(IMAGE))
                create.append((time.perf_counter() - t) * 1000)
            sb = sbs[0]
            exec_true = [timed(lambda: sb.exec("true")) for _ in range(n)]
            blob = os.urandom(2**20)
            files = [
                timed(lambda: (sb.write_file("/tmp/b", blob), sb.read_bytes("/tmp/b")))
                for _ in range(n)
            ]
            for s in sbs:
                t = time.perf_counter()
                s.destroy()
                destroy.append((time.perf_counter() - t) * 1000)
            idle = []
            for _ in range(min(n, 15)):
                time.sleep(0.5)  # an interactive pace: the warm pool refills meanwhile
                t = time.perf_counter()
                s = c.create(IMAGE)
                idle.append((time.perf_counter() - t) * 1000)
                s.destroy()
            report("create (cached image), end to end", create)
            report("create at an interactive pace", idle)
            report("create, server side (create_ms)", [float(s.create_ms) for s in sbs])
            report("exec `true`", exec_true)
            report("write + read 1 MiB", files)
            report("destroy", destroy)

            for label, size_mb in (("small (4 MiB) diff", 4), ("large (500 MiB) diff", 500)):
                src = c.create(IMAGE, disk_mib=4096, timeout=900)
                src.exec(f"head -c {size_mb}M /dev/urandom > /diff.bin", timeout=300, check=True)
                snaps, restores, forks = [], [], {1: [], 5: [], 10: []}
                rounds = 5 if size_mb < 100 else 2
                for _ in range(rounds):
                    t = time.perf_counter()
                    snap = src.snapshot()
                    snaps.append((time.perf_counter() - t) * 1000)
                    t = time.perf_counter()
                    restored = c.restore(snap.id)
                    restores.append((time.perf_counter() - t) * 1000)
                    restored.destroy()
                    c.delete_snapshot(snap.id)
                    for k in forks:
                        t = time.perf_counter()
                        kids = src.fork(k)
                        forks[k].append((time.perf_counter() - t) * 1000)
                        if k == 10 and size_mb >= 100:
                            disk = sum(
                                f.stat().st_blocks * 512
                                for f in (r.state_dir / "snapshots").rglob("*")
                                if f.is_file()
                            )
                            print(
                                f"  fork(10) of a {size_mb} MiB diff: snapshot layers on "
                                f"disk {disk / 2**20:.0f} MiB (shared by all 10 children)"
                            )
                        for kid in kids:
                            kid.destroy()
                report(f"snapshot, {label}", snaps)
                report(f"restore, {label}", restores)
                for k, v in forks.items():
                    report(f"fork({k}), {label}", v)
                src.destroy()
            print(f"runner RSS: {rss_mib(r.proc.pid):.1f} MiB")
            c.close()
        finally:
            stop_runner(r)


if __name__ == "__main__":
    main()
