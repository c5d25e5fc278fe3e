"""Orchestrator logic against the real local runner and the Anthropic stub."""

from __future__ import annotations

from isorun_claude_agents import VmAllocated, WorkClaimed, WorkCompleted, WorkFailed

from .stub import Stub

TIMED = ("bash", {"command": "date +%s%N; sleep 1.5; date +%s%N"})


def interval(stub: Stub, tool_use_id: str) -> tuple[int, int]:
    (ev,) = [e for e in stub.posted_results() if e["tool_use_id"] == tool_use_id]
    start, end = ev["content"][0]["text"].split()
    return int(start), int(end)


async def test_items_of_one_session_run_in_order_on_one_sandbox(stub: Stub, orchestrate):
    stub.add_work("s1", [TIMED])
    stub.add_work("s1", [TIMED])
    run = orchestrate()
    await run.until(2)
    assert [type(e) for e in run.finished()] == [WorkCompleted, WorkCompleted]
    a, b = run.of(VmAllocated)
    assert (a.work_id, a.reused) == ("work_1", False)
    assert (b.work_id, b.reused, b.sandbox_id) == ("work_2", True, a.sandbox_id)
    first, second = interval(stub, "sevt_1_0"), interval(stub, "sevt_2_0")
    assert first[1] <= second[0]  # strictly one after the other
    log = [(r.method, r.path) for r in stub.requests]
    assert log.index(("POST", "/v1/environments/env_test/work/work_1/stop")) < log.index(
        ("GET", "/v1/sessions/s1/events/stream"),
        log.index(("GET", "/v1/sessions/s1/events/stream")) + 1,
    )


async def test_two_sessions_run_concurrently(stub: Stub, orchestrate):
    stub.add_work("sa", [TIMED])
    stub.add_work("sb", [TIMED])
    run = orchestrate()
    await run.until(2)
    assert all(isinstance(e, WorkCompleted) for e in run.finished())
    a, b = run.of(VmAllocated)
    assert a.sandbox_id != b.sandbox_id
    ia, ib = interval(stub, "sevt_1_0"), interval(stub, "sevt_2_0")
    assert ia[0] < ib[1] and ib[0] < ia[1], (ia, ib)  # the two commands overlapped


async def test_metadata_image_and_bring_your_own_sandbox(
    stub: Stub, orchestrate, aclient, test_image
):
    byo = await aclient.create(test_image, timeout=600)
    try:
        await byo.exec("mkdir -p /mnt/session && echo mine > /mnt/session/owner", check=True)
        stub.add_session("s_img", {"isorun.image": test_image})
        stub.add_session("s_byo", {"isorun.sandbox_id": byo.id})
        stub.add_session("s_gone", {"isorun.sandbox_id": "run_does_not_exist"})
        stub.add_work("s_img", [("bash", {"command": "true"})])
        stub.add_work("s_byo", [("bash", {"command": "cat owner"})])
        stub.add_work("s_gone", [("bash", {"command": "true"})])
        # the default image does not exist: only the metadata override can boot s_img
        run = orchestrate(image="no-such-image:0")
        await run.until(3)
        by_work = {e.work_id: e for e in run.finished()}
        assert isinstance(by_work["work_1"], WorkCompleted), by_work
        assert isinstance(by_work["work_2"], WorkCompleted), by_work
        assert isinstance(by_work["work_3"], WorkFailed)
        assert "run_does_not_exist" in by_work["work_3"].error
        assert ("work_3", {"force": True}) in stub.stops()
        alloc = {e.work_id: e for e in run.of(VmAllocated)}
        assert alloc["work_2"].sandbox_id == byo.id and "work_3" not in alloc
        (res,) = stub.posted_results("s_byo")
        assert res["content"][0]["text"] == "mine"
        await run.close()
        assert await aclient.get(alloc["work_1"].sandbox_id) is None  # ours: destroyed
        assert await aclient.get(byo.id) is not None  # bring-your-own: left alone
        events = [e.event for e in await byo.audit_log()]
        assert not [e for e in events if "timeout" in e], events  # and never re-timed
    finally:
        await byo.destroy()


async def test_vanished_bound_sandbox_is_replaced(stub: Stub, orchestrate, aclient):
    stub.add_work("s1", [("bash", {"command": "echo one"})])
    run = orchestrate()
    await run.until(1)
    (first,) = run.of(VmAllocated)
    await (await aclient.get(first.sandbox_id)).destroy()
    stub.add_work("s1", [("bash", {"command": "echo two"})])
    await run.until(2)
    assert isinstance(run.finished()[1], WorkCompleted)
    second = run.of(VmAllocated)[1]
    assert second.reused is False and second.sandbox_id != first.sandbox_id


async def test_allocation_failure_stops_the_item(stub: Stub, orchestrate):
    stub.add_work("s1", [("bash", {"command": "true"})])
    run = orchestrate(image="no-such-image:0")
    await run.until(1)
    assert [type(e) for e in run.events] == [WorkClaimed, WorkFailed]
    assert "allocation failed" in run.events[1].error
    assert stub.stops() == [("work_1", {"force": True})]
    assert not stub.calls("GET", "/events/stream")  # no worker ran


async def test_stop_waits_for_the_item_in_flight(stub: Stub, orchestrate):
    stub.add_work("s1", [("bash", {"command": "sleep 2; echo done"})])
    run = orchestrate()
    while not run.of(VmAllocated):
        await __import__("asyncio").sleep(0.1)
    await run.close()  # stop requested while the item runs
    assert [type(e) for e in run.finished()] == [WorkCompleted]
    assert stub.posted_results("s1")[0]["content"][0]["text"] == "done"
