"""Reconciliation: the dbt project (staging now, marts later) as Dagster assets with checks."""
