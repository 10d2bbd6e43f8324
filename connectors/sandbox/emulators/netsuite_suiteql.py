"""SuiteQL over the NetSuite books: analytics-shaped tables in an in-memory DuckDB, read-only.

Tables (lower-case columns, as in NetSuite's analytics data source):

- ``transaction``: id, tranid, trandate, type (SalesOrd, ItemShip, CustInvc, CustCred, CustPymt,
  Deposit, PurchOrd, Journal), recordtype, entity, status (letter code), foreigntotal,
  currency, memo, otherrefnum, externalid, createdfrom, duedate, createddate, lastmodifieddate
- ``transactionline``: id, transaction, linesequencenumber, mainline ('T' for the header line),
  item, quantity, rate, netamount, foreignamount, memo, quantityshiprecv, isclosed. Sales-side
  lines (SalesOrd, CustInvc, ItemShip) carry negative quantity and amount, as NetSuite's
  accounting-signed lines do.
- ``item``, ``customer``, ``vendor``, ``trackingnumber``, ``trackingnumbermap``

Oracle-isms translated before DuckDB runs the query: ``BUILTIN.DF(col)`` (display value),
``TO_DATE(s, 'fmt')``, ``TO_CHAR(x, 'fmt')``, ``NVL``/``NVL2``, ``ROWNUM <= n`` and
``SELECT TOP n`` (LIMIT), ``SYSDATE``/``CURRENT_DATE`` (the sandbox clock, not the wall clock).

Results come back the way SuiteQL's REST answer does: every value a string, dates and
instants in the account date format (M/D/YYYY, so a datetime column loses its time unless the
query formats it with TO_CHAR), booleans 'T'/'F', null columns left out of the row.
"""
from __future__ import annotations

import math
import re
import threading
from datetime import date, datetime, timezone

import duckdb
import polars as pl

from .netsuite_records import (
    CURRENCY_ID, CURRENCY_NAME, DISCOUNT_ITEM, SHIPPING_ITEM, STATUS_CODES, TRANSACTION_TYPES,
)

MAX_ROWS = 100_000
SALES_SIGNED = {"SalesOrd", "CustInvc", "ItemShip"}
# columns whose display value BUILTIN.DF returns from a companion "<column>__display" column
DISPLAY_COLUMNS = {"entity", "status", "currency", "type", "item", "createdfrom"}


class SuiteQLError(ValueError):
    """The query cannot run: a parse or binding error, or not a single SELECT."""


def _naive(frame: pl.DataFrame) -> pl.DataFrame:
    """UTC instants as naive timestamps: DuckDB then compares them with plain literals."""
    return frame.with_columns(
        [pl.col(c).dt.replace_time_zone(None) for c, t in frame.schema.items() if isinstance(t, pl.Datetime)]
    )


