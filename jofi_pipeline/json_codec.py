"""JSON in and out, fast where it can be and exact where it must be.

orjson parses a response and writes a `_raw` several times faster than the standard library, which
shows on every request of a sync. Where the two differ, the standard library's answer wins:
- integers of 19 or more digits: orjson turns those past 64 bits into floats (an id past 2^63
  would lose its last digits), so any text with such a run of digits is parsed by `json`;
- NaN/Infinity literals and lone surrogates, which orjson refuses: parsed by `json`;
- on the way out, what orjson cannot write (integers past 64 bits) is written by `json`.
One difference is kept on purpose: NaN and Infinity (not JSON) are written as null.
A leaf module: any room may import it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_DUMP_OPTIONS = orjson.OPT_NON_STR_KEYS
_LONG_NUMBER = re.compile(rb"\d{19}")


def loads(data: bytes | bytearray | str) -> Any:
    """Parse JSON text; raises ValueError when it is not JSON."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if _LONG_NUMBER.search(raw) is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def dumps(value: Any) -> str:
    """Compact JSON text, non-ASCII kept as is (what `json.dumps(ensure_ascii=False)` writes)."""
    try:
        return orjson.dumps(value, option=_DUMP_OPTIONS).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
