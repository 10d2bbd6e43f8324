"""The ``q`` filter of NetSuite record collections, parsed and compiled to a polars expression.

Grammar (Oracle "Record Collection Filtering")::

    query     := or_expr
    or_expr   := and_expr ("OR" and_expr)*
    and_expr  := factor ("AND" factor)*
    factor    := "(" or_expr ")" | condition
    condition := FIELD OPERATOR [value | "[" value ("," value)* "]"]
    value     := "double quoted" | 'single quoted' | number | bare word

Operators depend on the field type: dates/times (AFTER, BEFORE, ON, ON_OR_AFTER, ON_OR_BEFORE),
numbers (EQUAL, GREATER, GREATER_OR_EQUAL, LESS, LESS_OR_EQUAL, BETWEEN, WITHIN, ANY_OF),
strings (IS, CONTAIN, START_WITH, END_WITH/ENDWITH), booleans (IS) and any type (EMPTY); each
has a ``_NOT`` form. EMPTY takes no value, BETWEEN/WITHIN two, ANY_OF any number.

Date values are accepted as ``MM/DD/YYYY`` (the default account date preference that N/query
uses), ``YYYY-MM-DD`` and ISO-8601 instants. A date without a time compares by whole UTC days
(``AFTER "05/04/2026"`` means from 05/05/2026 00:00 on); a value with a time compares exactly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import polars as pl


class FilterError(ValueError):
    """The q parameter could not be parsed or does not fit the record's fields."""


DATE_OPERATORS = {"AFTER", "BEFORE", "ON", "ON_OR_AFTER", "ON_OR_BEFORE", "WITHIN"}
NUMBER_OPERATORS = {"ANY_OF", "BETWEEN", "EQUAL", "GREATER", "GREATER_OR_EQUAL", "LESS", "LESS_OR_EQUAL", "WITHIN"}
STRING_OPERATORS = {"CONTAIN", "IS", "START_WITH", "END_WITH", "ANY_OF"}
NULLARY = {"EMPTY"}
TWO_VALUES = {"BETWEEN", "WITHIN"}
ALL_BASE_OPERATORS = DATE_OPERATORS | NUMBER_OPERATORS | STRING_OPERATORS | NULLARY


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str  # base operator, without _NOT
    negated: bool
    values: tuple


@dataclass(frozen=True)
class BoolOp:
    op: str  # "AND" or "OR"
    parts: tuple


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lparen>\() | (?P<rparen>\)) | (?P<lbrack>\[) | (?P<rbrack>\]) | (?P<comma>,) |
        "(?P<dq>(?:[^"\\]|\\.)*)" | '(?P<sq>(?:[^'\\]|\\.)*)' |
        (?P<word>[^\s()\[\],"']+)
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FilterError(f"unexpected character at position {pos}: {text[pos:pos + 10]!r}")
        pos = match.end()
        kind = match.lastgroup
        if kind in ("dq", "sq"):
            out.append(("string", re.sub(r"\\(.)", r"\1", match.group(kind))))
        else:
            out.append((kind, match.group(kind)))
    return out


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("unexpected end of query")
        self.pos += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1].upper() == word:
            self.pos += 1
            return True
        return False

    def parse(self):
        if not self.tokens:
            raise FilterError("empty query")
        node = self.or_expr()
        if self.peek() is not None:
            raise FilterError(f"unexpected {self.peek()[1]!r}")
        return node

    def or_expr(self):
        parts = [self.and_expr()]
        while self.keyword("OR"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else BoolOp("OR", tuple(parts))

    def and_expr(self):
        parts = [self.factor()]
        while self.keyword("AND"):
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else BoolOp("AND", tuple(parts))

    def factor(self):
        token = self.take()
        if token[0] == "lparen":
            node = self.or_expr()
            if self.take()[0] != "rparen":
                raise FilterError("missing ')'")
            return node
        if token[0] != "word":
            raise FilterError(f"expected a field name, got {token[1]!r}")
        field = token[1]
        kind, raw_op = self.take()
        if kind != "word":
            raise FilterError(f"expected an operator after {field!r}, got {raw_op!r}")
        operator = raw_op.upper()
        if operator == "ENDWITH":
            operator = "END_WITH"
        negated = operator.endswith("_NOT")
        base = operator[: -len("_NOT")] if negated else operator
        if base == "ENDWITH":
            base = "END_WITH"
        if base not in ALL_BASE_OPERATORS:
            raise FilterError(f"unknown operator {raw_op!r}")
        if base in NULLARY:
            return Condition(field, base, negated, ())
        values = self.values()
        if base in TWO_VALUES and len(values) != 2:
            raise FilterError(f"{operator} takes two values")
        if base not in TWO_VALUES and base != "ANY_OF" and len(values) != 1:
            raise FilterError(f"{operator} takes one value")
        return Condition(field, base, negated, tuple(values))

    def values(self) -> list[str]:
        kind, text = self.take()
        if kind == "lbrack":
            out = []
            while True:
                kind, text = self.take()
                if kind not in ("string", "word"):
                    raise FilterError(f"expected a value in the list, got {text!r}")
                out.append(text)
                kind, text = self.take()
                if kind == "rbrack":
                    return out
                if kind != "comma":
                    raise FilterError("expected ',' or ']' in the value list")
        if kind not in ("string", "word"):
            raise FilterError(f"expected a value, got {text!r}")
        if kind == "word" and text.upper() in ("AND", "OR"):
            raise FilterError(f"expected a value, got {text!r}")
        return [text]


def parse_query(text: str):
    """Parse a ``q`` string into Condition/BoolOp nodes (raises FilterError)."""
    return _Parser(text).parse()


# ---------------------------------------------------------------- values
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([aApP][mM])?)?$")


def parse_date_value(text: str) -> tuple[datetime, bool]:
    """A q date value as (UTC instant, has_time). Raises FilterError("Unparseable date")."""
    raw = text.strip()
    match = _US_DATE.match(raw)
    if match:
        month, day, year, hour, minute, second, ampm = match.groups()
        try:
            h = int(hour or 0)
            if ampm:
                h = h % 12 + (12 if ampm.lower() == "pm" else 0)
            value = datetime(int(year), int(month), int(day), h, int(minute or 0), int(second or 0), tzinfo=timezone.utc)
        except ValueError:
            raise FilterError(f'Unparseable date: "{text}"') from None
        return value, hour is not None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            d = date.fromisoformat(raw)
            return datetime.combine(d, time(), tzinfo=timezone.utc), False
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(f'Unparseable date: "{text}"') from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc), True


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise FilterError(f"not a number: {text!r}") from None


