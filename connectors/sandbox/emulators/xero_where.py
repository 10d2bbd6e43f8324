"""Xero's ``where`` and ``order`` query parameters: a parser and evaluator over rendered records.

Xero evaluates ``where`` as a .NET Dynamic LINQ expression on the API object, so the subset
clients use is what this module understands:

- comparisons ``==`` ``!=`` ``>`` ``<`` ``>=`` ``<=`` (``=`` and ``<>`` as Dynamic LINQ allows);
- ``AND`` / ``&&``, ``OR`` / ``||``, ``NOT`` / ``!``, parentheses;
- literals: ``"text"``, numbers, ``true``, ``false``, ``null``, ``DateTime(2026,01,01)``
  (optionally with hour, minute, second), ``DateTime.Parse("2026-01-01T00:00:00")`` and
  ``Guid("...")``;
- field paths such as ``Contact.ContactID``, and the string methods ``Contains``,
  ``StartsWith``, ``EndsWith``, ``ToString``, ``ToLower``, ``ToUpper``, ``Trim`` and ``Equals``.

Records are the dicts the emulator renders; ``/Date(...)/`` strings compare as instants. A bad
expression raises :class:`QueryParseError`, which the emulator answers as Xero does: 400 with
``ErrorNumber`` 16 and ``Type`` ``QueryParseException``.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


class QueryParseError(ValueError):
    """The ``where`` or ``order`` text is not a valid expression (Xero's QueryParseException)."""


def ms_date_value(text: str) -> datetime | None:
    """The instant of a ``/Date(1539993600000+0000)/`` string, or None when it is not one."""
    match = _MS_DATE.match(text)
    if not match:
        return None
    return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=timezone.utc)


# ----------------------------------------------------------------------------- tokens
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"]|"")*")
      | (?P<char>'[^']*')
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>==|!=|<>|>=|<=|&&|\|\||[=<>!(),.])
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryParseError(f"Syntax error at position {pos}")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "char":
            # Dynamic LINQ reads single quotes as a character literal
            if len(value) != 3:
                raise QueryParseError("Character literal must contain exactly one character")
            kind, value = "string", '"' + value[1] + '"'
        tokens.append(_Token(kind, value, match.start(kind)))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


# ----------------------------------------------------------------------------- AST
Evaluator = Callable[[dict], Any]

_STRING_METHODS = {"contains", "startswith", "endswith", "tostring", "tolower", "toupper",
                   "tolowerinvariant", "toupperinvariant", "trim", "equals"}
_DATE_PARTS = {"year", "month", "day", "hour", "minute", "second", "date"}


