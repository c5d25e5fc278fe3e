"""Snapshots, forks and hibernation (the container backend keeps files, not processes)."""

import isorun

with isorun.Isorun() as client, client.create("python:3.12-slim") as sb:
    sb.write_file("/root/model.txt", "v1\n")

    # Snapshot, change the original, restore the snapshot into a new sandbox.
    snap = sb.snapshot()
    sb.write_file("/root/model.txt", "v2\n")
    with client.restore(snap.id) as restored:
        print(restored.read_file("/root/model.txt").strip())  # v1
    print([s.id for s in client.list_snapshots()].count(snap.id))  # 1
    client.delete_snapshot(snap.id)

    # Fork: independent copies of the current filesystem, each with its own id.
    children = sb.fork(count=3)
    try:
        for i, child in enumerate(children):
            child.exec(f"echo {i} > /root/who.txt", check=True)
        print([c.read_file("/root/who.txt").strip() for c in children])  # ['0', '1', '2']
        print(sb.read_file("/root/model.txt").strip())  # v2: the parent is unchanged
    finally:
        for child in children:
            child.destroy()

    # Hibernate: pause and stop paying for compute; resume picks up where it was.
    sb.hibernate()
    print(sb.info().status)  # hibernated
    sb.resume()
    print(sb.exec("cat /root/model.txt").stdout.strip())  # v2
