"""What clients wrote to the emulators, kept in SQLite beside the world.

Writes survive a server restart (crash tests restart the sandbox), appear in later reads,
and can be counted by tests ("exactly one purchase order per approval"). Idempotency keys
are remembered with a hash of the request they came with and the response that was sent.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

_SCHEMA = """
create table if not exists written_records (
    source text not null,
    entity text not null,
    record_id text not null,
    payload text not null,
    created_at text not null,
    updated_at text not null,
    primary key (source, entity, record_id)
);
create table if not exists idempotency_keys (
    source text not null,
    idem_key text not null,
    request_hash text not null,
    status integer not null,
    response text not null,
    created_at text not null,
    primary key (source, idem_key)
);
create table if not exists sequences (
    name text primary key,
    value integer not null
);
"""


@dataclass(frozen=True)
class WrittenRecord:
    record_id: str
    payload: dict
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class RememberedResponse:
    request_hash: str
    status: int
    body: str


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


class WriteStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock = threading.Lock()
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.execute("pragma journal_mode=wal")
        self.conn.execute("pragma synchronous=full")
        self.conn.executescript(_SCHEMA)

    def next_id(self, name: str, start: int) -> int:
        """A monotonically increasing id for records created by clients."""
        with self.lock:
            row = self.conn.execute("select value from sequences where name = ?", (name,)).fetchone()
            value = (row[0] if row else start) + 1
            self.conn.execute(
                "insert into sequences(name, value) values (?, ?) on conflict(name) do update set value = excluded.value",
                (name, value),
            )
            return value

    def put(self, source: str, entity: str, record_id: str, payload: dict, at: datetime) -> None:
        stamp = at.isoformat()
        with self.lock:
            self.conn.execute(
                """insert into written_records(source, entity, record_id, payload, created_at, updated_at)
                   values (?, ?, ?, ?, ?, ?)
                   on conflict(source, entity, record_id) do update set payload = excluded.payload,
                   updated_at = excluded.updated_at""",
                (source, entity, str(record_id), json.dumps(payload), stamp, stamp),
            )

    def get(self, source: str, entity: str, record_id: str) -> WrittenRecord | None:
        with self.lock:
            row = self.conn.execute(
                "select record_id, payload, created_at, updated_at from written_records where source=? and entity=? and record_id=?",
                (source, entity, str(record_id)),
            ).fetchone()
        return WrittenRecord(row[0], json.loads(row[1]), row[2], row[3]) if row else None

    def all(self, source: str, entity: str) -> list[WrittenRecord]:
        with self.lock:
            rows = self.conn.execute(
                "select record_id, payload, created_at, updated_at from written_records where source=? and entity=? order by created_at, record_id",
                (source, entity),
            ).fetchall()
        return [WrittenRecord(r[0], json.loads(r[1]), r[2], r[3]) for r in rows]

    def count(self, source: str, entity: str) -> int:
        with self.lock:
            return self.conn.execute(
                "select count(*) from written_records where source=? and entity=?", (source, entity)
            ).fetchone()[0]

    def remembered(self, source: str, key: str) -> RememberedResponse | None:
        with self.lock:
            row = self.conn.execute(
                "select request_hash, status, response from idempotency_keys where source=? and idem_key=?",
                (source, key),
            ).fetchone()
        return RememberedResponse(*row) if row else None

    def remember(self, source: str, key: str, request_hash: str, status: int, body: str, at: datetime) -> None:
        with self.lock:
            self.conn.execute(
                "insert or ignore into idempotency_keys(source, idem_key, request_hash, status, response, created_at) values (?,?,?,?,?,?)",
                (source, key, request_hash, status, body, at.isoformat()),
            )

    def close(self) -> None:
        self.conn.close()
