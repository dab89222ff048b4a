"""One comparison for nested results (summary.json-like dicts and lists of numbers): floats within a relative
tolerance, NaN equal to NaN, everything else equal; the failing path is named."""

from __future__ import annotations

import math


def assert_nested_close(a, b, rel: float, floor: float = 0.0, where: str = "result") -> None:
    """Floats agree to `rel` times the larger magnitude (at least `floor`); other values are equal."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_nested_close(a[key], b[key], rel, floor, f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            assert_nested_close(x, y, rel, floor, f"{where}[{k}]")
    elif isinstance(a, float) and isinstance(b, float):
        same = (math.isnan(a) and math.isnan(b)) or abs(a - b) <= rel * max(floor, abs(a), abs(b))
        assert same, (where, a, b)
    else:
        assert a == b, (where, a, b)