class _Parser:
    def __init__(self, text: str, known_fields: set[str] | None, type_name: str):
        self.tokens = _tokenize(text)
        self.i = 0
        self.known = known_fields
        self.type_name = type_name

    # -- token helpers
    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def accept(self, *texts: str) -> _Token | None:
        tok = self.tok
        if tok.kind in ("op", "ident") and (tok.text in texts or tok.text.upper() in texts):
            self.i += 1
            return tok
        return None

    def expect(self, text: str) -> None:
        if not self.accept(text):
            raise QueryParseError(f"'{text}' expected")

    # -- grammar
    def parse(self) -> Evaluator:
        if self.tok.kind == "end":
            raise QueryParseError("Expression expected")
        node = self.or_expr()
        if self.tok.kind != "end":
            raise QueryParseError(f"Syntax error '{self.tok.text}'")
        return node

    def or_expr(self) -> Evaluator:
        left = self.and_expr()
        while self.accept("OR", "||"):
            right = self.and_expr()
            left = (lambda a, b: lambda r: _truth(a(r)) or _truth(b(r)))(left, right)
        return left

    def and_expr(self) -> Evaluator:
        left = self.not_expr()
        while self.accept("AND", "&&"):
            right = self.not_expr()
            left = (lambda a, b: lambda r: _truth(a(r)) and _truth(b(r)))(left, right)
        return left

    def not_expr(self) -> Evaluator:
        if self.accept("NOT", "!"):
            inner = self.not_expr()
            return lambda r: not _truth(inner(r))
        return self.comparison()

    def comparison(self) -> Evaluator:
        left = self.postfix()
        tok = self.tok
        if tok.kind == "op" and tok.text in ("==", "=", "!=", "<>", ">", "<", ">=", "<="):
            self.take()
            right = self.postfix()
            return _compare(tok.text, left, right)
        return left

    def postfix(self) -> Evaluator:
        node = self.primary()
        while self.accept("."):
            name = self.take()
            if name.kind != "ident":
                raise QueryParseError("Identifier expected")
            if self.accept("("):
                args = self.arguments()
                node = _method(name.text, node, args)
            else:
                part = name.text
                if part.lower() not in _DATE_PARTS:
                    raise QueryParseError(f"No property or field '{part}' exists in this value")
                node = (lambda inner, p: lambda r: _date_part(inner(r), p))(node, part.lower())
        return node

    def arguments(self) -> list[Evaluator]:
        args: list[Evaluator] = []
        if self.accept(")"):
            return args
        while True:
            args.append(self.or_expr())
            if self.accept(")"):
                return args
            self.expect(",")

    def primary(self) -> Evaluator:
        tok = self.take()
        if tok.kind == "string":
            value = tok.text[1:-1].replace('""', '"')
            return lambda r: value
        if tok.kind == "number":
            number = float(tok.text) if "." in tok.text else int(tok.text)
            return lambda r: number
        if tok.kind == "op" and tok.text == "(":
            inner = self.or_expr()
            self.expect(")")
            return inner
        if tok.kind != "ident":
            raise QueryParseError("Expression expected")
        word = tok.text
        lowered = word.lower()
        if lowered == "true":
            return lambda r: True
        if lowered == "false":
            return lambda r: False
        if lowered == "null":
            return lambda r: None
        if word == "DateTime":
            return self.datetime_literal()
        if word in ("Guid", "GUID", "guid"):
            self.expect("(")
            arg = self.take()
            if arg.kind != "string":
                raise QueryParseError("Guid literal expected")
            self.expect(")")
            try:
                value = uuid.UUID(arg.text[1:-1])
            except ValueError:
                raise QueryParseError(f"Unrecognized Guid format: {arg.text}") from None
            return lambda r: value
        return self.field(word)

    def datetime_literal(self) -> Evaluator:
        if self.accept("."):
            method = self.take()
            if method.text != "Parse":
                raise QueryParseError(f"No applicable method '{method.text}' exists in type 'DateTime'")
            self.expect("(")
            arg = self.take()
            if arg.kind != "string":
                raise QueryParseError("String literal expected")
            self.expect(")")
            try:
                value = datetime.fromisoformat(arg.text[1:-1].replace("Z", "+00:00"))
            except ValueError:
                raise QueryParseError(f"String was not recognized as a valid DateTime: {arg.text}") from None
            value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
            return lambda r: value.astimezone(timezone.utc)
        self.expect("(")
        parts: list[int] = []
        while True:
            arg = self.take()
            if arg.kind != "number" or "." in arg.text:
                raise QueryParseError("DateTime arguments must be integers")
            parts.append(int(arg.text))
            if self.accept(")"):
                break
            self.expect(",")
        if len(parts) not in (3, 6):
            raise QueryParseError(f"No matching constructor in type 'DateTime' for {len(parts)} arguments")
        try:
            value = datetime(*parts, tzinfo=timezone.utc)
        except ValueError as exc:
            raise QueryParseError(f"Invalid DateTime: {exc}") from None
        return lambda r: value

    def field(self, first: str) -> Evaluator:
        if self.known is not None and first not in self.known:
            raise QueryParseError(f"No property or field '{first}' exists in type '{self.type_name}'")
        path = [first]
        # a following '.Name' that is not a call and not a date part is a nested field
        while self.tok.text == "." and self.tokens[self.i + 1].kind == "ident":
            nxt = self.tokens[self.i + 1]
            after = self.tokens[self.i + 2]
            if after.text == "(" or nxt.text.lower() in _DATE_PARTS:
                break
            self.i += 2
            path.append(nxt.text)
        return lambda r: resolve_path(r, path)


def resolve_path(record: dict, path: list[str]) -> Any:
    """The value at ``path`` in a rendered record; ``/Date(...)/`` strings become instants."""
    value: Any = record
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    if isinstance(value, str):
        instant = ms_date_value(value)
        if instant is not None:
            return instant
    return value


def _truth(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    raise _EvalError("Expression of type 'Boolean' expected")


class _EvalError(QueryParseError):
    pass


def _normalise_pair(a: Any, b: Any) -> tuple[Any, Any]:
    # Guid literals compare with the uuid strings the API renders
    if isinstance(a, uuid.UUID) or isinstance(b, uuid.UUID):
        return (str(a).lower() if a is not None else None, str(b).lower() if b is not None else None)
    if isinstance(a, bool) or isinstance(b, bool):
        return a, b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a), float(b)
    return a, b