# ---------------------------------------------------------------- compilation
def compile_query(node, schema: dict[str, pl.DataType]) -> pl.Expr:
    """Compile a parsed q into a polars predicate over a frame with ``schema``.

    Field names match columns case-insensitively (NetSuite field ids are case-insensitive).
    """
    by_lower = {name.lower(): name for name in schema}
    return _compile(node, schema, by_lower)


def _compile(node, schema, by_lower) -> pl.Expr:
    if isinstance(node, BoolOp):
        exprs = [_compile(p, schema, by_lower) for p in node.parts]
        out = exprs[0]
        for e in exprs[1:]:
            out = (out & e) if node.op == "AND" else (out | e)
        return out
    column = by_lower.get(node.field.lower())
    if column is None:
        raise FilterError(f"Invalid search query: unknown field {node.field!r}")
    dtype = schema[column]
    col = pl.col(column)
    if node.operator == "EMPTY":
        expr = col.is_null()
        if dtype == pl.String:
            expr = expr | (col == "")
    elif dtype == pl.Boolean:
        expr = _boolean(node, col)
    elif isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        expr = _temporal(node, col, dtype)
    elif dtype.is_numeric():
        expr = _numeric(node, col)
    else:
        expr = _string(node, col)
    # a negated condition still excludes records whose field is empty, as searches do
    if node.negated:
        return col.is_not_null() & ~expr if node.operator != "EMPTY" else ~expr
    return expr.fill_null(False)


def _boolean(node: Condition, col: pl.Expr) -> pl.Expr:
    if node.operator != "IS":
        raise FilterError(f"operator {node.operator} does not apply to a boolean field {node.field!r}")
    value = node.values[0].lower()
    if value not in ("true", "false", "t", "f"):
        raise FilterError(f"not a boolean: {node.values[0]!r}")
    return col == (value in ("true", "t"))


def _numeric(node: Condition, col: pl.Expr) -> pl.Expr:
    op = node.operator
    if op not in NUMBER_OPERATORS:
        raise FilterError(f"operator {op} does not apply to a numeric field {node.field!r}")
    nums = [_number(v) for v in node.values]
    if op == "EQUAL":
        return col == nums[0]
    if op == "GREATER":
        return col > nums[0]
    if op == "GREATER_OR_EQUAL":
        return col >= nums[0]
    if op == "LESS":
        return col < nums[0]
    if op == "LESS_OR_EQUAL":
        return col <= nums[0]
    if op in ("BETWEEN", "WITHIN"):
        low, high = sorted(nums)
        return (col >= low) & (col <= high)
    return col.cast(pl.Float64).is_in(nums)  # ANY_OF


def _string(node: Condition, col: pl.Expr) -> pl.Expr:
    op = node.operator
    if op not in STRING_OPERATORS:
        raise FilterError(f"operator {op} does not apply to a text field {node.field!r}")
    # NetSuite text searches are case-insensitive
    lowered = col.str.to_lowercase()
    values = [v.lower() for v in node.values]
    if op == "IS":
        return lowered == values[0]
    if op == "CONTAIN":
        return lowered.str.contains(values[0], literal=True)
    if op == "START_WITH":
        return lowered.str.starts_with(values[0])
    if op == "END_WITH":
        return lowered.str.ends_with(values[0])
    return lowered.is_in(values)  # ANY_OF


def _temporal(node: Condition, col: pl.Expr, dtype) -> pl.Expr:
    op = node.operator
    if op not in DATE_OPERATORS:
        raise FilterError(f"operator {op} does not apply to a date field {node.field!r}")
    parsed = [parse_date_value(v) for v in node.values]
    if dtype == pl.Date:
        # a calendar-day field: compare days, whatever time the value carries
        days = [p[0].date() for p in parsed]
        if op == "WITHIN":
            return (col >= min(days)) & (col <= max(days))
        d = days[0]
        return {
            "AFTER": col > d,
            "BEFORE": col < d,
            "ON": col == d,
            "ON_OR_AFTER": col >= d,
            "ON_OR_BEFORE": col <= d,
        }[op]
    if op == "WITHIN":
        (start, _), (end, end_has_time) = sorted(parsed, key=lambda p: p[0])
        if end_has_time:
            return (col >= start) & (col <= end)
        return (col >= start) & (col < end + timedelta(days=1))  # through the whole last day
    instant, has_time = parsed[0]
    if has_time:
        return {
            "AFTER": col > instant,
            "BEFORE": col < instant,
            "ON": col == instant,
            "ON_OR_AFTER": col >= instant,
            "ON_OR_BEFORE": col <= instant,
        }[op]
    day_start, next_day = instant, instant + timedelta(days=1)
    return {
        "AFTER": col >= next_day,
        "BEFORE": col < day_start,
        "ON": (col >= day_start) & (col < next_day),
        "ON_OR_AFTER": col >= day_start,
        "ON_OR_BEFORE": col < next_day,
    }[op]
