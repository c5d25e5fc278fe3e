"""The runner's durable state: SQLite in WAL mode, one connection, short statements."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS sandboxes (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    image TEXT NOT NULL,
    image_digest TEXT NOT NULL DEFAULT '',
    vcpus INTEGER NOT NULL,
    mem_mib INTEGER NOT NULL,
    disk_mib INTEGER NOT NULL,
    timeout INTEGER NOT NULL,
    deadline REAL,
    created_at TEXT NOT NULL,
    created_ts REAL NOT NULL,
    create_ms INTEGER NOT NULL DEFAULT 0,
    accrued_ms INTEGER NOT NULL DEFAULT 0,
    running_since REAL,
    lowerdirs TEXT NOT NULL,
    env TEXT NOT NULL,
    workdir TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS history (
    id TEXT PRIMARY KEY,
    image TEXT NOT NULL,
    vcpus INTEGER NOT NULL,
    mem_mib INTEGER NOT NULL,
    create_ms INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    destroyed_at TEXT NOT NULL,
    destroyed_ts REAL NOT NULL,
    uptime_ms INTEGER NOT NULL,
    billed_ms INTEGER NOT NULL,
    cpu_ms INTEGER NOT NULL,
    mem_peak_bytes INTEGER NOT NULL,
    cost_cents REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    image TEXT NOT NULL,
    image_digest TEXT NOT NULL DEFAULT '',
    vcpus INTEGER NOT NULL,
    mem_mib INTEGER NOT NULL,
    disk_mib INTEGER NOT NULL,
    lowerdirs TEXT NOT NULL,
    env TEXT NOT NULL,
    workdir TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS audit (
    sandbox_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts TEXT NOT NULL,
    event TEXT NOT NULL,
    data TEXT NOT NULL,
    hmac TEXT NOT NULL,
    PRIMARY KEY (sandbox_id, seq)
);
"""

JSON_COLUMNS = ("lowerdirs", "env", "extra")


class Database:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)
        path.chmod(0o600)

    def close(self) -> None:
        self.conn.close()

    @staticmethod
    def _row(row: sqlite3.Row | None) -> dict[str, Any] | None:
        if row is None:
            return None
        d = dict(row)
        for key in JSON_COLUMNS:
            if key in d and isinstance(d[key], str):
                d[key] = json.loads(d[key])
        return d

    def insert(self, table: str, values: dict[str, Any]) -> None:
        vals = {k: json.dumps(v) if k in JSON_COLUMNS else v for k, v in values.items()}
        cols = ",".join(vals)
        marks = ",".join("?" for _ in vals)
        self.conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", list(vals.values()))

    def update(self, table: str, key: str, values: dict[str, Any]) -> None:
        vals = {k: json.dumps(v) if k in JSON_COLUMNS else v for k, v in values.items()}
        sets = ",".join(f"{k}=?" for k in vals)
        self.conn.execute(f"UPDATE {table} SET {sets} WHERE id=?", [*vals.values(), key])

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        return self._row(self.conn.execute(f"SELECT * FROM {table} WHERE id=?", (key,)).fetchone())

    def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return [d for r in self.conn.execute(sql, params).fetchall() if (d := self._row(r))]

    def delete(self, table: str, key: str) -> None:
        self.conn.execute(f"DELETE FROM {table} WHERE id=?", (key,))

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)