def _compare(op: str, left: Evaluator, right: Evaluator) -> Evaluator:
    def evaluate(record: dict) -> bool:
        a, b = _normalise_pair(left(record), right(record))
        if op in ("==", "="):
            return a == b
        if op in ("!=", "<>"):
            return a != b
        if a is None or b is None:
            return False
        if type(a) is not type(b) and not (isinstance(a, datetime) and isinstance(b, datetime)):
            raise _EvalError(f"Operator '{op}' incompatible with operand types '{type(a).__name__}' and '{type(b).__name__}'")
        if op == ">":
            return a > b
        if op == "<":
            return a < b
        if op == ">=":
            return a >= b
        return a <= b

    return evaluate


def _method(name: str, target: Evaluator, args: list[Evaluator]) -> Evaluator:
    lowered = name.lower()
    if lowered not in _STRING_METHODS:
        raise QueryParseError(f"No applicable method '{name}' exists in type 'String'")
    arity = 1 if lowered in ("contains", "startswith", "endswith", "equals") else 0
    if len(args) != arity:
        raise QueryParseError(f"No applicable method '{name}' exists with {len(args)} arguments")

    def evaluate(record: dict) -> Any:
        value = target(record)
        if value is None:
            return None if arity == 0 else False
        text = str(value).lower() if isinstance(value, uuid.UUID) else (value if isinstance(value, str) else _as_text(value))
        if lowered == "tostring":
            return text
        if lowered in ("tolower", "tolowerinvariant"):
            return text.lower()
        if lowered in ("toupper", "toupperinvariant"):
            return text.upper()
        if lowered == "trim":
            return text.strip()
        arg = args[0](record)
        arg = str(arg) if arg is not None else ""
        if lowered == "contains":
            return arg in text
        if lowered == "startswith":
            return text.startswith(arg)
        if lowered == "endswith":
            return text.endswith(arg)
        return text == arg

    return evaluate


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    return str(value)


def _date_part(value: Any, part: str) -> Any:
    if not isinstance(value, datetime):
        return None
    if part == "date":
        return value.replace(hour=0, minute=0, second=0, microsecond=0)
    return getattr(value, part)


def compile_where(text: str, known_fields: set[str] | None = None, type_name: str = "Object") -> Callable[[dict], bool]:
    """Parse a ``where`` expression into a predicate over rendered records.

    ``known_fields`` (the resource's top-level field names) makes an unknown field a parse
    error, as Xero reports it; evaluation errors (comparing a date with a string, say) raise
    :class:`QueryParseError` from the predicate.
    """
    node = _Parser(text, known_fields, type_name).parse()

    def predicate(record: dict) -> bool:
        return _truth(node(record))

    return predicate


@dataclass(frozen=True)
class OrderKey:
    path: tuple[str, ...]
    descending: bool


def parse_order(text: str, known_fields: set[str] | None = None, type_name: str = "Object") -> list[OrderKey]:
    """Parse ``order`` (``UpdatedDateUTC ASC, InvoiceNumber DESC``) into sort keys."""
    keys: list[OrderKey] = []
    for clause in text.split(","):
        words = clause.split()
        if not words:
            raise QueryParseError("Expression expected")
        if len(words) > 2:
            raise QueryParseError(f"Syntax error '{words[2]}'")
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if direction not in ("ASC", "DESC", "ASCENDING", "DESCENDING"):
            raise QueryParseError(f"Syntax error '{words[1]}'")
        path = tuple(words[0].split("."))
        if not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p) for p in path):
            raise QueryParseError(f"Syntax error '{words[0]}'")
        if known_fields is not None and path[0] not in known_fields:
            raise QueryParseError(f"No property or field '{path[0]}' exists in type '{type_name}'")
        keys.append(OrderKey(path, direction.startswith("DESC")))
    return keys


def sort_records(records: list[dict], keys: list[OrderKey]) -> list[dict]:
    """Stable multi-key sort; missing values sort first ascending, as nulls do in SQL Server."""
    out = list(records)
    for key in reversed(keys):
        def sort_value(record: dict, key=key):
            value = resolve_path(record, list(key.path))
            if value is None:
                return (0, 0)
            if isinstance(value, datetime):
                return (1, value.timestamp())
            if isinstance(value, bool):
                return (1, int(value))
            if isinstance(value, (int, float)):
                return (1, float(value))
            return (2, str(value).lower())
        out.sort(key=sort_value, reverse=key.descending)
    return out
