"""The daily job: what the schedule runs every morning and ``closeloop run`` runs on demand."""
from __future__ import annotations

import dagster as dg

from .ingestion.sources import active_sources

DAILY_CRON = "0 6 * * *"


def daily_selection() -> dg.AssetSelection:
    """Ingestion of every channel-side source and of the accounting system ACCOUNTING_SYSTEM names."""
    groups = [f"ingest_{s.name}" for s in active_sources()]
    return dg.AssetSelection.groups(*groups)


@dg.definitions
def defs() -> dg.Definitions:
    daily_job = dg.define_asset_job("daily", selection=daily_selection(),
                                    description="Ingest every source, then reconcile, plan and publish.")
    return dg.Definitions(
        jobs=[daily_job],
        schedules=[dg.ScheduleDefinition(name="daily_schedule", job=daily_job, cron_schedule=DAILY_CRON,
                                         execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
                                         description="Every morning at 06:00 UTC: ingest, reconcile, plan, publish.")],
    )
