"""The audit log: every action, HMAC-chained, verifiable with the runner's audit key."""

import os

import isorun

with isorun.Isorun() as client, client.create("python:3.12-slim") as sb:
    sb.exec("echo hello")
    sb.write_file("/tmp/x", "x")

    entries = sb.audit_log()
    for entry in entries:
        print(entry.seq, entry.event, entry.data)
    # 0 sandbox.created {...}, 1 exec.start {...}, 2 exec.exit {...}, 3 file.write {...}

    key = os.environ["ISORUN_AUDIT_KEY"]  # a local runner keeps it in <state_dir>/audit-key
    verdict = isorun.verify_audit_log(entries, key)
    print("intact" if verdict else f"tampered at seq {verdict.first_bad_seq}: {verdict.reason}")

    # Any edit breaks the chain from that entry on.
    forged = [
        e.model_copy(update={"data": {"command": "rm -rf /"}}) if e.seq == 1 else e for e in entries
    ]
    print(isorun.verify_audit_log(forged, key).first_bad_seq)  # 1
