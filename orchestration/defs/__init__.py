"""Dagster definitions by concept: ingestion, reconciliation, planning, write-back."""
