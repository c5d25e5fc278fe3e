"""Egress policies: validation, precedence, and the decisions the firewall and resolver make.

A policy is ``{"allow": [...], "deny": [...], "profile": name | None}``. Entries are
CIDRs or IP literals, exact hostnames, or ``*.suffix`` wildcards (which match names
under the suffix but never the apex itself).

Precedence (the most specific matching rule wins; on a tie, allow wins):

- addresses: the longest matching prefix among allow and deny CIDRs decides, so an
  explicit allow wins over a broader deny and a narrower deny carves a hole out of a
  broader allow; an address whose name was resolved through an allowed hostname rule
  counts as an allow of that single address (for the record's TTL);
- names: an exact name beats a wildcard, a longer wildcard suffix beats a shorter one;
- the default for whatever no rule matches: **deny** when the policy has any allow
  entry (an allow-list) or denies ``0.0.0.0/0``; **allow** otherwise (only denies, or
  nothing at all).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

MAX_ENTRIES = 512
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network


def _is_hostname(name: str) -> bool:
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    return all(_LABEL.match(label) for label in labels)


def normalize_entry(entry: Any) -> str:
    """One allow/deny entry, normalized; raises ValueError with a message for users."""
    if not isinstance(entry, str) or not entry.strip():
        raise ValueError(f"network entries must be non-empty strings, got {entry!r}")
    text = entry.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        pass
    if text.startswith("*."):
        if _is_hostname(text[2:]) and "." in text[2:]:
            return text
        raise ValueError(
            f"invalid wildcard {entry!r}: use *.example.com (a leading *. "
            "before a domain with at least two labels)"
        )
    if "*" in text or "/" in text or not _is_hostname(text):
        raise ValueError(
            f"invalid network entry {entry!r}: expected a CIDR (10.0.0.0/8), "
            "an IP address, a hostname (pypi.org) or a wildcard (*.example.com)"
        )
    return text


def normalize_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"network.{what} must be a list of strings")
    if len(value) > MAX_ENTRIES:
        raise ValueError(f"network.{what} has {len(value)} entries; at most {MAX_ENTRIES}")
    out: list[str] = []
    for item in value:
        norm = normalize_entry(item)
        if norm not in out:
            out.append(norm)
    return out


@dataclass(frozen=True)
class Rules:
    """A parsed allow/deny list pair."""

    allow_nets: tuple[IPNet, ...] = ()
    deny_nets: tuple[IPNet, ...] = ()
    allow_names: frozenset[str] = frozenset()
    deny_names: frozenset[str] = frozenset()
    allow_wild: tuple[str, ...] = ()  # suffixes, without "*."
    deny_wild: tuple[str, ...] = ()
    has_allow: bool = False

    @classmethod
    def parse(cls, allow: list[str], deny: list[str]) -> Rules:
        def split(entries: list[str]) -> tuple[list[IPNet], set[str], list[str]]:
            nets: list[IPNet] = []
            names: set[str] = set()
            wild: list[str] = []
            for e in entries:
                try:
                    nets.append(ipaddress.ip_network(e, strict=False))
                    continue
                except ValueError:
                    pass
                if e.startswith("*."):
                    wild.append(e[2:])
                else:
                    names.add(e)
            return nets, names, wild

        an, anames, aw = split(allow)
        dn, dnames, dw = split(deny)
        return cls(
            tuple(an),
            tuple(dn),
            frozenset(anames),
            frozenset(dnames),
            tuple(aw),
            tuple(dw),
            has_allow=bool(allow),
        )

    # ---- addresses -----------------------------------------------------------
    @property
    def default_allow(self) -> bool:
        """What happens to an address (or a name) that no rule matches."""
        if self.has_allow:
            return False
        return not any(n.prefixlen == 0 and n.version == 4 for n in self.deny_nets)

    def ip_decision(self, ip: str) -> bool | None:
        """True/False from the most specific matching CIDR rule, None when none matches."""
        addr = ipaddress.ip_address(ip)
        best: tuple[int, bool] | None = None
        for nets, verdict in ((self.allow_nets, True), (self.deny_nets, False)):
            for n in nets:
                if n.version == addr.version and addr in n:
                    key = (n.prefixlen, verdict)
                    if best is None or key > best:
                        best = key
        return None if best is None else best[1]

    def ip_allowed(self, ip: str) -> bool:
        d = self.ip_decision(ip)
        return self.default_allow if d is None else d

    def ordered_v4_rules(self) -> list[tuple[str, bool]]:
        """IPv4 CIDR rules, most specific first (allow before deny at equal length)."""
        rules = [(n, True) for n in self.allow_nets if n.version == 4]
        rules += [(n, False) for n in self.deny_nets if n.version == 4]
        rules.sort(key=lambda r: (-r[0].prefixlen, not r[1]))
        return [(str(n), v) for n, v in rules]

    # ---- names ---------------------------------------------------------------
    def name_decision(self, name: str) -> bool | None:
        """True/False from the most specific name rule, None when no name rule matches."""
        name = name.lower().rstrip(".")
        if name in self.allow_names:
            return True
        if name in self.deny_names:
            return False
        best: tuple[int, bool] | None = None
        for suffixes, verdict in ((self.allow_wild, True), (self.deny_wild, False)):
            for s in suffixes:
                if name.endswith("." + s):
                    key = (len(s), verdict)
                    if best is None or key > best:
                        best = key
        return None if best is None else best[1]

    @property
    def restricts_names(self) -> bool:
        return bool(
            self.allow_names
            or self.deny_names
            or self.allow_wild
            or self.deny_wild
            or not self.default_allow
        )


def make_policy(allow: list[str], deny: list[str], profile: str | None) -> dict[str, Any]:
    return {"allow": allow, "deny": deny, "profile": profile}


def rules_of(policy: dict[str, Any] | None) -> Rules:
    if not policy:
        return Rules()
    return Rules.parse(list(policy.get("allow") or []), list(policy.get("deny") or []))
