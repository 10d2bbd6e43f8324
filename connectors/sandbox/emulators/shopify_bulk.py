"""Shopify bulk query operations: validation, a background run over every record, the JSONL file.

A bulk run executes the client's query page by page (250 records of the outermost connection at
a time, every child record of nested connections) and writes one JSON object per line, nested
connection children on their own lines with ``__parentId``. The file is written as it goes, so
memory stays bounded by one page.

Status is reported deterministically: the mutation answers CREATED, the first poll (``node`` or
``currentBulkOperation``) answers RUNNING, and later polls answer COMPLETED once the file is
written. So "one bulk query at a time" holds until the client has seen the operation finish.
"""
from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from graphql import DocumentNode, FieldNode, GraphQLSchema, get_named_type, parse, validate
from graphql.error import GraphQLError

from ..world import parse_instant
from .shopify_cost import fragments_of, is_connection, operation_of, selected_fields, is_list_type
from .shopify_render import gid, iso

MAX_CONNECTIONS = 5
MAX_DEPTH = 2
WINDOW = 250
IN_PROGRESS = ("CREATED", "RUNNING", "CANCELING")
TERMINAL = ("COMPLETED", "FAILED", "CANCELED", "EXPIRED")


@dataclass
class ConnectionPlan:
    """Where nested connections sit under the nodes of one connection (paths of response keys)."""

    field: FieldNode
    children: dict[tuple[str, ...], "ConnectionPlan"] = field(default_factory=dict)


@dataclass
class BulkWindow:
    """The page of the outermost connection one execution of a bulk run asks for."""

    outer: FieldNode
    after: str | None = None
    size: int = WINDOW
    end_cursor: str | None = None
    has_next: bool = False
    offset: int = 0  # position in ``ordered``, the listing sorted once for the whole run
    ordered: object = None


@dataclass
class BulkRecord:
    id: int
    query: str
    now: str  # the sandbox instant the run reads the world at
    created_at: str
    status: str = "CREATED"  # what the run has reached
    shown: str = "CREATED"  # what clients have been told
    completed_at: str | None = None
    error_code: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    file_size: int | None = None
    cancel_requested: bool = False


def _connection_items(value) -> list:
    if not isinstance(value, dict):
        return []
    if isinstance(value.get("edges"), list):
        return [e.get("node") for e in value["edges"] if isinstance(e, dict) and e.get("node") is not None]
    if isinstance(value.get("nodes"), list):
        return [n for n in value["nodes"] if n is not None]
    return []


