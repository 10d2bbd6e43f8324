"""The Dagster entry point: every definition under ``orchestration/defs/``, by concept.

``dagster dev -m orchestration.definitions`` serves them; ``closeloop run`` materializes the
daily job in-process.
"""
from __future__ import annotations

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
