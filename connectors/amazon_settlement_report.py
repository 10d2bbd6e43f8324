"""Amazon's V2 settlement flat file (``GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2``), read defensively.

The file is tab-delimited: a header row, then a summary row for the settlement (id, period,
deposit date, total and currency filled, the rest blank), then one row per amount component
(``amount-type`` / ``amount-description`` / ``amount``). Amazon documents 23 columns; real files
often add ``promotion-id`` (and sometimes others), so columns are found by header name and
unknown ones are kept in the payload. Dates differ by marketplace and file version
(``2023-01-01 00:00:00 UTC``, ISO 8601, ``DD.MM.YYYY``), amounts are plain decimals (``-1.23``,
some EU files ``-1,23``).

One parsed report becomes two kinds of raw records: the settlement (from the summary row) and
its lines. A settlement whose lines do not add up to its ``total-amount`` is not trusted at
all: every record of that report carries the problem, so the whole report lands in quarantine
with the reason instead of half-loading into reconciliation.
"""
from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from .records import Field, FieldError, RecordShape

# Amazon's documented columns, in order (report-type-values-settlement)
OFFICIAL_COLUMNS: tuple[str, ...] = (
    "settlement-id", "settlement-start-date", "settlement-end-date", "deposit-date", "total-amount", "currency",
    "transaction-type", "order-id", "merchant-order-id", "adjustment-id", "shipment-id", "marketplace-name",
    "amount-type", "amount-description", "amount", "fulfillment-id", "posted-date", "posted-date-time",
    "order-item-code", "merchant-order-item-id", "merchant-adjustment-item-id", "sku", "quantity-purchased",
)
OPTIONAL_COLUMNS: tuple[str, ...] = ("promotion-id",)
# without these a file cannot be read as a settlement at all
REQUIRED_COLUMNS: tuple[str, ...] = ("settlement-id", "total-amount", "currency", "amount")

_ZONE_SUFFIX = re.compile(r"\s+([A-Z]{1,4})$", re.IGNORECASE)
# zone abbreviations seen in settlement files, as fixed offsets from UTC in hours
_ZONE_HOURS = {"UTC": 0, "GMT": 0, "Z": 0, "PST": -8, "PDT": -7, "BST": 1, "CET": 1, "CEST": 2, "JST": 9}
_DOTTED = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_SLASHED = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})")
_DECIMAL_COMMA = re.compile(r"-?\d+,\d{1,2}")


def decode_document(content: bytes, compression: str | None) -> str:
    """The document's text: gunzipped when Amazon says GZIP (or the bytes are gzip anyway),
    UTF-8 when it decodes, else Windows-1252 (older EU files)."""
    if content[:2] == b"\x1f\x8b":
        # httpx already undoes a Content-Encoding: gzip, so trust the magic bytes over the flag
        content = gzip.decompress(content)
    elif compression and compression.upper() == "GZIP":
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError, zlib.error):
            pass  # already inflated on the way in
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return content.decode("cp1252", errors="replace")


