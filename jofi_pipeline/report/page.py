"""`jofi-pipeline report --mode M`: one self-contained HTML file (inline SVG, no script, no CDN)."""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from pathlib import Path

from jofi_pipeline.report import pictures
from jofi_pipeline.warehouse import PublishedWarehouse

STYLE = ("body{font-family:system-ui,sans-serif;margin:24px;max-width:1320px;color:#222}"
         "section{display:flex;flex-wrap:wrap;gap:16px}svg{border:1px solid #ddd;border-radius:6px}"
         "h2{margin-top:28px}p{color:#555}")


def render(mode: str, data_dir: Path | None = None) -> str:
    published = PublishedWarehouse(mode, data_dir)
    with published.open() as reader:
        last = reader.last_published_run()
        sections = [
            ("Invitation funnel", "Invitations by the week they were created, and how far they got.",
             pictures.funnels(reader, mode)),
            ("Coverage over time", "What JOFI's capped lists say exist (total_count) against the rows the warehouse "
             "holds, per sync. A gap that grows means records leave the lists before a sync sees them.",
             [pictures.coverage(reader, mode)]),
            ("Score distributions", "Top-level scores of every test taker with a scorecard (facets left out).",
             pictures.scores(reader, mode)),
        ]
    when = f"last published run {last.run_id} ({last.status}, finished {last.finished_at})" if last else "no run"
    body = "".join(
        f"<h2>{escape(title)}</h2><p>{escape(text)}</p><section>{''.join(svgs) or '<p>(nothing yet)</p>'}</section>"
        for title, text, svgs in sections
    )
    made = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>JOFI {escape(mode)} warehouse</title>"
        f"<style>{STYLE}</style></head><body><h1>JOFI warehouse: {escape(mode)}</h1>"
        f"<p>{escape(str(published.path))}: {escape(when)}. Made {made}.</p>{body}</body></html>"
    )


def write_report(mode: str, out: Path, data_dir: Path | None = None) -> Path:
    out.write_text(render(mode, data_dir), encoding="utf-8")
    return out
