"""The audit log's HMAC chain, shared by the runner (writing) and clients (verifying).

Each entry's ``hmac`` is ``"sha256:" + hex(HMAC-SHA256(key, prev + "\\n" + canonical))``
where ``prev`` is the previous entry's ``hmac`` ("" for the first) and
``canonical`` is the entry's five content fields as compact, key-sorted JSON.
Chaining means an edit, a drop or a reorder breaks every later HMAC.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import json
from collections.abc import Iterable, Mapping
from typing import Any

from isorun._models import AuditEntry, AuditVerification

FIELDS = ("seq", "ts", "sandbox_id", "event", "data")


def canonical_entry(entry_fields: Mapping[str, Any]) -> str:
    """The exact text the HMAC covers (extra keys such as ``hmac`` are left out)."""
    content = {name: entry_fields.get(name) for name in FIELDS}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def audit_hmac(key: bytes | str, prev_hmac: str, entry_fields: Mapping[str, Any]) -> str:
    """The ``hmac`` value of an entry that follows one whose hmac was ``prev_hmac``."""
    secret = key.encode("utf-8") if isinstance(key, str) else key
    message = (prev_hmac + "\n" + canonical_entry(entry_fields)).encode("utf-8")
    return "sha256:" + _hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify_audit_log(
    entries: Iterable[AuditEntry | Mapping[str, Any]], key: bytes | str
) -> AuditVerification:
    """Check the chain and that ``seq`` runs 0, 1, 2, ... without gaps.

    ``first_bad_seq`` is the first sequence number that cannot be trusted (for a
    dropped entry, the missing one). A log cut off at the end still verifies: the
    chain has no anchor past its last entry.
    """
    prev = ""
    for expected, raw in enumerate(entries):
        fields = raw.model_dump() if isinstance(raw, AuditEntry) else dict(raw)
        seq = fields.get("seq")
        if seq != expected:
            return AuditVerification(
                ok=False,
                first_bad_seq=expected,
                reason=f"expected seq {expected}, found {seq!r} (entry missing or reordered)",
            )
        want = audit_hmac(key, prev, fields)
        got = fields.get("hmac")
        if not isinstance(got, str) or not _hmac.compare_digest(want, got):
            return AuditVerification(
                ok=False, first_bad_seq=expected, reason=f"hmac mismatch at seq {expected}"
            )
        prev = got
    return AuditVerification(ok=True)