def settlement_instant(value: Any, name: str) -> datetime | None:
    """A settlement-file time: ``2023-01-01 00:00:00 UTC`` (or another zone abbreviation Amazon
    uses, such as PST), ISO 8601 (an offset, or none for UTC), ``DD.MM.YYYY[ HH:MM[:SS]]``, or
    ``MM/DD/YY`` (the short ``posted-date``). Anything else is a FieldError naming the column."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    zone = _ZONE_SUFFIX.search(text)
    offset = timedelta(0)
    bare = text
    if zone:
        if zone.group(1).upper() not in _ZONE_HOURS:
            raise FieldError(f"{name}: {text[:40]!r} has an unknown time zone")
        offset = timedelta(hours=_ZONE_HOURS[zone.group(1).upper()])
        bare = text[:zone.start()]
    return _instant_in_utc(bare, text, name, offset)


def _instant_in_utc(bare: str, text: str, name: str, offset: timedelta) -> datetime:
    """``bare`` (no zone suffix) read as local time at ``offset`` unless it carries its own offset."""
    dotted = _DOTTED.fullmatch(bare)
    if dotted:
        day, month, year, hour, minute, second = dotted.groups()
        try:
            return datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                            tzinfo=timezone.utc) - offset
        except ValueError:
            raise FieldError(f"{name}: {text[:40]!r} is not a date") from None
    slashed = _SLASHED.fullmatch(bare)
    if slashed:
        month, day, year = slashed.groups()
        year_number = int(year) + (2000 if len(year) == 2 else 0)
        try:
            return datetime(year_number, int(month), int(day), tzinfo=timezone.utc) - offset
        except ValueError:
            raise FieldError(f"{name}: {text[:40]!r} is not a date") from None
    iso = bare.replace(" ", "T", 1) if re.fullmatch(r"\d{4}-\d{2}-\d{2} \d.*", bare) else bare
    try:
        parsed = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        raise FieldError(f"{name}: {text[:40]!r} is not a date") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc) - offset
    return parsed.astimezone(timezone.utc)


def settlement_amount(value: Any, name: str) -> Decimal | None:
    """An amount cell: ``-1.23``; ``-1,23`` (decimal comma) and ``1,234.56`` are read too."""
    if value is None:
        return None
    text = str(value).strip().replace(" ", "")
    if not text:
        return None
    if "," in text and "." in text:
        # whichever separator comes last is the decimal point
        text = text.replace(".", "").replace(",", ".") if text.rfind(",") > text.rfind(".") else text.replace(",", "")
    elif _DECIMAL_COMMA.fullmatch(text):
        text = text.replace(",", ".")
    else:
        text = text.replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise FieldError(f"{name}: {str(value)[:40]!r} is not an amount") from None
    if not amount.is_finite():
        raise FieldError(f"{name}: {str(value)[:40]!r} is not an amount")
    return amount


@dataclass
class ParsedSettlement:
    """One settlement report: its summary record, its line records, and why it is untrusted (if it is)."""

    report: dict
    settlement: dict
    lines: list[dict] = field(default_factory=list)
    problem: str | None = None


def _report_meta(report: dict) -> dict:
    keep = ("reportId", "reportType", "reportDocumentId", "createdTime", "dataStartTime", "dataEndTime", "marketplaceIds")
    return {k: report[k] for k in keep if k in report}


def parse_settlement_report(text: str, report: dict) -> ParsedSettlement:
    """Read one V2 settlement flat file into raw records.

    ``report`` is the Reports API Report object the file belongs to (its ``createdTime`` is
    each record's updated time). Problems that make the file untrustworthy as a whole (missing
    columns, no summary row, an unreadable amount, lines of another settlement, lines that do
    not sum to ``total-amount``) are set on every record, so the whole report is quarantined.
    """
    meta = _report_meta(report)
    report_id = str(report.get("reportId", "?"))
    rows = [line.split("\t") for line in text.splitlines() if line.strip()]
    if not rows:
        return _broken(meta, f"settlement report {report_id} is empty")
    header = [cell.strip().lower() for cell in rows[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        return _broken(meta, f"settlement report {report_id} has no column {', '.join(missing)} (header: {'|'.join(header)[:200]})")

    def as_dict(cells: list[str]) -> dict:
        # trailing empty cells are sometimes dropped; pad them back
        cells = cells + [""] * (len(header) - len(cells))
        return {name: cells[i].strip() for i, name in enumerate(header) if name}

    problems: list[str] = []
    body = rows[1:]
    if not body:
        return _broken(meta, f"settlement report {report_id} has no summary row")
    summary = as_dict(body[0])
    settlement_id = summary.get("settlement-id") or None
    if not summary.get("total-amount") or summary.get("transaction-type") or summary.get("amount"):
        problems.append("its first row is not the settlement summary (total-amount blank or a line's columns filled)")
    try:
        total = settlement_amount(summary.get("total-amount"), "total-amount")
    except FieldError as exc:
        total = None
        problems.append(str(exc))

    lines: list[dict] = []
    line_sum = Decimal(0)
    for number, cells in enumerate(body[1:], start=1):
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            problems.append(f"line {number} has {len(cells)} cells but the header {len(header)}")
            cells = cells[:len(header)]
        row = as_dict(cells)
        if row.get("settlement-id") and settlement_id and row["settlement-id"] != settlement_id:
            problems.append(f"line {number} belongs to settlement {row['settlement-id']}, not {settlement_id}")
        try:
            line_sum += settlement_amount(row.get("amount"), f"amount on line {number}") or Decimal(0)
        except FieldError as exc:
            problems.append(str(exc))
        lines.append({"line_key": f"{settlement_id}:{number}", "settlement_id": settlement_id, "line_number": number,
                      "currency": summary.get("currency") or None, "report": meta, "row": row})
    if total is not None and not problems and line_sum != total:
        problems.append(f"its {len(lines)} lines sum to {line_sum}, not its total-amount {total}")
    problem = None
    if problems:
        shown = "; ".join(dict.fromkeys(problems))
        problem = f"settlement {settlement_id or '?'} (report {report_id}) quarantined whole: {shown[:400]}"
    settlement = {"settlement_id": settlement_id or f"report-{report_id}", "report": meta, "row": summary,
                  "line_count": len(lines), "lines_total": str(line_sum)}
    return ParsedSettlement(meta, settlement, lines, problem)


def _broken(meta: dict, problem: str) -> ParsedSettlement:
    report_id = meta.get("reportId", "?")
    return ParsedSettlement(meta, {"settlement_id": f"report-{report_id}", "report": meta, "row": {}}, [], problem)


# ---------------------------------------------------------------------- raw shapes
def _cell(column: str):
    return lambda record: (record.get("row") or {}).get(column) or None


def _date(column: str, name: str):
    return lambda record: settlement_instant((record.get("row") or {}).get(column), name)


def _checked_amount(column: str, name: str):
    """The money column that carries a report-wide problem: an untrusted report fails here."""
    def read(record: dict):
        if record.get("problem"):
            raise FieldError(f"{name}: {record['problem']}")
        return settlement_amount((record.get("row") or {}).get(column), name)
    return read


def _posted_at(record: dict):
    row = record.get("row") or {}
    if row.get("posted-date-time"):
        return settlement_instant(row["posted-date-time"], "posted_at")
    return settlement_instant(row.get("posted-date"), "posted_at")


def _report_created(record: dict):
    return (record.get("report") or {}).get("createdTime")


SETTLEMENT_SHAPE = RecordShape(
    key=Field("settlement_id", "settlement_id", required=True),
    updated_at=Field("report_created_at", _report_created, "instant", required=True),
    fields=(
        Field("total_amount", _checked_amount("total-amount", "total_amount"), "money", required=True),
        Field("currency", _cell("currency"), currency=True, required=True),
        Field("start_at", _date("settlement-start-date", "start_at"), "instant"),
        Field("end_at", _date("settlement-end-date", "end_at"), "instant"),
        Field("deposit_at", _date("deposit-date", "deposit_at"), "instant"),
        Field("report_id", "report.reportId", required=True),
        Field("line_count", "line_count", "int", non_negative=True),
    ),
)

SETTLEMENT_LINE_SHAPE = RecordShape(
    key=Field("line_key", "line_key", required=True),
    updated_at=Field("report_created_at", _report_created, "instant", required=True),
    fields=(
        # first, so an untrusted report's lines are quarantined with the report's reason
        Field("amount", _checked_amount("amount", "amount"), "money", required=True),
        Field("settlement_id", "settlement_id", required=True),
        Field("line_number", "line_number", "int", required=True, non_negative=True),
        Field("currency", "currency", currency=True),
        Field("transaction_type", _cell("transaction-type")),
        Field("order_id", _cell("order-id")),
        Field("merchant_order_id", _cell("merchant-order-id")),
        Field("amount_type", _cell("amount-type")),
        Field("amount_description", _cell("amount-description")),
        Field("sku", _cell("sku")),
        Field("quantity_purchased", _cell("quantity-purchased"), "int", non_negative=True),
        Field("posted_at", _posted_at, "instant"),
        Field("order_item_code", _cell("order-item-code")),
        Field("adjustment_id", _cell("adjustment-id")),
        Field("shipment_id", _cell("shipment-id")),
        Field("fulfillment_id", _cell("fulfillment-id")),
        Field("marketplace_name", _cell("marketplace-name")),
        Field("promotion_id", _cell("promotion-id")),
        Field("report_id", "report.reportId", required=True),
    ),
)


def settlement_records(parsed: ParsedSettlement) -> list[dict]:
    """The settlement's one raw record (carrying the report's problem, if any)."""
    return [dict(parsed.settlement, problem=parsed.problem) if parsed.problem else parsed.settlement]


def settlement_line_records(parsed: ParsedSettlement) -> list[dict]:
    """The settlement's line records (each carrying the report's problem, if any)."""
    if not parsed.problem:
        return parsed.lines
    return [dict(line, problem=parsed.problem) for line in parsed.lines]
