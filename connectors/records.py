"""From API records to validated polars frames: typed fields, pandera checks, quarantine reasons.

A connector yields each record as the API returned it (a dict). A :class:`RecordShape` says
which fields land as typed columns of the raw table and how to read them from the record;
everything else stays in the payload for dbt. A record whose fields cannot be read, or that
breaks the pandera schema, is set aside with the reason; the rest of the page loads.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

import pandera.polars as pa
import polars as pl

# ISO 4217 codes a DTC brand meets; an unknown code is a data error worth a human's look
CURRENCIES = frozenset("""USD CAD EUR GBP AUD NZD JPY CHF SEK NOK DKK PLN CZK HUF MXN BRL INR SGD HKD CNY KRW ZAR AED SAR ILS TRY""".split())
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
MAX_TEXT = 10_000
_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


class FieldError(ValueError):
    """A field that is missing or cannot be read as its type."""


def dig(record: dict, path: str) -> Any:
    """``a.b.c`` inside nested dicts; None when any step is missing."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def as_instant(value: Any, name: str) -> datetime | None:
    """ISO-8601 with offset or Z, Xero's ``/Date(ms+0000)/``, or a datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        match = _MS_DATE.fullmatch(value.strip())
        if match:
            return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=timezone.utc)
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise FieldError(f"{name}: {value[:40]!r} is not a timestamp") from None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    raise FieldError(f"{name}: {type(value).__name__} is not a timestamp")


def as_day(value: Any, name: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise FieldError(f"{name}: {value!r} is not a date") from None
    instant = as_instant(value, name)
    return instant.date() if instant else None


def as_money(value: Any, name: str) -> Decimal | None:
    """Money as the sources send it: decimal strings (Shopify, SP-API v0) or numbers (Xero, NetSuite)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise FieldError(f"{name}: boolean is not an amount")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise FieldError(f"{name}: {str(value)[:40]!r} is not an amount") from None
    if not amount.is_finite():
        raise FieldError(f"{name}: {value!r} is not a finite amount")
    return amount


def as_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise FieldError(f"{name}: boolean is not a whole number")
    if isinstance(value, int):
        return value
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise FieldError(f"{name}: {str(value)[:40]!r} is not a whole number") from None
    if number != number.to_integral_value():
        raise FieldError(f"{name}: {value!r} is not a whole number")
    return int(number)


def as_text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise FieldError(f"{name}: expected text, got {type(value).__name__}")
    return str(value)


READERS: dict[str, tuple[Callable, pl.DataType]] = {
    "instant": (as_instant, pl.Datetime("us", "UTC")),
    "date": (as_day, pl.Date),
    "money": (lambda v, n: (lambda d: None if d is None else float(d))(as_money(v, n)), pl.Float64),
    "int": (as_int, pl.Int64),
    "text": (as_text, pl.String),
}


@dataclass(frozen=True)
class Field:
    """One typed column of a raw table: its name, how to find it in the record, its kind and rules."""

    name: str
    path: str | Callable[[dict], Any]
    kind: str = "text"
    required: bool = False
    non_negative: bool = False
    currency: bool = False

    def read(self, record: dict) -> Any:
        raw = self.path(record) if callable(self.path) else dig(record, self.path)
        value = READERS[self.kind][0](raw, self.name)
        if value is None and self.required:
            raise FieldError(f"{self.name}: missing")
        return value

    def column(self) -> pa.Column:
        checks = []
        dtype = READERS[self.kind][1]
        if self.non_negative:
            checks.append(pa.Check.ge(0, error=f"{self.name} must not be negative"))
        if self.currency:
            checks.append(pa.Check.isin(sorted(CURRENCIES), error=f"{self.name} is not a known ISO 4217 currency"))
        if self.kind == "instant":
            checks.append(pa.Check.in_range(EARLIEST, LATEST, error=f"{self.name} is outside 2000-2100"))
        if self.kind == "text":
            checks.append(pa.Check(lambda data: data.lazyframe.select(pl.col(data.key).str.len_chars() <= MAX_TEXT),
                                   error=f"{self.name} is longer than {MAX_TEXT} characters"))
        return pa.Column(dtype, checks=checks, nullable=not self.required)


@dataclass(frozen=True)
class RecordShape:
    """The typed part of one raw table: the key, the source's updated time and other fields."""

    key: Field
    updated_at: Field | None
    fields: tuple[Field, ...] = ()

    @property
    def all_fields(self) -> tuple[Field, ...]:
        return (self.key,) + ((self.updated_at,) if self.updated_at else ()) + self.fields

    def schema(self) -> pa.DataFrameSchema:
        return pa.DataFrameSchema({f.name: f.column() for f in self.all_fields}, strict=False)

    def polars_schema(self) -> dict[str, pl.DataType]:
        return {f.name: READERS[f.kind][1] for f in self.all_fields} | {"payload": pl.String}


@dataclass
class Rejected:
    record_id: str | None
    reason: str
    payload: str


@dataclass
class ShapedPage:
    valid: pl.DataFrame
    rejected: list[Rejected] = field(default_factory=list)


def payload_text(record: dict) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def shape_page(records: list[dict], shape: RecordShape) -> ShapedPage:
    """Typed, validated rows of one page, and the records set aside with their reasons."""
    rows: list[dict] = []
    rejected: list[Rejected] = []
    for record in records:
        payload = payload_text(record)
        key_guess = record.get(shape.key.path) if isinstance(shape.key.path, str) and isinstance(record, dict) else None
        if not isinstance(record, dict):
            rejected.append(Rejected(None, "record is not a JSON object", payload))
            continue
        try:
            row = {f.name: f.read(record) for f in shape.all_fields}
        except FieldError as exc:
            rejected.append(Rejected(None if key_guess is None else str(key_guess), str(exc), payload))
            continue
        row["payload"] = payload
        rows.append(row)
    frame = pl.DataFrame(rows, schema=shape.polars_schema(), orient="row") if rows else pl.DataFrame(schema=shape.polars_schema())
    if frame.height:
        try:
            shape.schema().validate(frame, lazy=True)
        except pa.errors.SchemaErrors as exc:
            failures = exc.failure_cases.filter(pl.col("index").is_not_null())
            reasons: dict[int, list[str]] = {}
            for fc in failures.iter_rows(named=True):
                reasons.setdefault(int(fc["index"]), []).append(f"{fc['column']}: {fc['check']} (got {str(fc['failure_case'])[:60]!r})")
            if failures.height < exc.failure_cases.height and not reasons:
                raise
            bad = sorted(reasons)
            for index in bad:
                row = frame.row(index, named=True)
                rejected.append(Rejected(None if row[shape.key.name] is None else str(row[shape.key.name]), "; ".join(reasons[index]), row["payload"]))
            frame = frame.with_row_index("_i").filter(~pl.col("_i").is_in(bad)).drop("_i")
    return ShapedPage(frame, rejected)
