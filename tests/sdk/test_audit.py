"""The audit log's HMAC chain: one implementation for writing and verifying."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from isorun import AuditEntry, verify_audit_log
from isorun._audit import audit_hmac

KEY = b"secret-key"


def chain(n: int, key: bytes | str = KEY) -> list[dict[str, Any]]:
    entries, prev = [], ""
    for seq in range(n):
        entry: dict[str, Any] = {
            "seq": seq,
            "ts": f"2026-01-01T00:00:0{seq}Z",
            "sandbox_id": "sb-1",
            "event": "exec" if seq else "create",
            "data": {"command": f"echo {seq}", "ünï": "ç"},
        }
        entry["hmac"] = prev = audit_hmac(key, prev, entry)
        entries.append(entry)
    return entries


def test_hmac_known_answer() -> None:
    fields = {"seq": 0, "ts": "t", "sandbox_id": "s", "event": "e", "data": {"b": 1, "a": "é"}}
    canonical = '{"data":{"a":"é","b":1},"event":"e","sandbox_id":"s","seq":0,"ts":"t"}'
    want = hmac.new(b"k", ("prev\n" + canonical).encode(), hashlib.sha256).hexdigest()
    assert audit_hmac(b"k", "prev", {**fields, "hmac": "ignored", "x": 1}) == "sha256:" + want
    assert audit_hmac("k", "prev", fields) == "sha256:" + want


def test_intact_chain_verifies() -> None:
    entries = chain(5)
    result = verify_audit_log(entries, KEY)
    assert result.ok and result.first_bad_seq is None and result.reason is None and result
    models = [AuditEntry.model_validate(e) for e in entries]
    assert verify_audit_log(models, KEY.decode()).ok
    assert verify_audit_log([], KEY).ok
    # a model round-trip through JSON (as read from NDJSON) still verifies
    lines = [AuditEntry.model_validate_json(json.dumps(e)) for e in entries]
    assert verify_audit_log(lines, KEY).ok


def test_edit_detected_at_the_edited_entry() -> None:
    entries = chain(5)
    entries[2]["data"] = {"command": "rm -rf /"}
    result = verify_audit_log(entries, KEY)
    assert not result.ok and result.first_bad_seq == 2 and "hmac" in (result.reason or "")


def test_drop_detected_at_the_missing_entry() -> None:
    entries = chain(5)
    del entries[2]
    result = verify_audit_log(entries, KEY)
    assert not result.ok and result.first_bad_seq == 2 and "seq" in (result.reason or "")


def test_drop_with_renumbering_detected() -> None:
    entries = chain(5)
    del entries[2]
    for i, entry in enumerate(entries):
        entry["seq"] = i
    assert verify_audit_log(entries, KEY).first_bad_seq == 2


def test_swap_detected() -> None:
    entries = chain(5)
    entries[1], entries[3] = entries[3], entries[1]
    assert verify_audit_log(entries, KEY).first_bad_seq == 1


@pytest.mark.parametrize("bad", [b"other-key", "secret-key "])
def test_wrong_key_fails_at_first_entry(bad: bytes | str) -> None:
    result = verify_audit_log(chain(3), bad)
    assert not result.ok and result.first_bad_seq == 0


def test_forged_hmac_field_rejected() -> None:
    entries = chain(3)
    entries[2]["hmac"] = "sha256:" + "0" * 64
    assert verify_audit_log(entries, KEY).first_bad_seq == 2
    entries[2].pop("hmac")
    assert verify_audit_log(entries, KEY).first_bad_seq == 2
