"""Column buffers that become parquet files, so large worlds stream to disk."""
from __future__ import annotations

from pathlib import Path

import polars as pl

from ..world import PARTITIONED, SCHEMA


class TableBuffer:
    """Rows of one world table, kept as column lists and written in parts."""

    def __init__(self, name: str, root: Path):
        self.name = name
        self.columns = list(SCHEMA[name])
        self.dtypes = {c: SCHEMA[name][c][0] for c in self.columns}
        self.data: dict[str, list] = {c: [] for c in self.columns}
        self.root = root
        self.parts = 0
        self.rows = 0

    def add(self, **row) -> None:
        for column in self.columns:
            self.data[column].append(row.get(column))

    def __len__(self) -> int:
        return len(self.data[self.columns[0]])

    def frame(self) -> pl.DataFrame:
        frame = pl.DataFrame({c: pl.Series(c, self.data[c], dtype=self.dtypes[c]) for c in self.columns})
        # APIs speak in whole seconds; so does the world, or cursors would drift by fractions
        instants = [c for c, t in self.dtypes.items() if isinstance(t, pl.Datetime)]
        return frame.with_columns(pl.col(instants).dt.truncate("1s")) if instants else frame

    def flush(self, final: bool = False) -> None:
        """Write what is buffered: a new part for partitioned tables, the whole table otherwise."""
        if self.name in PARTITIONED:
            if len(self) or (final and self.parts == 0):
                folder = self.root / self.name
                folder.mkdir(exist_ok=True)
                self.frame().write_parquet(folder / f"part-{self.parts:04d}.parquet", statistics=False)
                self.parts += 1
                self.rows += len(self)
                self.data = {c: [] for c in self.columns}
        elif final:
            self.rows = len(self)
            self.frame().write_parquet(self.root / f"{self.name}.parquet", statistics=False)
