"""How the report writes numbers: percentages, signed points, seconds, metric values."""

from __future__ import annotations

import re
from typing import Any


def pct(x: float, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f}%"


def signed(x: float, digits: int) -> str:
    text = f"{x:+.{digits}f}"
    return text.replace("-", "+", 1) if float(text) == 0 else text  # no "-0.00"


def points(diff: float) -> str:
    """A difference of two accuracies in percentage points: -0.0071 -> '-0.71 pp'."""
    return f"{signed(100 * diff, 2)} pp"


def num(x: Any) -> str:
    """Plain numbers for tables: integers with thousands separators, floats to 4 digits."""
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x.is_integer() and abs(x) >= 1000:
            return f"{int(x):,}"
        return f"{x:,.4f}".rstrip("0").rstrip(".") if abs(x) < 1000 else f"{x:,.1f}"
    return str(x)


def listed(words: list[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``; one word alone; "" for none."""
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


def seconds(s: float) -> str:
    """1234.5 -> '1,234.5 s (20.6 min)'."""
    return f"{s:,.1f} s" + (f" ({s / 60:.1f} min)" if s >= 120 else "")


def duration(s: float) -> str:
    """Sub-second timings in milliseconds, longer ones as :func:`seconds`."""
    return f"{s * 1000:.2f} ms" if s < 1 else seconds(s)


def by_name(key: str, value: Any) -> str:
    """Format a scalar read from an unknown metrics file, guided by its key's name."""
    k = key.lower()
    if value is None:
        return "n/a"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and k.endswith("points"):
        return f"{signed(float(value), 2)} pp"  # already in percentage points
    if isinstance(value, float) and not isinstance(value, bool):
        if "accuracy" in k or k.endswith("rate") or k in ("precision", "recall", "f1"):
            return pct(value) if 0.0 <= value <= 1.0 else num(value)
        if "seconds" in k:
            return seconds(value)
    return num(value)


def metric_value(metric: str, value: Any) -> str:
    return pct(value) if "accuracy" in metric else num(value)


def metric_diff(metric: str, ours: float, seed: float) -> str:
    if "accuracy" in metric:
        return points(ours - seed)
    diff = ours - seed
    return signed(diff, 0) if float(diff).is_integer() else signed(diff, 4)


LATEX = {r"\geq": "≥", r"\leq": "≤", r"\%": "%", "$": ""}


def latex_text(text: str) -> str:
    r"""The little inline LaTeX the handouts' rubric uses (``$\geq 75\%$``), as plain text (``≥ 75%``)."""
    for tex, plain in LATEX.items():
        text = text.replace(tex, plain)
    return re.sub(r"\s+", " ", text).replace(" ,", ",").strip()
