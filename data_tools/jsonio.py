"""Fast JSON for the data stage's hot paths: orjson where it can, the standard library where not.

    python -c "from data_tools.jsonio import dumps_line, loads; print(loads(dumps_line({'質問': '返品'})))"

On the data stage's record lines orjson writes ~20x and reads ~2x faster than `json` (0.45 vs
9.0 µs and 1.8 vs 3.8 µs a record here), and it writes bytes, so files are opened in binary. It is stricter in two
corners, where we fall back so the result is what `json` would give: `loads` of NaN/Infinity, integers over 64 bits or
lone surrogate escapes, and `dumps` of strings with lone surrogates (written with \\u escapes then, which `json.loads`
reads back).
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps_line(obj: Any) -> bytes:
    """Returns `obj` as one UTF-8 JSON line (compact, non-ASCII kept as is), newline included.

    >>> dumps_line({"q": "返品", "n": 1}).decode()
    '{"q":"返品","n":1}\\n'
    """
    try:
        return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        return (json.dumps(obj) + "\n").encode("ascii")  # a lone surrogate: escaped, still valid JSON


def loads(text: str | bytes) -> Any:
    """Parses one JSON value; a malformed one raises `json.JSONDecodeError` with `json`'s message.

    >>> loads('{"n": NaN}')["n"]
    nan
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
