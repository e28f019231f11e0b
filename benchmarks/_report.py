"""What the benchmarks print and save: the load average, summary statistics, the PASS/FAIL table, the JSON."""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LOAD_WARNING = 1.5  # above this 1-minute load, other jobs compete for the two cores


def load_text() -> str:
    a, b, c = os.getloadavg()
    return f"{a:.2f} / {b:.2f} / {c:.2f}"


def check_load(where: str) -> float:
    one = os.getloadavg()[0]
    note = ""
    if one > LOAD_WARNING:
        note = f"  WARNING: above {LOAD_WARNING}: other jobs compete for the CPU, absolute times are inflated"
    print(f"[load before {where}: {load_text()} (1/5/15 min)]{note}", flush=True)
    return one


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of a non-empty sequence."""
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary(values: Sequence[float]) -> dict[str, float] | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return None
    return {
        "n": len(vals),
        "median": statistics.median(vals),
        "p95": percentile(vals, 95),
        "min": min(vals),
        "max": max(vals),
        "mean": statistics.fmean(vals),
    }


def verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "FAIL"
    return "PASS" if value <= limit else "FAIL"


class Table:
    """Rows of measure, value, target and result under a header; ``fails`` counts the FAIL results."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = [("measure", "value", "target", "result")]
        self.fails = 0

    def add(self, measure: str, value: str, target: str = "", result: str = "") -> None:
        self.fails += result == "FAIL"
        self.rows.append((measure, value, target, result))

    def print(self) -> None:
        """Columns padded to their widest cell (values right-aligned), a rule under the header."""
        widths = [max(len(r[i]) for r in self.rows) for i in range(4)]
        for i, row in enumerate(self.rows):
            print(
                "  ".join(
                    cell.rjust(widths[j]) if j == 1 else cell.ljust(widths[j]) for j, cell in enumerate(row)
                ).rstrip()
            )
            if i == 0:
                print("-" * (sum(widths) + 6))

    def outcome(self) -> str:
        return "ALL PASS" if self.fails == 0 else f"{self.fails} FAIL"


def save_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # default=str: a value JSON has no type for is saved as its text rather than failing the whole save
    path.write_text(json.dumps(payload, indent=2, default=str))
    print(f"saved {path}")