def transaction_tables(headers: dict[str, pl.DataFrame], lines: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The analytics tables built from every record type's (combined world + written) frames."""
    trans_parts, line_parts = [], []
    for record_type, (code, label) in TRANSACTION_TYPES.items():
        head = headers.get(record_type)
        if head is None or head.height == 0:
            continue
        codes = STATUS_CODES.get(record_type, {})
        cols = head.columns

        def pick(name, dtype=pl.String, source=None):
            source = source or name
            return (pl.col(source) if source in cols else pl.lit(None)).cast(dtype).alias(name)

        entity_source = "entity" if "entity" in cols else ("customer" if "customer" in cols else None)
        trans_parts.append(head.select(
            pl.col("id").cast(pl.Int64).alias("id"),
            pick("tranid", source="tranId"),
            pick("trandate", pl.Date, "tranDate"),
            pl.lit(code).alias("type"),
            pl.lit(label).alias("type__display"),
            pl.lit(record_type.lower()).alias("recordtype"),
            (pl.col(entity_source) if entity_source else pl.lit(None)).cast(pl.Int64).alias("entity"),
            pick("entity__display", source="_entityName"),
            (pl.col("status").replace_strict(codes, default=None) if "status" in cols and codes else pl.lit(None)).cast(pl.String).alias("status"),
            (pl.lit(f"{label} : ") + pl.col("status") if "status" in cols else pl.lit(None)).cast(pl.String).alias("status__display"),
            pick("foreigntotal", pl.Float64, "total"),
            pl.lit(CURRENCY_ID).cast(pl.Int64).alias("currency"),
            pl.lit(CURRENCY_NAME).alias("currency__display"),
            pick("memo"),
            pick("otherrefnum", source="otherRefNum"),
            pick("externalid", source="externalId"),
            pick("createdfrom", pl.Int64, "createdFrom"),
            pick("createdfrom__display", source="_createdFromName"),
            pick("duedate", pl.Date, "dueDate"),
            pick("createddate", pl.Datetime("us", "UTC"), "createdDate"),
            pick("lastmodifieddate", pl.Datetime("us", "UTC"), "lastModifiedDate"),
            pick("_tracking", source="_trackingNumber"),
        ))
        # the header ("main") line of every transaction
        line_parts.append(head.select(
            pl.col("id").cast(pl.Int64).alias("transaction"),
            pl.lit(0).cast(pl.Int64).alias("id"),
            pl.lit(0).cast(pl.Int64).alias("linesequencenumber"),
            pl.lit("T").alias("mainline"),
            pl.lit(None).cast(pl.Int64).alias("item"),
            pl.lit(None).cast(pl.String).alias("item__display"),
            pl.lit(None).cast(pl.Float64).alias("quantity"),
            pl.lit(None).cast(pl.Float64).alias("rate"),
            pick("netamount", pl.Float64, "total"),
            pick("memo"),
            pl.lit(None).cast(pl.Float64).alias("quantityshiprecv"),
            pl.lit("F").alias("isclosed"),
            pl.lit(code).alias("_code"),
        ))
        body = lines.get(record_type)
        if body is not None and body.height:
            bcols = body.columns
            line_parts.append(body.select(
                pl.col("_parent").cast(pl.Int64).alias("transaction"),
                pl.col("line").cast(pl.Int64).alias("id"),
                pl.col("line").cast(pl.Int64).alias("linesequencenumber"),
                pl.lit("F").alias("mainline"),
                (pl.col("item") if "item" in bcols else pl.lit(None)).cast(pl.Int64).alias("item"),
                (pl.col("_itemName") if "_itemName" in bcols else pl.lit(None)).cast(pl.String).alias("item__display"),
                (pl.col("quantity") if "quantity" in bcols else pl.lit(None)).cast(pl.Float64).alias("quantity"),
                (pl.col("rate") if "rate" in bcols else pl.lit(None)).cast(pl.Float64).alias("rate"),
                (pl.col("amount") if "amount" in bcols else pl.lit(None)).cast(pl.Float64).alias("netamount"),
                (pl.col("description") if "description" in bcols else pl.lit(None)).cast(pl.String).alias("memo"),
                (pl.col("quantityReceived") if "quantityReceived" in bcols else pl.lit(None)).cast(pl.Float64).alias("quantityshiprecv"),
                pl.when(pl.col("isClosed") if "isClosed" in bcols else pl.lit(False)).then(pl.lit("T")).otherwise(pl.lit("F")).alias("isclosed"),
                pl.lit(code).alias("_code"),
            ))
    transaction = pl.concat(trans_parts, how="vertical_relaxed") if trans_parts else pl.DataFrame()
    transactionline = pl.concat(line_parts, how="vertical_relaxed") if line_parts else pl.DataFrame()
    if transactionline.height:
        sign = pl.when(pl.col("_code").is_in(list(SALES_SIGNED)) & (pl.col("mainline") == "F")).then(-1.0).otherwise(1.0)
        transactionline = transactionline.with_columns(
            quantity=pl.col("quantity") * sign, netamount=pl.col("netamount") * sign, foreignamount=pl.col("netamount") * sign,
        ).drop("_code")
    tracking = transaction.filter(pl.col("_tracking").is_not_null()).select("id", "_tracking") if transaction.height else pl.DataFrame()
    tables = {"transaction": transaction.drop("_tracking") if transaction.height else transaction, "transactionline": transactionline}
    if tracking.height:
        tracking = tracking.with_row_index("tn", offset=1)
        tables["trackingnumber"] = tracking.select(pl.col("tn").cast(pl.Int64).alias("id"), pl.col("_tracking").alias("trackingnumber"))
        tables["trackingnumbermap"] = tracking.select(pl.col("id").alias("transaction"), pl.col("tn").cast(pl.Int64).alias("trackingnumber"))
    items = headers["inventoryItem"]
    tables["item"] = pl.concat([
        items.select(
            pl.col("id").cast(pl.Int64), pl.col("itemId").alias("itemid"), pl.col("displayName").alias("displayname"),
            pl.lit("InvtPart").alias("itemtype"), pl.col("upcCode").alias("upccode"), pl.col("cost").cast(pl.Float64),
            pl.col("basePrice").cast(pl.Float64).alias("baseprice"),
            pl.when(pl.col("isInactive")).then(pl.lit("T")).otherwise(pl.lit("F")).alias("isinactive"),
            pl.col("createdDate").alias("createddate"), pl.col("lastModifiedDate").alias("lastmodifieddate"),
            pl.col("externalId").alias("externalid"),
        ),
        pl.DataFrame({
            "id": [SHIPPING_ITEM[0], DISCOUNT_ITEM[0]], "itemid": [SHIPPING_ITEM[1], DISCOUNT_ITEM[1]],
            "displayname": [SHIPPING_ITEM[1], DISCOUNT_ITEM[1]], "itemtype": ["OthCharge", "OthCharge"],
            "isinactive": ["F", "F"],
        }),
    ], how="diagonal_relaxed")
    for name in ("customer", "vendor"):
        frame = headers[name]
        tables[name] = frame.select(
            pl.col("id").cast(pl.Int64), pl.col("entityId").alias("entityid"), pl.col("companyName").alias("companyname"),
            pl.col("email"), pl.when(pl.col("isInactive")).then(pl.lit("T")).otherwise(pl.lit("F")).alias("isinactive"),
            pl.col("dateCreated").alias("datecreated"), pl.col("lastModifiedDate").alias("lastmodifieddate"),
            pl.col("externalId").alias("externalid"),
        )
    return tables


class SuiteQLDatabase:
    """One DuckDB holding the analytics tables of one (clock, writes) state; queries are read-only."""

    def __init__(self, tables: dict[str, pl.DataFrame], now: datetime):
        self.now = now
        self.conn = duckdb.connect(":memory:")
        self.lock = threading.Lock()
        for name, frame in tables.items():
            if frame.width == 0:
                continue
            self.conn.register("_incoming", _naive(frame).to_arrow())
            self.conn.execute(f'create table "{name}" as select * from _incoming')
            self.conn.unregister("_incoming")
        for name in ("transaction", "transactionline", "item", "customer", "vendor", "trackingnumber", "trackingnumbermap"):
            if name not in tables or tables[name].width == 0:
                self.conn.execute(f'create table "{name}" (id bigint)')
        self.conn.execute("create macro __df(x) as x")
        # clients cannot reach files or change settings from a query
        self.conn.execute("set enable_external_access = false")
        self.conn.execute("set lock_configuration = true")

    def run(self, query: str) -> tuple[list[str], list[tuple]]:
        """Run one SELECT (already translated): column names and all rows (capped at 100,000)."""
        with self.lock:
            cursor = self.conn.cursor()
        try:
            statements = cursor.extract_statements(query)
            if len(statements) != 1:
                raise SuiteQLError("Only a single SELECT statement is allowed.")
            if statements[0].type != duckdb.StatementType.SELECT:
                raise SuiteQLError("Only SELECT statements are allowed.")
            result = cursor.execute(query)
            names = [d[0] for d in result.description]
            rows = result.fetchmany(MAX_ROWS)
            return names, rows
        except duckdb.Error as exc:
            raise SuiteQLError(_clean_message(str(exc))) from None
        finally:
            cursor.close()


def _clean_message(message: str) -> str:
    return re.sub(r"\s+", " ", message).strip()


# ---------------------------------------------------------------- translation
def _find_calls(sql: str, name_pattern: str):
    """Yield (start, end, args) of each call to a function matching ``name_pattern`` (balanced parens)."""
    for match in re.finditer(name_pattern + r"\s*\(", sql, flags=re.IGNORECASE):
        depth, i, args, arg_start, quote = 1, match.end(), [], match.end(), None
        while i < len(sql) and depth:
            ch = sql[i]
            if quote:
                if ch == quote:
                    quote = None
            elif ch in ("'", '"'):
                quote = ch
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    args.append(sql[arg_start:i].strip())
            elif ch == "," and depth == 1:
                args.append(sql[arg_start:i].strip())
                arg_start = i + 1
            i += 1
        if depth:
            raise SuiteQLError(f"Unbalanced parentheses after {match.group(0).strip()}")
        yield match.start(), i, args


def _rewrite_calls(sql: str, name_pattern: str, rewrite) -> str:
    # rewrite from the innermost/last call backwards so earlier offsets stay valid
    while True:
        calls = list(_find_calls(sql, name_pattern))
        if not calls:
            return sql
        start, end, args = calls[-1]
        sql = sql[:start] + rewrite(args) + sql[end:]


_ORACLE_FORMAT = [("HH24", "%H"), ("HH12", "%I"), ("HH", "%I"), ("MI", "%M"), ("SS", "%S"), ("YYYY", "%Y"),
                  ("MONTH", "%B"), ("MON", "%b"), ("MM", "%m"), ("DD", "%d"), ("AM", "%p"), ("PM", "%p"), ("YY", "%y")]


def oracle_format(fmt: str) -> str:
    """An Oracle datetime format model as a strftime format."""
    out, i, text = [], 0, fmt.upper()
    while i < len(text):
        for token, replacement in _ORACLE_FORMAT:
            if text.startswith(token, i):
                out.append(replacement)
                i += len(token)
                break
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


def _literal_format(arg: str) -> str:
    if not (arg.startswith("'") and arg.endswith("'")):
        raise SuiteQLError("The date format must be a string literal.")
    return "'" + oracle_format(arg[1:-1]) + "'"


def _to_date(args: list[str]) -> str:
    if len(args) == 1:
        return f"strptime({args[0]}, '%m/%d/%Y')"
    if len(args) != 2:
        raise SuiteQLError("TO_DATE takes one or two arguments.")
    return f"strptime({args[0]}, {_literal_format(args[1])})"


def _to_char(args: list[str]) -> str:
    if len(args) == 1:
        return f"CAST({args[0]} AS VARCHAR)"
    if len(args) != 2:
        raise SuiteQLError("TO_CHAR takes one or two arguments.")
    return f"strftime({args[0]}, {_literal_format(args[1])})"


def _builtin_df(args: list[str]) -> str:
    if len(args) != 1:
        raise SuiteQLError("BUILTIN.DF takes one argument.")
    column = args[0]
    last = column.replace('"', "").split(".")[-1].lower()
    if re.fullmatch(r"[\w.\"]+", column) and last in DISPLAY_COLUMNS:
        prefix = column[: len(column) - len(column.split(".")[-1])]
        return f"__df({prefix}{last}__display)"
    return f"__df(CAST({column} AS VARCHAR))"


def translate(sql: str, now: datetime) -> str:
    """SuiteQL (Oracle flavour) to DuckDB SQL."""
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise SuiteQLError("The query is empty.")
    text = _rewrite_calls(text, r"\bBUILTIN\.DF", _builtin_df)
    text = _rewrite_calls(text, r"\bTO_DATE", _to_date)
    text = _rewrite_calls(text, r"\bTO_CHAR", _to_char)
    text = _rewrite_calls(text, r"\bNVL2", lambda a: f"(CASE WHEN ({a[0]}) IS NOT NULL THEN ({a[1]}) ELSE ({a[2]}) END)" if len(a) == 3 else _bad("NVL2"))
    text = re.sub(r"\bNVL\s*\(", "coalesce(", text, flags=re.IGNORECASE)
    stamp = now.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
    text = re.sub(r"\b(SYSDATE|CURRENT_TIMESTAMP)\b", f"TIMESTAMP '{stamp}'", text, flags=re.IGNORECASE)
    text = re.sub(r"\bCURRENT_DATE\b", f"DATE '{now.date().isoformat()}'", text, flags=re.IGNORECASE)
    limit = None
    top = re.match(r"^\s*SELECT\s+TOP\s+(\d+)\s+", text, flags=re.IGNORECASE)
    if top:
        limit = int(top.group(1))
        text = "SELECT " + text[top.end():]
    rownum = re.compile(r"\bROWNUM\s*(<=|<)\s*(\d+)", re.IGNORECASE)
    found = list(rownum.finditer(text))
    if found:
        m = found[-1]
        n = int(m.group(2)) - (1 if m.group(1) == "<" else 0)
        limit = n if limit is None else min(limit, n)
        text = text[: m.start()] + "TRUE" + text[m.end():]
        text = re.sub(r"\bWHERE\s+TRUE\s*(?:AND\b)?", "WHERE ", text, flags=re.IGNORECASE)
        text = re.sub(r"\bAND\s+TRUE\b", "", text, flags=re.IGNORECASE)
        text = re.sub(r"\bWHERE\s*$", "", text.strip(), flags=re.IGNORECASE)
        text = re.sub(r"\bWHERE\s+(ORDER|GROUP)\b", r"\1", text, flags=re.IGNORECASE)
    if limit is not None:
        text = f"SELECT * FROM ({text}) AS _limited LIMIT {max(limit, 0)}"
    return text


def _bad(name: str):
    raise SuiteQLError(f"{name}: wrong number of arguments.")


# ---------------------------------------------------------------- rendering
def format_value(value) -> str | None:
    """A SuiteQL cell as the REST answer gives it: a string (dates in M/D/YYYY), or None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, datetime) or isinstance(value, date):
        return f"{value.month}/{value.day}/{value.year}"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return repr(round(value, 10))
    return str(value)


def row_objects(names: list[str], rows: list[tuple]) -> list[dict]:
    """Rows as SuiteQL items: lower-case keys (unnamed expressions as exprN), nulls left out."""
    keys, counter = [], 0
    for name in names:
        if name.lower().endswith("__display"):
            keys.append(None)  # the display companions are not columns of NetSuite's tables (SELECT *)
            continue
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and not name.startswith("__"):
            keys.append(name.lower())
        else:
            counter += 1
            keys.append(f"expr{counter}")
    out = []
    for row in rows:
        item: dict = {"links": []}
        for key, value in zip(keys, row):
            if key is None:
                continue
            text = format_value(value)
            if text is not None:
                item[key] = text
        out.append(item)
    return out
