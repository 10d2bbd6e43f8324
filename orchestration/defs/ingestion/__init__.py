"""Ingestion: one asset per source entity landing in the warehouse's raw schema."""
