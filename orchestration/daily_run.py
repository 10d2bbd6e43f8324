"""Materialize the daily job once, in this process: what ``closeloop run`` and the schedule do."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg


@dataclass
class RunOutcome:
    success: bool
    materialized: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    checks_failed: list[str] = field(default_factory=list)


def dagster_home() -> Path:
    """Runs are recorded in a Dagster instance under the data directory unless DAGSTER_HOME says otherwise."""
    home = Path(os.environ.get("DAGSTER_HOME") or Path(os.environ.get("CLOSELOOP_DATA_DIR", "data")) / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        # no network here or in most deployments of the sandbox: telemetry stays off
        settings.write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def run_daily(select: str | None = None, progress: bool = True) -> RunOutcome:
    if progress:
        os.environ["CLOSELOOP_PROGRESS"] = "1"
    dagster_home()
    from .definitions import defs as load_defs

    defs = load_defs()
    job = defs.resolve_job_def("daily")
    graph = defs.resolve_asset_graph()
    keys = None
    if select:
        try:
            wanted = dg.AssetSelection.from_string(select).resolve(graph)
        except Exception as exc:  # dagster raises several types for a bad selection string
            raise ValueError(f"--select {select!r}: {exc}") from None
        in_job = set(job.asset_layer.executable_asset_keys)
        keys = sorted(wanted & in_job)
        if not keys:
            raise ValueError(f"--select {select!r} matches no asset of the daily job")
    instance = dg.DagsterInstance.get()
    result = job.execute_in_process(
        instance=instance, raise_on_error=False, asset_selection=keys,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
    outcome = RunOutcome(success=result.success)
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            outcome.materialized.append(event.asset_key.to_user_string())
        elif event.event_type_value == "STEP_FAILURE":
            error = event.event_specific_data.error
            cause = error.cause.message if error and error.cause else (error.message if error else "failed")
            outcome.failures.append(f"{event.step_key}: {cause.strip().splitlines()[-1] if cause else 'failed'}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                outcome.checks_failed.append(f"{evaluation.asset_key.to_user_string()}: {evaluation.check_name}")
    return outcome


def print_outcome(outcome: RunOutcome) -> None:
    out = sys.stderr
    print(f"materialized {len(outcome.materialized)} asset(s)", file=out)
    for check in outcome.checks_failed:
        print(f"check failed: {check}", file=out)
    for failure in outcome.failures:
        print(f"FAILED {failure}", file=out)
    print("run succeeded" if outcome.success else "run FAILED", file=out, flush=True)
