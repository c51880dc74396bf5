"""Three chart shapes as self-contained SVG text: bars, lines over time, a histogram.

Hand-written on purpose: the report and the asset pages need these three shapes only, the output
must work with nothing fetched from anywhere (no CDN, no script), and a plotting library would
add tens of megabytes and a second of import for it. Every value shown is also written as text
(labels, a <title> per mark), so the picture never hides the number.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH = 640
COLORS = ("#4f46e5", "#0d9488", "#d97706", "#dc2626", "#7c3aed", "#2563eb")
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _svg(height: int, body: list[str], title: str, width: int = WIDTH) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}"><rect width="100%" height="100%" fill="white"/>'
        f'<text x="8" y="18" {FONT} font-weight="bold">{escape(title)}</text>' + "".join(body) + "</svg>"
    )


def bars(title: str, items: Sequence[tuple[str, float]], *, note: str = "") -> str:
    """Horizontal bars, one per (label, value), each with its value and share of the first."""
    row, top, left = 26, 30, 190
    height = top + row * max(len(items), 1) + (24 if note else 10)
    largest = max((v for _, v in items), default=0) or 1
    first = items[0][1] if items else 0
    body = []
    for i, (label, value) in enumerate(items):
        y = top + i * row
        width = (WIDTH - left - 110) * value / largest
        share = f" ({100 * value / first:.0f}%)" if first and i else ""
        body.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" {FONT}>{escape(label)}</text>'
            f'<rect x="{left}" y="{y + 3}" width="{width:.1f}" height="17" fill="{COLORS[0]}">'
            f"<title>{escape(label)}: {value:g}{share}</title></rect>"
            f'<text x="{left + width + 6:.1f}" y="{y + 15}" {FONT}>{value:g}{share}</text>'
        )
    if note:
        body.append(f'<text x="8" y="{height - 8}" {FONT} fill="#555">{escape(note)}</text>')
    return _svg(height, body, title)


def lines(title: str, x_labels: Sequence[str], series: dict[str, Sequence[float | None]], *, y_label: str = "") -> str:
    """One line per series over the same x positions (e.g. one point per sync run)."""
    height, left, top, bottom, plot_w = 310, 56, 44, 46, 420
    legend = max((len(f"{name} ({max((v for v in points if v is not None), default=0):g})") for name, points in series.items()), default=10)
    right = 40 + 7 * legend  # room for the longest legend line, so no name is cut
    width = left + plot_w + right
    plot_h = height - top - bottom
    values = [v for points in series.values() for v in points if v is not None]
    high = max(values, default=1) or 1
    n = max(len(x_labels), 1)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / high

    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>',
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#999"/>']
    for tick in (0, high / 2, high):
        body.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" {FONT}>{tick:g}</text>')
    if y_label:
        body.append(f'<text x="{left}" y="{top - 10}" {FONT} fill="#555">{escape(y_label)}</text>')
    step = max(1, n // 6)
    for i in range(0, n, step):
        body.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 16}" text-anchor="middle" {FONT}>{escape(x_labels[i])}</text>')
    for k, (name, points) in enumerate(series.items()):
        color = COLORS[k % len(COLORS)]
        coords = [(x(i), y(v), v) for i, v in enumerate(points) if v is not None]
        if len(coords) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in coords)
            body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for (px, py, v), i in zip(coords, range(len(coords))):
            body.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color}"><title>{escape(name)}: {v:g}</title></circle>')
        ly = top + 14 + 18 * k
        last = f" ({coords[-1][2]:g})" if coords else ""
        body.append(f'<rect x="{left + plot_w + 12}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
                    f'<text x="{left + plot_w + 26}" y="{ly}" {FONT}>{escape(name)}{last}</text>')
    return _svg(height, body, title, width)


def histogram(title: str, counts: Sequence[int], edges: Sequence[float], *, note: str = "") -> str:
    """Columns for counts[i] of values in [edges[i], edges[i + 1])."""
    height, left, top, bottom = 200, 40, 30, 40
    plot_w, plot_h = WIDTH - left - 20, height - top - bottom
    high = max(counts, default=0) or 1
    w = plot_w / max(len(counts), 1)
    body = []
    for i, count in enumerate(counts):
        h = plot_h * count / high
        label = f"{edges[i]:g}-{edges[i + 1]:g}"
        body.append(
            f'<rect x="{left + i * w + 1:.1f}" y="{top + plot_h - h:.1f}" width="{w - 2:.1f}" height="{h:.1f}" fill="{COLORS[1]}">'
            f"<title>{label}: {count}</title></rect>"
            f'<text x="{left + i * w + w / 2:.1f}" y="{top + plot_h - h - 3:.1f}" text-anchor="middle" {FONT}>{count}</text>'
            f'<text x="{left + i * w + w / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" {FONT}>{edges[i]:g}</text>'
        )
    body.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>')
    if note:
        body.append(f'<text x="8" y="{height - 6}" {FONT} fill="#555">{escape(note)}</text>')
    return _svg(height, body, title)
