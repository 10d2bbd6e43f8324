"""The warehouse's raw layer: latest version of each record, its payload, quarantine, cursors.

One table per source entity, ``raw.<source>__<entity>``: the typed fields of its
:class:`~connectors.records.RecordShape`, the payload as JSON, the source's updated time and
when it was loaded. A page is committed in one transaction together with its quarantined
records and the stream's sync state (resume point or final cursor), so a run killed at any
moment neither loses nor duplicates a record: the next run resumes from the last committed
page and the upsert keeps whichever version is newest.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl

from .records import Rejected, RecordShape

DUCK_TYPES = {
    pl.Datetime("us", "UTC"): "TIMESTAMPTZ",
    pl.Date: "DATE",
    pl.Float64: "DOUBLE",
    pl.Int64: "BIGINT",
    pl.String: "VARCHAR",
}

_META = """
create schema if not exists raw;
create table if not exists raw._sync_state (
    stream varchar primary key,
    cursor_value timestamptz,
    resume varchar,
    runs bigint default 0,
    last_completed_at timestamptz,
    updated_at timestamptz
);
create table if not exists raw._quarantine (
    source varchar not null,
    entity varchar not null,
    record_id varchar,
    reason varchar not null,
    payload json,
    payload_hash varchar not null,
    quarantined_at timestamptz not null,
    primary key (source, entity, payload_hash)
);
"""


@dataclass(frozen=True)
class SyncState:
    cursor: datetime | None
    resume: dict | None
    runs: int


class RawStore:
    """The DuckDB raw schema; the only writer of ``raw.*`` tables."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if self.path.stem.lower() in ("raw", "main", "system", "temp"):
            # DuckDB names the catalog after the file; 'raw' would clash with the raw schema
            raise ValueError(f"{self.path}: a warehouse file may not be named {self.path.name!r}; use e.g. warehouse.duckdb")
        self.pages_committed: dict[str, int] = {}
        self.crash_at = _crash_point(os.environ.get("CLOSELOOP_CRASH_AT"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # DuckDB caches up to 80% of RAM by default; ingestion streams pages, so a small cache
        # (spilling to disk when a merge needs more) keeps a backfill's memory flat
        self.con = duckdb.connect(str(self.path), config={"memory_limit": os.environ.get("CLOSELOOP_DUCKDB_MEMORY", "512MB")})
        self.lock = threading.Lock()
        self.con.execute(_META)

    def close(self) -> None:
        self.con.close()

    @staticmethod
    def table(source: str, entity: str) -> str:
        return f"raw.{source}__{entity}"

    def ensure_table(self, source: str, entity: str, shape: RecordShape) -> None:
        columns = []
        for f in shape.all_fields:
            columns.append(f'"{f.name}" {DUCK_TYPES[shape.polars_schema()[f.name]]}')
        ddl = (f"create table if not exists {self.table(source, entity)} ("
               + ", ".join(columns)
               + f', payload json, loaded_at timestamptz, primary key ("{shape.key.name}"))')
        with self.lock:
            self.con.execute(ddl)

    def state(self, source: str, entity: str) -> SyncState:
        row = self.con.execute("select cursor_value, resume, runs from raw._sync_state where stream = ?",
                               [f"{source}__{entity}"]).fetchone()
        if row is None:
            return SyncState(None, None, 0)
        return SyncState(row[0], json.loads(row[1]) if row[1] else None, row[2] or 0)

    def commit_page(self, source: str, entity: str, shape: RecordShape, valid: pl.DataFrame, rejected: list[Rejected],
                    resume: dict | None, cursor: datetime | None = None, finished: bool = False) -> int:
        """Write one page, its quarantine and the stream's progress in one transaction.

        ``resume`` is where a restarted run continues (None when the stream is done);
        ``cursor`` is the new incremental cursor, written when ``finished``.
        Returns how many rows were upserted.
        """
        table = self.table(source, entity)
        key = shape.key.name
        now = datetime.now(timezone.utc)
        stream = f"{source}__{entity}"
        if valid.height:
            order = [shape.updated_at.name] if shape.updated_at else []
            # a page may repeat a record (or carry two versions of it): keep the newest
            valid = (valid.with_row_index("_seq").sort(order + ["_seq"]) if order else valid.with_row_index("_seq"))
            valid = valid.unique(subset=[key], keep="last", maintain_order=True).drop("_seq")
        names = [f.name for f in shape.all_fields]
        quoted = ", ".join(f'"{n}"' for n in names)
        updates = ", ".join(f'"{n}" = excluded."{n}"' for n in names if n != key)
        newer = (f' where excluded."{shape.updated_at.name}" is null or t."{shape.updated_at.name}" is null'
                 f' or excluded."{shape.updated_at.name}" >= t."{shape.updated_at.name}"') if shape.updated_at else ""
        page_number = self.pages_committed.get(stream, 0) + 1
        self.pages_committed[stream] = page_number
        self._maybe_crash(stream, page_number, "before_transaction")
        with self.lock:
            self.con.execute("begin transaction")
            try:
                if valid.height:
                    self.con.register("_page", valid)
                    self.con.execute(
                        f"insert into {table} as t ({quoted}, payload, loaded_at) "
                        f"select {quoted}, payload::json, ?::timestamptz from _page "
                        f"on conflict (\"{key}\") do update set {updates}, payload = excluded.payload, loaded_at = excluded.loaded_at{newer}",
                        [now])
                    self.con.unregister("_page")
                if rejected:
                    bad = pl.DataFrame({"record_id": [r.record_id for r in rejected], "reason": [r.reason for r in rejected],
                                        "payload": [_json_or_string(r.payload) for r in rejected]},
                                       schema={"record_id": pl.String, "reason": pl.String, "payload": pl.String})
                    self.con.register("_bad", bad)
                    self.con.execute(
                        "insert into raw._quarantine select ?, ?, record_id, reason, payload::json, md5(payload), ? from _bad "
                        "on conflict do nothing", [source, entity, now])
                    self.con.unregister("_bad")
                if finished:
                    self.con.execute(
                        """insert into raw._sync_state values (?, ?, null, 1, ?, ?)
                           on conflict (stream) do update set cursor_value = coalesce(excluded.cursor_value, raw._sync_state.cursor_value),
                           resume = null, runs = raw._sync_state.runs + 1, last_completed_at = excluded.last_completed_at,
                           updated_at = excluded.updated_at""",
                        [stream, cursor, now, now])
                else:
                    self.con.execute(
                        """insert into raw._sync_state (stream, resume, runs, updated_at) values (?, ?, 0, ?)
                           on conflict (stream) do update set resume = excluded.resume, updated_at = excluded.updated_at""",
                        [stream, json.dumps(resume) if resume is not None else None, now])
                self._maybe_crash(stream, page_number, "mid_transaction")
                self.con.execute("commit")
            except BaseException:
                self.con.execute("rollback")
                raise
        self._maybe_crash(stream, page_number, "after_commit")
        return valid.height

    def _maybe_crash(self, stream: str, page: int, phase: str) -> None:
        """Crash injection for reliability tests: die like ``kill -9`` at a chosen point."""
        if self.crash_at and self.crash_at == (stream, page, phase):
            os._exit(137)

    def count(self, source: str, entity: str) -> int:
        return self.con.execute(f"select count(*) from {self.table(source, entity)}").fetchone()[0]



def _crash_point(spec: str | None) -> tuple[str, int, str] | None:
    """``CLOSELOOP_CRASH_AT=<source>__<entity>:<page>:<phase>`` (phase: before_transaction,
    mid_transaction or after_commit); unset in normal operation."""
    if not spec:
        return None
    try:
        stream, page, phase = spec.split(":")
        if phase not in ("before_transaction", "mid_transaction", "after_commit"):
            raise ValueError(phase)
        return stream, int(page), phase
    except ValueError:
        raise ValueError(f"CLOSELOOP_CRASH_AT={spec!r}: expected <source>__<entity>:<page>:<before_transaction|mid_transaction|after_commit>") from None


def _json_or_string(payload: str) -> str:
    """Quarantine keeps what arrived; text that is not JSON is kept as a JSON string."""
    try:
        json.loads(payload)
        return payload
    except (json.JSONDecodeError, TypeError):
        return json.dumps(payload)
