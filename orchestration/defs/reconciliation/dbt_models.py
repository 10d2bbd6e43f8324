"""The dbt project's models as Dagster assets, downstream of the raw ingestion assets.

Each dbt source ``<source>.<entity>`` is the raw asset ``raw/<source>__<entity>`` that
ingestion materializes, so the asset graph runs from the APIs through raw tables into staging
(and later the marts). dbt's data tests are the assets' checks. The models are grouped as
``reconciliation``; they are not in the daily job yet (reconciliation adds itself there once
its marts exist).

The manifest is made offline with ``dbt parse`` whenever it is missing or older than the
project's files, one per accounting system: which accounting staging models are enabled
depends on ``ACCOUNTING_SYSTEM``.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from ..ingestion.resources import default_warehouse_path
from ..ingestion.sources import accounting_system

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"
GROUP = "reconciliation"
# what dbt reads to build the manifest: a change to any of these makes the manifest stale
PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "models", "macros", "tests", "seeds", "snapshots", "analyses")


def dbt_executable() -> str:
    """The dbt installed beside this Python (the venv's), else the first one on PATH: a run started
    without activating the venv (closeloop run, the Dagster UI) still finds it."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def dbt_cli(project: DbtProject) -> DbtCliResource:
    """The resource the dbt assets run dbt with."""
    return DbtCliResource(project_dir=project, dbt_executable=dbt_executable())


def dbt_project(system: str | None = None) -> DbtProject:
    """closeloop's dbt project, its target folder per accounting system (target/<system>)."""
    system = system or accounting_system()
    return DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path=Path("target") / system)


def _newest_project_file_time() -> float:
    """When the dbt project's sources (SQL, yml, macros, settings) last changed."""
    newest = 0.0
    for name in PROJECT_FILES:
        path = DBT_PROJECT_DIR / name
        files = [path] if path.is_file() else (path.rglob("*") if path.is_dir() else [])
        for file in files:
            if file.is_file():
                newest = max(newest, file.stat().st_mtime)
    return newest


def prepared_manifest(project: DbtProject) -> Path:
    """The project's manifest.json, parsed again (offline: no packages) when missing or stale."""
    manifest = project.manifest_path
    if not manifest.exists() or manifest.stat().st_mtime < _newest_project_file_time():
        # dbt parse reads ACCOUNTING_SYSTEM through var('accounting_system') and the target folder
        # is per system, so the two manifests never overwrite each other. It parses into a folder
        # of its own and the manifest moves into place in one step: two processes loading the
        # definitions at once never read a half-written manifest
        (project.project_dir / "target").mkdir(exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f"parse-{os.getpid()}-", dir=project.project_dir / "target"))
        try:
            parsed = subprocess.run(
                [dbt_executable(), "parse", "--quiet", "--project-dir", str(project.project_dir),
                 "--profiles-dir", str(project.profiles_dir), "--target-path", str(scratch), "--log-path", str(scratch)],
                cwd=project.project_dir, capture_output=True, text=True)
            if parsed.returncode != 0:
                raise RuntimeError(f"dbt parse failed in {project.project_dir}:\n{(parsed.stdout + parsed.stderr)[-3000:]}")
            manifest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(scratch / "manifest.json", manifest)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return manifest


class CloseloopDbtTranslator(DagsterDbtTranslator):
    """dbt sources are the raw ingestion assets; models are keyed by schema and name."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            # the source's table is raw.<source>__<entity>: the very asset ingestion materializes
            table = dbt_resource_props.get("identifier") or f"{dbt_resource_props['source_name']}__{dbt_resource_props['name']}"
            return dg.AssetKey(["raw", table])
        schema = dbt_resource_props.get("config", {}).get("schema") or dbt_resource_props.get("schema")
        return dg.AssetKey([schema, dbt_resource_props["name"]]) if schema else dg.AssetKey([dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return GROUP

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        layer = dbt_resource_props.get("fqn", ["", "model"])[1] if dbt_resource_props["resource_type"] == "model" else "raw"
        return {**super().get_tags(dbt_resource_props), "closeloop/layer": layer}


def warehouse_path() -> str:
    """The warehouse file dbt builds into: the one ingestion writes, as an absolute path, because
    dbt runs from the project folder and a relative CLOSELOOP_DATA_DIR would point elsewhere."""
    return str(Path(os.environ.get("CLOSELOOP_WAREHOUSE") or default_warehouse_path()).resolve())


def dbt_model_assets(project: DbtProject) -> dg.AssetsDefinition:
    """Every enabled dbt model as an asset (one multi-asset running ``dbt build``), tests as checks."""
    translator = CloseloopDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    @dbt_assets(manifest=prepared_manifest(project), dagster_dbt_translator=translator, project=project,
                name="closeloop_dbt_models")
    def closeloop_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator:
        """Build the selected dbt models and run their tests (each test is an asset check)."""
        # dbt is a subprocess that reads the warehouse path from its profile's environment
        os.environ["CLOSELOOP_WAREHOUSE"] = warehouse_path()
        yield from dbt.cli(["build"], context=context).stream()

    return closeloop_dbt_models


@dg.definitions
def defs() -> dg.Definitions:
    project = dbt_project()
    return dg.Definitions(assets=[dbt_model_assets(project)], resources={"dbt": dbt_cli(project)})
