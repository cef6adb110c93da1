"""Figures, the printed table and the JSON file."""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    """One figure of the issue's table: a value and, when it has one, its target."""

    key: str
    label: str
    value: float
    unit: str
    workload: str
    #: Upper bound the value must not exceed (None: reported only).
    target: float | None = None
    #: How the target reads when it is not a plain bound ("reported", "no collapse").
    target_text: str | None = None
    #: Whether the target is met (None: no target).
    met: bool | None = None
    #: What the value was computed from (the two sides of a ratio, per-run medians...).
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.met is None and self.target is not None and math.isfinite(self.value):
            self.met = self.value <= self.target

    def target_str(self) -> str:
        """The target as printed."""
        if self.target_text is not None:
            return self.target_text
        if self.target is None:
            return "reported"
        return f"<= {_number(self.target, self.unit)}"

    def to_json(self) -> dict[str, Any]:
        """JSON form of the figure."""
        return {
            "key": self.key,
            "label": self.label,
            "value": _finite(self.value),
            "unit": self.unit,
            "workload": self.workload,
            "target": self.target,
            "target_text": self.target_str(),
            "met": self.met,
            "detail": self.detail,
            "data": self.data,
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _number(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return "n/a"
    if unit == "x":
        return f"{value:.2f}"
    if unit in ("ms", "GB/s", "MiB"):
        return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{value:.3g} {unit}"


def _status(figure: Figure) -> str:
    if figure.met is None:
        return "-"
    return "met" if figure.met else "MISSED"


def table(figures: list[Figure]) -> str:
    """Return the figures as a Markdown table (also readable as plain text)."""
    rows = [["figure", "value", "target", "status", "workload", "measured"]]
    for figure in figures:
        rows.append(
            [
                figure.label,
                _number(figure.value, figure.unit),
                figure.target_str(),
                _status(figure),
                figure.workload,
                figure.detail,
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if index == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the run ran on."""
    memory = None
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    memory = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    model = None
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": load,
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write the results document (figures, settings, machine) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
