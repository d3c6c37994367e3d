"""Charts of results as inline SVG, drawn on the server: no script, no library, no fetch.

Why SVG text built here: the console must work without the internet and without a build
step; a bar chart and a scatter plot are a few dozen elements, and the page's Content
Security Policy forbids inline scripts anyway. Which chart: a vector (group-by counts or
means, histogram bins, regression coefficients) gets bars with its labels underneath; a
matrix of k rows (k-means centers) gets its first two columns as points; a scalar gets
none (a number is read, not looked at). Error bounds are drawn as whiskers on the bars.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from markupsafe import Markup, escape

WIDTH, HEIGHT, MARGIN = 640, 260, 40


def chart(value: np.ndarray, error: np.ndarray, labels: Sequence[str], title: str
          ) -> Markup | None:
    """The SVG for one result, or None where a chart would not help."""
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 1 and value.size > 1:
        return bars(value, np.asarray(error, dtype=np.float64).reshape(value.shape), labels,
                    title)
    if value.ndim == 2 and value.shape[1] >= 2 and value.shape[0] >= 1:
        return points(value[:, 0], value[:, 1], title)
    return None


def _frame(title: str, body: list[str]) -> Markup:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
            f'viewBox="0 0 {WIDTH} {HEIGHT + MARGIN}" aria-label="{escape(title)}">'
            f"<title>{escape(title)}</title>")
    return Markup(head + "".join(body) + "</svg>")


def _scale(lo: float, hi: float, out_lo: float, out_hi: float):
    span = (hi - lo) or 1.0
    return lambda v: out_lo + (v - lo) / span * (out_hi - out_lo)


def bars(value: np.ndarray, error: np.ndarray, labels: Sequence[str], title: str) -> Markup:
    """One bar per element from a zero baseline, labels below when they fit."""
    lo, hi = min(0.0, float((value - error).min())), max(0.0, float((value + error).max()))
    y = _scale(lo, hi, HEIGHT - 10, 10)
    step = (WIDTH - 2 * MARGIN) / value.size
    body = [f'<line class="axis" x1="{MARGIN}" x2="{WIDTH - MARGIN}" y1="{y(0):.1f}" '
            f'y2="{y(0):.1f}"/>']
    every = max(1, int(np.ceil(value.size * 14 / (WIDTH - 2 * MARGIN))))
    for i, (v, e) in enumerate(zip(value, error, strict=True)):
        x = MARGIN + i * step
        top, bottom = sorted((y(v), y(0)))
        label = labels[i] if i < len(labels) else str(i)
        body.append(f'<rect class="bar" x="{x + step * 0.1:.1f}" y="{top:.1f}" '
                    f'width="{step * 0.8:.1f}" height="{max(bottom - top, 0.5):.1f}">'
                    f"<title>{escape(label)}: {v:.6g} (± {e:.2g})</title></rect>")
        if e > 0:
            cx = x + step / 2
            body.append(f'<line class="whisker" x1="{cx:.1f}" x2="{cx:.1f}" '
                        f'y1="{y(v - e):.1f}" y2="{y(v + e):.1f}"/>')
        if i % every == 0:
            body.append(f'<text class="tick" x="{x + step / 2:.1f}" y="{HEIGHT + 14}" '
                        f'text-anchor="middle">{escape(label[:8])}</text>')
    body.append(f'<text class="tick" x="4" y="{y(hi) + 4:.1f}">{hi:.4g}</text>')
    body.append(f'<text class="tick" x="4" y="{y(lo) + 4:.1f}">{lo:.4g}</text>')
    return _frame(title, body)


def points(xs: np.ndarray, ys: np.ndarray, title: str) -> Markup:
    """Each row of a matrix as a point of its first two columns (k-means centers)."""
    pad = lambda a: (float(a.min()) - 1.0, float(a.max()) + 1.0)  # noqa: E731
    x = _scale(*pad(xs), MARGIN, WIDTH - MARGIN)
    y = _scale(*pad(ys), HEIGHT - 10, 10)
    body = [f'<line class="axis" x1="{MARGIN}" x2="{WIDTH - MARGIN}" y1="{HEIGHT - 10}" '
            f'y2="{HEIGHT - 10}"/>',
            f'<line class="axis" x1="{MARGIN}" x2="{MARGIN}" y1="10" y2="{HEIGHT - 10}"/>']
    for i, (a, b) in enumerate(zip(xs, ys, strict=True)):
        body.append(f'<circle class="point" cx="{x(a):.1f}" cy="{y(b):.1f}" r="6">'
                    f"<title>row {i}: ({a:.4g}, {b:.4g})</title></circle>")
    body.append(f'<text class="tick" x="{WIDTH / 2}" y="{HEIGHT + 14}" '
                f'text-anchor="middle">column 0 → · column 1 ↑</text>')
    return _frame(title, body)