class BulkQueryShape:
    """The connections of a bulk query: checks the documented limits and plans the JSONL lines."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode):
        self.schema = schema
        self.fragments = fragments_of(document)
        self.problems: list[str] = []
        self.count = 0
        self.outer: ConnectionPlan | None = None
        self.outer_path: tuple[str, ...] = ()
        operation = operation_of(document, None)
        if operation is None:
            self.problems.append("Bulk queries must contain exactly one operation.")
            return
        if operation.operation.value != "query":
            self.problems.append("Bulk operations can only run queries with bulkOperationRunQuery.")
            return
        self._scan_root(schema.query_type, operation.selection_set, ())
        if self.count == 0:
            self.problems.append("Bulk queries must contain at least one connection.")
        elif self.count > MAX_CONNECTIONS:
            self.problems.append(f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections.")

    def _key(self, node: FieldNode) -> str:
        return node.alias.value if node.alias else node.name.value

    def _scan_root(self, parent_type, selection_set, path, in_list=False):
        for node, field_def in selected_fields(self.schema, parent_type, selection_set, self.fragments):
            named = get_named_type(field_def.type)
            if not hasattr(named, "fields"):
                continue
            if is_connection(named):
                self.count += 1
                if in_list:
                    self.problems.append("Queries that contain a connection field within a list field are not currently supported.")
                if self.outer is None:
                    self.outer = ConnectionPlan(node)
                    self.outer_path = path + (self._key(node),)
                    self._scan_nodes(self.outer, named, node.selection_set, 1)
                else:
                    self.problems.append("Bulk queries must have a single top-level connection.")
                continue
            self._scan_root(named, node.selection_set, path + (self._key(node),), in_list or is_list_type(field_def.type))

    def _scan_nodes(self, plan: ConnectionPlan, connection_type, selection_set, depth: int) -> None:
        for node, field_def in selected_fields(self.schema, connection_type, selection_set, self.fragments):
            name = node.name.value
            if name == "edges":
                edge_type = get_named_type(field_def.type)
                for inner, inner_def in selected_fields(self.schema, edge_type, node.selection_set, self.fragments):
                    if inner.name.value == "node":
                        self._scan_children(plan, get_named_type(inner_def.type), inner.selection_set, (), depth, False)
            elif name == "nodes":
                self._scan_children(plan, get_named_type(field_def.type), node.selection_set, (), depth, False)

    def _scan_children(self, plan, node_type, selection_set, path, depth, in_list) -> None:
        for node, field_def in selected_fields(self.schema, node_type, selection_set, self.fragments):
            named = get_named_type(field_def.type)
            if not hasattr(named, "fields"):
                continue
            key = path + (self._key(node),)
            if is_connection(named):
                self.count += 1
                if in_list:
                    self.problems.append("Queries that contain a connection field within a list field are not currently supported.")
                    continue
                if depth + 1 > MAX_DEPTH:
                    self.problems.append(f"Bulk queries cannot contain connections with a nesting depth greater than {MAX_DEPTH}.")
                    continue
                child = ConnectionPlan(node)
                plan.children[key] = child
                self._scan_nodes(child, named, node.selection_set, depth + 1)
            else:
                self._scan_children(plan, named, node.selection_set, key, depth, in_list or is_list_type(field_def.type))

    # ---- JSONL lines
    def lines(self, node: dict, plan: ConnectionPlan, parent_id: str | None):
        """The JSONL objects for one node: itself (children connections removed), then its children."""
        line = json.loads(json.dumps(node))  # a deep copy we may prune
        nested: list[tuple[list, ConnectionPlan]] = []
        for path, child in plan.children.items():
            holder = line
            for key in path[:-1]:
                holder = holder.get(key) if isinstance(holder, dict) else None
            if isinstance(holder, dict) and path[-1] in holder:
                nested.append((_connection_items(holder.pop(path[-1])), child))
        if parent_id is not None:
            line["__parentId"] = parent_id
        yield line, parent_id is None
        own_id = node.get("id")
        for items, child in nested:
            for item in items:
                yield from self.lines(item, child, own_id)


Executor = Callable[[DocumentNode, datetime, BulkWindow], object]


class BulkOperations:
    """The shop's bulk operations: at most one query running, files under the world folder."""

    def __init__(self, ctx, schema: GraphQLSchema, execute: Executor):
        self.ctx = ctx
        self.schema = schema
        self.execute = execute
        self.lock = threading.Lock()
        self.folder = Path(ctx.world.path) / "shopify_bulk"
        self.records: dict[int, BulkRecord] = {}
        for written in ctx.store.all("shopify", "bulk_operation"):
            record = BulkRecord(**written.payload)
            self.records[record.id] = record
        for record in self.records.values():
            if record.status in ("CREATED", "RUNNING"):
                # the server stopped mid-run: run it again from the start
                self._start(record)

    # ---- state
    def _save(self, record: BulkRecord) -> None:
        self.ctx.store.put("shopify", "bulk_operation", str(record.id), asdict(record), at=self.ctx.now())

    def path(self, op_id: int) -> Path:
        """Where a run's JSONL file lives."""
        return self.folder / f"{op_id}.jsonl"

    def current(self) -> BulkRecord | None:
        """The most recent bulk query (currentBulkOperation)."""
        with self.lock:
            return max(self.records.values(), key=lambda r: r.id, default=None)

    def get(self, op_id: int) -> BulkRecord | None:
        with self.lock:
            return self.records.get(op_id)

    def poll(self, record: BulkRecord) -> BulkRecord:
        """Advance what clients see by one step: CREATED -> RUNNING -> the run's own outcome."""
        with self.lock:
            if record.shown == "CREATED":
                record.shown = "RUNNING"
            elif record.shown in ("RUNNING", "CANCELING") and record.status in TERMINAL:
                record.shown = record.status
            self._save(record)
            return record

    # ---- mutations
    def run_query(self, query: str) -> tuple[BulkRecord | None, list[dict]]:
        """bulkOperationRunQuery: validate, refuse while another runs, start the run."""
        try:
            document = parse(query)
        except GraphQLError as exc:
            return None, [{"code": "INVALID", "field": ["query"], "message": f"Invalid bulk query: {exc.message}"}]
        errors = validate(self.schema, document)
        if errors:
            return None, [{"code": "INVALID", "field": ["query"], "message": f"Invalid bulk query: {errors[0].message}"}]
        shape = BulkQueryShape(self.schema, document)
        if shape.problems:
            return None, [{"code": "INVALID", "field": ["query"], "message": shape.problems[0]}]
        with self.lock:
            busy = next((r for r in self.records.values() if r.shown in IN_PROGRESS), None)
            if busy is not None:
                message = f"A bulk query operation for this app and shop is already in progress: {gid('BulkOperation', busy.id)}."
                return None, [{"code": "OPERATION_IN_PROGRESS", "field": None, "message": message}]
            now = self.ctx.now()
            record = BulkRecord(
                id=self.ctx.store.next_id("shopify_bulk_operation", 5000000000),
                query=query,
                now=now.isoformat(),
                created_at=now.isoformat(),
            )
            self.records[record.id] = record
            self._save(record)
        self._start(record)
        return record, []

    def cancel(self, op_id: int) -> tuple[BulkRecord | None, list[dict]]:
        """bulkOperationCancel: ask a run to stop; it reports CANCELING, then CANCELED."""
        with self.lock:
            record = self.records.get(op_id)
            if record is None:
                return None, [{"field": ["id"], "message": "Bulk operation does not exist"}]
            # a run that finished before the cancel arrived still reports COMPLETED, as on Shopify
            if record.shown in TERMINAL:
                return record, [{"field": ["id"], "message": f"A bulk operation cannot be canceled when it is {record.shown.lower()}"}]
            record.cancel_requested = True
            record.shown = "CANCELING"
            self._save(record)
            return record, []

    # ---- the run
    def _start(self, record: BulkRecord) -> None:
        thread = threading.Thread(target=self._run, args=(record,), name=f"shopify-bulk-{record.id}", daemon=True)
        thread.start()

    def _run(self, record: BulkRecord) -> None:
        document = parse(record.query)
        shape = BulkQueryShape(self.schema, document)
        now = parse_instant(record.now)
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path(record.id)
        partial = target.with_suffix(".part")
        with self.lock:
            record.status = "RUNNING"
        objects = roots = 0
        window = BulkWindow(outer=shape.outer.field)
        try:
            with partial.open("w", encoding="utf-8") as out:
                while True:
                    if record.cancel_requested:
                        break
                    window.has_next = False
                    result = self.execute(document, now, window)
                    if result.errors:
                        raise RuntimeError(result.errors[0].message)
                    holder = result.data
                    for key in shape.outer_path:
                        holder = holder.get(key) if isinstance(holder, dict) else None
                    for node in _connection_items(holder):
                        for line, is_root in shape.lines(node, shape.outer, None):
                            out.write(json.dumps(line, separators=(",", ":")) + "\n")
                            objects += 1
                            roots += is_root
                    with self.lock:
                        record.object_count, record.root_object_count = objects, roots
                    if not window.has_next or not window.end_cursor:
                        break
                    window.after = window.end_cursor
            partial.replace(target)
            outcome = "CANCELED" if record.cancel_requested else "COMPLETED"
            error_code = None
        except Exception:  # the run failed: report it the way Shopify does
            outcome, error_code = "FAILED", "INTERNAL_SERVER_ERROR"
        with self.lock:
            record.status = outcome
            record.error_code = error_code
            record.object_count, record.root_object_count = objects, roots
            record.file_size = target.stat().st_size if target.exists() else None
            record.completed_at = self.ctx.now().isoformat()
            self._save(record)

    # ---- rendering
    def node(self, record: BulkRecord) -> dict:
        """The BulkOperation object as clients see it now."""
        done = record.shown == "COMPLETED"
        url = None
        if done and record.object_count > 0:
            url = f"{self.ctx.base_url}/shopify/_sandbox/bulk-results/{record.id}.jsonl"
        return {
            "__typename": "BulkOperation",
            "id": gid("BulkOperation", record.id),
            "status": record.shown,
            "errorCode": record.error_code if record.shown == "FAILED" else None,
            "createdAt": iso(parse_instant(record.created_at)),
            "completedAt": iso(parse_instant(record.completed_at)) if record.shown in TERMINAL and record.completed_at else None,
            "objectCount": str(record.object_count if record.shown != "CREATED" else 0),
            "rootObjectCount": str(record.root_object_count if record.shown != "CREATED" else 0),
            "fileSize": str(record.file_size) if done and record.file_size is not None and url else None,
            "url": url,
            "partialDataUrl": None,
            "query": record.query,
            "type": "QUERY",
        }
