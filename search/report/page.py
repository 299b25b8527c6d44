"""The report's `index.html`: the best trial, every plot (its PNG embedded, a link to its
interactive HTML), why a plot is missing, and the leaderboard. The PNGs are embedded so that the
page reads the same opened from the folder, downloaded alone, or in MLflow's artifact viewer."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

INDEX_FILE = "index.html"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; border: 1px solid #eee; }
.note { color: #8a5a00; }
.basis { color: #555; font-size: 0.9em; margin-top: 0.2em; }
"""


@dataclass(frozen=True)
class Figure:
    title: str
    html: str  # the interactive file's name, next to the index
    png: Path
    caption: Optional[str] = None  # under the plot: what it rests on


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>No trial has been recorded yet.</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row.values()) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _embedded(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def render(name: str, summary: list[str], figures: list[Figure], notes: list[str],
           rows: list[dict[str, Any]], leaderboard_file: Optional[str]) -> str:
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(name)}: search "
             f"report</title><style>{_STYLE}</style></head><body>",
             f"<h1>Search report: {e(name)}</h1>",
             "<ul>" + "".join(f"<li>{e(line)}</li>" for line in summary) + "</ul>"]
    if notes:
        parts.append("<h2>Not drawn</h2><ul>" + "".join(
            f"<li class='note'>{e(note)}</li>" for note in notes) + "</ul>")
    for figure in figures:
        parts.append(f"<h2>{e(figure.title)}</h2><p><a href='{e(figure.html)}'>interactive "
                     f"version ({e(figure.html)})</a></p><img alt='{e(figure.title)}' "
                     f"src='{_embedded(figure.png)}'>"
                     + (f"<p class='basis'>{e(figure.caption)}</p>" if figure.caption else ""))
    link = f" (<a href='{e(leaderboard_file)}'>{e(leaderboard_file)}</a>)" if (
        leaderboard_file) else ""
    parts.append(f"<h2>Leaderboard{link}</h2>{table(rows)}</body></html>")
    return "\n".join(parts)
