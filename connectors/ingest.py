"""Running one stream: read pages from a connector, validate, land, move the cursor.

A :class:`Stream` pairs a connector's page reader with the typed shape of its raw table.
The reader is a generator of :class:`Page` objects taking the incremental lower bound
(``since``: the last cursor minus the lookback window, None on a first run) and the resume
point of an interrupted run. Each page says where the next one starts, so the runner can
store it with the page's rows; the last page says ``resume=None``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterator

import polars as pl

from .raw_store import RawStore
from .records import RecordShape, shape_page


@dataclass
class Page:
    records: list[dict]
    resume: dict | None  # where the next page starts; None on the last page
    reported_total: int | None = None  # what the source says the full result holds, when it says


Reader = Callable[[datetime | None, dict | None], Iterator[Page]]


@dataclass(frozen=True)
class Stream:
    source: str
    entity: str
    shape: RecordShape
    read: Reader
    lookback: timedelta = timedelta(days=2)
    description: str = ""

    @property
    def name(self) -> str:
        return f"{self.source}__{self.entity}"


@dataclass
class StreamResult:
    stream: str
    pages: int = 0
    records: int = 0
    loaded: int = 0
    quarantined: int = 0
    cursor: datetime | None = None
    reported_total: int | None = None
    resumed: bool = False
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def run_stream(store: RawStore, stream: Stream, on_page: Callable[[StreamResult], None] | None = None) -> StreamResult:
    """Bring one stream up to date; safe to kill at any point and run again."""
    started = time.perf_counter()
    store.ensure_table(stream.source, stream.entity, stream.shape)
    state = store.state(stream.source, stream.entity)
    result = StreamResult(stream.name)
    if state.resume is not None:
        since = _parse(state.resume.get("since"))
        resume = state.resume.get("page")
        max_seen = _parse(state.resume.get("max_seen"))
        result.resumed = True
    else:
        since = state.cursor - stream.lookback if state.cursor else None
        resume, max_seen = None, None
    updated_name = stream.shape.updated_at.name if stream.shape.updated_at else None
    finished = False
    for page in stream.read(since, resume):
        shaped = shape_page(page.records, stream.shape)
        if updated_name and shaped.valid.height:
            page_max = shaped.valid[updated_name].max()
            if page_max is not None and (max_seen is None or page_max > max_seen):
                max_seen = page_max
        last = page.resume is None
        cursor = max(x for x in (state.cursor, max_seen) if x is not None) if (state.cursor or max_seen) else None
        loaded = store.commit_page(
            stream.source, stream.entity, stream.shape, shaped.valid, shaped.rejected,
            resume=None if last else {"since": _iso(since), "page": page.resume, "max_seen": _iso(max_seen)},
            cursor=cursor, finished=last)
        result.pages += 1
        result.records += len(page.records)
        result.loaded += loaded
        result.quarantined += len(shaped.rejected)
        for r in shaped.rejected:
            key = r.reason.split(":")[0]
            result.reasons[key] = result.reasons.get(key, 0) + 1
        if page.reported_total is not None:
            result.reported_total = page.reported_total
        result.cursor = cursor
        if on_page:
            on_page(result)
        if last:
            finished = True
            break
    if not finished:
        # a reader that ends without a last page still completes the stream
        cursor = max(x for x in (state.cursor, max_seen) if x is not None) if (state.cursor or max_seen) else None
        empty = pl.DataFrame(schema=stream.shape.polars_schema())
        store.commit_page(stream.source, stream.entity, stream.shape, empty, [], resume=None, cursor=cursor, finished=True)
        result.cursor = cursor
    result.seconds = time.perf_counter() - started
    return result
