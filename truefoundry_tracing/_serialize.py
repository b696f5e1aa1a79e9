"""Bounded, always-valid JSON renderings of function inputs and outputs for span attributes.

Whatever a decorated function takes or returns (objects that are not JSON-serializable,
recursive structures, bytes, a 10 MB string), :func:`to_json` returns valid JSON of at most
:data:`MAX_BYTES` bytes of UTF-8 and never raises. Lone surrogates (which UTF-8 cannot encode,
so the OTLP encoder would drop the attribute) become U+FFFD. Truncated strings end with a
marker saying how much was cut; an over-long whole is replaced by ``{"truncated": true, ...}``
with a preview.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_BYTES", "MAX_ITEMS", "MAX_STRING", "to_json"]

#: Largest JSON text, in bytes of UTF-8, recorded for one input or output attribute.
MAX_BYTES = 64 * 1024
#: Longest single string kept inside a rendering before it is cut.
MAX_STRING = 16 * 1024
#: Most items kept from one list, tuple, set or dict.
MAX_ITEMS = 100
_MAX_DEPTH = 10
_SURROGATE = re.compile("[\ud800-\udfff]")


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"…[truncated {len(text) - limit} chars]"


def _fallback(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # pydantic v2 models
        try:
            return dump(mode="json")
        except Exception:
            pass
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        try:
            return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        except Exception:
            pass
    if isinstance(value, (set, frozenset)):
        return list(value)
    try:
        return _cut(repr(value), MAX_STRING)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def _walk(value: Any, depth: int, seen: set[int]) -> Any:
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return (
            value if value == value and value not in (float("inf"), float("-inf")) else str(value)
        )
    if isinstance(value, str):
        return _cut(value, MAX_STRING)
    if depth >= _MAX_DEPTH:
        return f"<{type(value).__name__} nested too deep>"
    if id(value) in seen:
        return f"<recursive {type(value).__name__}>"
    if isinstance(value, Mapping):
        seen.add(id(value))
        out: dict[str, Any] = {}
        for i, (k, v) in enumerate(value.items()):
            if i >= MAX_ITEMS:
                out["…"] = f"{len(value) - MAX_ITEMS} more items"
                break
            out[_cut(k if isinstance(k, str) else repr(k), 256)] = _walk(v, depth + 1, seen)
        seen.discard(id(value))
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        seen.add(id(value))
        items = list(value)
        rendered = [_walk(v, depth + 1, seen) for v in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            rendered.append(f"… {len(items) - MAX_ITEMS} more items")
        seen.discard(id(value))
        return rendered
    seen.add(id(value))
    try:
        return _walk(_fallback(value), depth + 1, seen)
    finally:
        seen.discard(id(value))


# One encoder for every call: ``json.dumps`` with options builds a new JSONEncoder each time.
_ENCODER = json.JSONEncoder(default=_fallback, ensure_ascii=False, allow_nan=False)


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text).encode("utf-8")


def to_json(value: Any, limit: int = MAX_BYTES) -> str:
    """Render ``value`` as valid JSON of at most ``limit`` bytes of UTF-8; never raises.

    Example:
        >>> to_json({"q": "hi", "raw": b"\\x00\\x01"})
        '{"q": "hi", "raw": "<2 bytes>"}'
        >>> loop = []; loop.append(loop)
        >>> to_json(loop)
        '["<recursive list>"]'
    """
    try:
        text = _ENCODER.encode(value)
        # Short enough that no string inside can be over MAX_STRING: the common, fast case.
        if len(text) <= MAX_STRING:
            if text.isascii() and len(text) <= limit:  # valid UTF-8 of len(text) bytes
                return text
            data = _utf8(text)
            if len(data) <= limit:
                return data.decode("utf-8")
    except Exception:
        pass
    try:
        text = json.dumps(_walk(value, 0, set()), ensure_ascii=False)
    except Exception:
        text = json.dumps(f"<unrepresentable {type(value).__name__}>")
    data = _utf8(text)
    if len(data) <= limit:
        return data.decode("utf-8")
    preview_len = max(0, limit - 120)
    for _ in range(6):
        preview = data[:preview_len].decode("utf-8", "ignore")
        out = _utf8(
            json.dumps(
                {"truncated": True, "length": len(data), "preview": preview},
                ensure_ascii=False,
            )
        )
        if len(out) <= limit:
            return out.decode("utf-8")
        preview_len = max(0, preview_len - (len(out) - limit) - 16)
    return '{"truncated": true}'
