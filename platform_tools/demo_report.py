"""A small self-contained HTML report of a demo run, with charts from the dbt marts.

Charts are drawn with matplotlib and embedded as PNG data URIs, so the file
opens anywhere, offline, with nothing beside it.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import duckdb
import matplotlib

matplotlib.use("Agg")  # no display: render to memory
import matplotlib.pyplot as plt

_DEVICES_PLOTTED = 6


def _png(figure: plt.Figure) -> str:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=96)
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _measurement_chart(con: duckdb.DuckDBPyConnection, column: str, label: str) -> str:
    """Hourly average of a measurement per device, for the devices with most readings."""
    rows = con.sql(
        f"""
        with top as (
            select device_id from analytics.fct_device_hourly
            group by 1 order by sum(reading_count) desc, 1 limit {_DEVICES_PLOTTED}
        )
        select h.device_id, h.reading_hour, h.{column}
        from analytics.fct_device_hourly h join top using (device_id)
        where h.{column} is not null
        order by h.device_id, h.reading_hour
        """
    ).fetchall()
    figure, axes = plt.subplots(figsize=(9, 3.2))
    for device in sorted({r[0] for r in rows}):
        points = [(r[1], r[2]) for r in rows if r[0] == device]
        axes.plot([p[0] for p in points], [p[1] for p in points], label=device, linewidth=1.2)
    axes.set_ylabel(label)
    axes.set_title(f"{label}, hourly average per device")
    axes.legend(fontsize=7, ncol=3)
    figure.autofmt_xdate()
    return _png(figure)


def _bar_chart(rows: list[tuple[str, int]], title: str, color: str) -> str:
    figure, axes = plt.subplots(figsize=(5, 3))
    axes.bar([r[0] for r in rows], [r[1] for r in rows], color=color)
    axes.set_title(title)
    for index, (_, value) in enumerate(rows):
        axes.annotate(str(value), (index, value), ha="center", va="bottom", fontsize=8)
    return _png(figure)


def write_report(warehouse: Path, out: Path, counts: dict[str, int]) -> Path:
    """Write the HTML report for the warehouse's marts and the run's stage counts."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        temperature = _measurement_chart(con, "avg_temperature", "Temperature (C)")
        humidity = _measurement_chart(con, "avg_humidity", "Humidity (%RH)")
        alerts = con.sql(
            "select alert_code, count(*) from analytics.fct_alerts group by 1 order by 1"
        ).fetchall()
        health = con.sql(
            "select health_status, count(*) from analytics.dim_devices group by 1 order by 1"
        ).fetchall()
    charts = [
        temperature,
        humidity,
        _bar_chart(alerts, "Alerts by type", "#d9534f"),
        _bar_chart(health, "Devices by health status", "#5b8def"),
    ]
    count_rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{value}</td></tr>" for label, value in counts.items()
    )
    images = "".join(f'<img src="{chart}" alt="chart">' for chart in charts)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>IoT platform demo report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}
td{{padding:.2em 1em;border-bottom:1px solid #ddd}} img{{display:block;margin:1em 0}}</style>
</head><body>
<h1>IoT platform demo report</h1>
<h2>Counts at every stage</h2><table>{count_rows}</table>
<h2>Charts</h2>{images}
</body></html>
""",
        encoding="utf-8",
    )
    return out
