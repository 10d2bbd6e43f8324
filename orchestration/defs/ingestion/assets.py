"""One asset per source entity: bring ``raw.<source>__<entity>`` up to date, with its checks."""
from __future__ import annotations

import inspect
import os
import sys
from datetime import timedelta

import dagster as dg

from connectors.ingest import StreamResult, run_stream

from .sources import SOURCES, SourceSpec

QUARANTINE_SHARE_LIMIT = 0.01
FRESHNESS = timedelta(hours=26)


def _progress(line: str) -> None:
    """``closeloop run`` shows progress on the terminal; Dagster's log has the same facts."""
    if os.environ.get("CLOSELOOP_PROGRESS"):
        print(line, file=sys.stderr, flush=True)


def raw_asset(source: SourceSpec, entity: str) -> dg.AssetsDefinition:
    shape = source.module.SHAPES[entity]
    name = f"{source.name}__{entity}"
    key = dg.AssetKey(["raw", name])
    description = (f"{source.title} {entity.replace('_', ' ')}, latest version of each record by "
                   f"{shape.key.name}, with the API payload, the source's updated time and when it was loaded. "
                   f"Incremental by {shape.updated_at.name if shape.updated_at else 'full refresh'} with a lookback; "
                   f"invalid records go to raw._quarantine with the reason.")
    checks = [
        dg.AssetCheckSpec("received_what_the_source_reported", asset=key,
                          description="Records received cover the count the source reported for this run's window."),
        dg.AssetCheckSpec("quarantine_share", asset=key,
                          description=f"At most {QUARANTINE_SHARE_LIMIT:.0%} of a run's records are quarantined."),
    ]

    @dg.asset(key=key, group_name=f"ingest_{source.name}", description=description, kinds={"duckdb", source.name},
              required_resource_keys={"warehouse", source.name}, check_specs=checks,
              tags={"closeloop/layer": "raw", "closeloop/accounting": str(source.accounting).lower()})
    def _ingest(context) -> dg.MaterializeResult:
        client = getattr(context.resources, source.name).client()
        store = context.resources.warehouse.raw_store()
        # a connector that plans its window from what is already landed (EasyPost) asks for the store
        wants_store = "store" in inspect.signature(source.module.streams).parameters
        all_streams = source.module.streams(client, store=store) if wants_store else source.module.streams(client)
        stream = next(s for s in all_streams if s.entity == entity)

        def on_page(result: StreamResult) -> None:
            if result.pages % 10 == 0:
                _progress(f"  {name}: {result.records:,} records in {result.pages} pages...")

        result = run_stream(store, stream, on_page=on_page)
        _progress(f"{name}: {result.records:,} records, {result.loaded:,} loaded, {result.quarantined:,} quarantined, "
                  f"{result.pages} pages in {result.seconds:.1f}s{' (resumed)' if result.resumed else ''}")
        context.log.info(f"{name}: {result}")
        received = result.loaded + result.quarantined
        share = result.quarantined / result.records if result.records else 0.0
        return dg.MaterializeResult(
            metadata={
                "records": result.records, "loaded": result.loaded, "quarantined": result.quarantined,
                "pages": result.pages, "seconds": round(result.seconds, 2), "resumed": result.resumed,
                "cursor": str(result.cursor) if result.cursor else "none",
                "rows_in_table": store.count(source.name, entity),
                "quarantine_reasons": dict(result.reasons),
                "dagster/row_count": store.count(source.name, entity),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name="received_what_the_source_reported",
                    passed=result.reported_total is None or received >= result.reported_total,
                    metadata={"received": received, "reported": result.reported_total if result.reported_total is not None else -1}),
                dg.AssetCheckResult(
                    check_name="quarantine_share", passed=share <= QUARANTINE_SHARE_LIMIT,
                    severity=dg.AssetCheckSeverity.WARN, metadata={"share": round(share, 4), "reasons": dict(result.reasons)}),
            ],
        )

    return _ingest


def raw_assets() -> list[dg.AssetsDefinition]:
    return [raw_asset(source, entity) for source in SOURCES for entity in source.entities]


@dg.definitions
def defs() -> dg.Definitions:
    assets = raw_assets()
    freshness = dg.build_last_update_freshness_checks(assets=assets, lower_bound_delta=FRESHNESS)
    return dg.Definitions(assets=assets, asset_checks=freshness)
