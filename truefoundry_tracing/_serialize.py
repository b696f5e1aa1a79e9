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
import datetime
import decimal
import enum
import functools
import inspect
import json
import os
import re
import uuid
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

__all__ = ["MAX_BYTES", "MAX_ITEMS", "MAX_STRING", "clip", "to_json"]

#: Largest JSON text, in bytes of UTF-8, recorded for one input or output attribute.
MAX_BYTES = 64 * 1024
#: Longest single string kept inside a rendering before it is cut.
MAX_STRING = 16 * 1024
#: Most items kept from one list, tuple, set or dict.
MAX_ITEMS = 100
_MAX_DEPTH = 10
_SURROGATE = re.compile("[\ud800-\udfff]")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"…[truncated {len(text) - limit} chars]"


def _fallback(value: Any) -> Any:
    """What JSON cannot encode, the way traceloop's encoder renders it (and a little more).

    In order: bytes as their size, sets as lists, enums as their value, dates and times in ISO
    8601, UUIDs, decimals and paths as text; then traceloop's order: dataclasses as dicts, the
    object's ``to_json()``, a pydantic model's ``model_dump()``, ``dict()``, ``json()``. Last,
    the object's own ``repr()`` when its class defines one, else the class name: never a
    memory address, which would differ in every run.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal, PurePath)):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        try:
            return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        except Exception:
            pass
    for method in ("to_json", "model_dump", "dict", "json"):
        rendered = _call_renderer(value, method)
        if rendered is not _NOTHING:
            return rendered
        if method == "model_dump" and hasattr(value, "model_dump"):
            break  # a pydantic v2 model: its dict() and json() only add deprecation warnings
    return _last_resort(value)


_NOTHING: Any = object()


def _call_renderer(value: Any, method: str) -> Any:
    fn = getattr(value, method, None)
    if not callable(fn) or inspect.iscoroutinefunction(fn) or isinstance(value, type):
        return _NOTHING
    try:
        if method == "model_dump":
            try:
                result = fn(mode="json")  # pydantic v2: dates and enums as JSON already
            except TypeError:
                result = fn()
        else:
            result = fn()
    except Exception:
        return _NOTHING
    if inspect.iscoroutine(result):
        result.close()
        return _NOTHING
    if method == "json" and isinstance(result, str):
        try:
            return json.loads(result)
        except ValueError:
            return result
    return result


def _last_resort(value: Any) -> str:
    cls = type(value)
    name = getattr(cls, "__qualname__", None) or cls.__name__
    own_repr: Any = cls.__repr__
    if own_repr is object.__repr__:
        return name
    try:
        text = repr(value)
    except Exception:
        return f"<unrepresentable {name}>"
    if _ADDRESS.search(text):
        return name
    return _cut(text, MAX_STRING)


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


_LIMIT_VAR = "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT"
_limit_cache: tuple[object, int | None] = (None, None)


def _raw_getter() -> Any:
    """A cheap read of the variable: it is read twice per traced call, as traceloop does.

    ``os.environ.get`` encodes the name and decodes the value on each call; on POSIX the
    mapping keeps the raw bytes in a dict, which every change through ``os.environ`` updates.
    """
    data = getattr(os.environ, "_data", None)
    if os.name == "posix" and isinstance(data, dict):
        return functools.partial(data.get, os.fsencode(_LIMIT_VAR))
    return functools.partial(os.environ.get, _LIMIT_VAR)


_read_limit = _raw_getter()


def _length_limit() -> int | None:
    """OpenTelemetry's attribute length limit, read on every call as traceloop does."""
    global _limit_cache
    raw = _read_limit()
    if raw == _limit_cache[0]:
        return _limit_cache[1]
    limit: int | None = None
    if raw:
        try:
            limit = int(raw)
        except ValueError:
            limit = None
        if limit is not None and limit <= 0:
            limit = None
    _limit_cache = (raw, limit)
    return limit


def clip(text: str) -> str:
    """Cut ``text`` to ``OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`` characters when that is set.

    The cut text may no longer be valid JSON: the limit is OpenTelemetry's, and traceloop
    applies it to entity inputs and outputs the same way.

    Example:
        >>> import os
        >>> os.environ["OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT"] = "5"
        >>> clip('{"a": "long"}')
        '{"a":'
        >>> del os.environ["OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT"]
        >>> clip('{"a": "long"}')
        '{"a": "long"}'
    """
    limit = _length_limit()
    if limit is None or len(text) <= limit:
        return text
    return text[:limit]
