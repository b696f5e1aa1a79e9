"""Scrubbing span attributes before export: secrets always, content when asked.

Runs on every finished span in the pipeline, before test captures and exporters see it, so what
a test asserts is what leaves the process. The replacement marker never contains any part of
the secret it hides.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ._otel_compat import plain_attributes, replace_attributes, replace_events, replace_status

__all__ = ["CONTENT_KEYS", "MARKER", "Redactor", "is_content_key", "redact_span"]

MARKER = "[REDACTED]"
_JOIN = "\x00"
_SCALARS = frozenset({int, float, bool})
_PLAIN = _SCALARS | {str}
_TEXT = frozenset({str})
# Short values recur on every span (kinds, names, paths, models): remember the clean ones.
_CLEAN_CACHE_SIZE = 1024
_CLEAN_CACHE_MAX_LEN = 256

_BUILTIN = [
    r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}",
    r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}",
    r"\bAKIA[0-9A-Z]{16}\b",
    r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",
    r"\bxox[abpr]-[A-Za-z0-9-]{10,}",
    r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    r"\bAIza[0-9A-Za-z_-]{35}\b",
]
# Literal pieces, lower-cased, that every match of _BUILTIN or _HEADER_VALUE contains: ASCII
# text holding none of them cannot match, so the regular expressions are skipped
# (_builtin_token tests for them; tests/test_redact.py checks it against these lists).
_BUILTIN_TOKENS = (
    "bearer",
    "sk-",
    "akia",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "xox",
    "eyj",
    "aiza",
)
_GH_TOKENS = _BUILTIN_TOKENS[3:8]
# One per alternative of _HEADER_VALUE's name group (api covers the api-key forms, token the
# auth-token and access-token ones).
_HEADER_TOKENS = (
    "authorization",
    "api",
    "cookie",
    "token",
    "password",
    "secret",
    "subscription-key",
)
# A secret-looking header inside a serialized dict ({'Authorization': '...'} or JSON).
_HEADER_VALUE = re.compile(
    r"""(?ix)
    (["']?(?:proxy-)?(?:authorization|x-api-key|api[-_]?key|cookie|set-cookie|
        x-tfy-api-key|x-auth-token|auth-token|access[-_]?token|password|
        secret|token|subscription-key)["']?\s*[:=]\s*)
    (["'])(.*?)(?<!\\)\2
    """
)

#: Attributes that carry prompts, completions, inputs or outputs.
CONTENT_KEYS = (
    "traceloop.entity.input",
    "traceloop.entity.output",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "llm.prompts",
    "llm.completions",
    "traceloop.prompt.template",
    "traceloop.prompt.template_variables",
    # Pydantic AI's own (its run's messages and output; format 1's tool arguments and result)
    "pydantic_ai.all_messages",
    "final_result",
    "tool_arguments",
    "tool_response",
)
_CONTENT_PREFIXES = tuple(k + "." for k in CONTENT_KEYS)
_CONTENT_EVENT_PREFIXES = (
    "gen_ai.content",
    "llm.content",
    "gen_ai.user.message",
    "gen_ai.system.message",
    "gen_ai.assistant.message",
    "gen_ai.tool.message",
    "gen_ai.choice",
)


def is_content_key(key: str) -> bool:
    """True for attributes that hold prompt/completion/input/output text."""
    return key in CONTENT_KEYS or key.startswith(_CONTENT_PREFIXES)


def is_content_event(name: str) -> bool:
    """True for span events that carry message content."""
    return name.startswith(_CONTENT_EVENT_PREFIXES)


class Redactor:
    """Rewrites attribute values: built-in secret patterns, exact secrets, a user hook.

    The hook is called as ``hook(key, value)`` and returns the value to keep (None drops the
    attribute). For an attribute holding JSON (LLM messages, decorated inputs and outputs) it
    is then also called once per string inside the JSON, with the attribute's key, so it sees
    message text as written rather than JSON-escaped. A hook that raises replaces the value
    with :data:`MARKER`.

    Example:
        >>> r = Redactor(secrets=["tfy-key-0123456789"])
        >>> r.value("k", "token tfy-key-0123456789 and Bearer abcdefghijkl")
        'token [REDACTED] and [REDACTED]'
    """

    def __init__(
        self,
        *,
        builtin: bool = True,
        secrets: list[str] | None = None,
        hook: Callable[[str, Any], Any] | None = None,
    ) -> None:
        parts = list(_BUILTIN) if builtin else []
        parts += [re.escape(s) for s in sorted(secrets or [], key=len, reverse=True) if len(s) >= 4]
        self._pattern = re.compile("|".join(parts)) if parts else None
        self._builtin = builtin
        self._hook = hook
        self._clean: set[str] = set()
        # The exact secrets, lower-cased: text holding none of them (nor a built-in token,
        # see _builtin_token) cannot match, so the regular expressions are skipped.
        self._extra = tuple(dict.fromkeys(s.lower() for s in secrets or [] if len(s) >= 4))
        # A span's strings are screened together, joined by a character no token holds.
        self._joinable = not any(_JOIN in t for t in self._extra)

    def _text(self, text: str) -> str:
        short = len(text) <= _CLEAN_CACHE_MAX_LEN
        if short and text in self._clean:
            return text
        out = self._scrub(text) if self._may_hold_secret(text) else text
        if short and out == text:
            if len(self._clean) >= _CLEAN_CACHE_SIZE:
                self._clean.clear()
            self._clean.add(text)
        return out

    def _may_hold_secret(self, text: str) -> bool:
        if not text.isascii():
            return True
        lowered = text.lower()
        if self._builtin and _builtin_token(lowered):
            return True
        for token in self._extra:  # noqa: SIM110  (any() over a generator costs twice this)
            if token in lowered:
                return True
        return False

    def _scrub(self, text: str) -> str:
        if self._builtin:
            text = _HEADER_VALUE.sub(
                lambda m: f"{m.group(1)}{m.group(2)}{MARKER}{m.group(2)}", text
            )
        if self._pattern is not None:
            text = self._pattern.sub(MARKER, text)
        return text

    def value(self, key: str, value: Any) -> Any:
        """The redacted form of one attribute value (None means: drop the attribute)."""
        if isinstance(value, str):
            value = self._text(value)
        elif isinstance(value, (tuple, list)):
            value = tuple(self._text(v) if isinstance(v, str) else v for v in value)
        if self._hook is not None:
            value = self._call(key, value)
            if isinstance(value, str) and value[:1] in ("{", "["):
                try:
                    parsed = json.loads(value)
                except ValueError:
                    pass
                else:
                    new = self._leaves(key, parsed)
                    if new == parsed:
                        return value
                    try:
                        return json.dumps(new, ensure_ascii=False)
                    except (TypeError, ValueError):  # the hook returned something unusable
                        return MARKER
        return value

    def _call(self, key: str, value: Any) -> Any:
        assert self._hook is not None
        try:
            return self._hook(key, value)
        except Exception:
            return MARKER

    def _leaves(self, key: str, node: Any) -> Any:
        if isinstance(node, str):
            return self._call(key, node)
        if isinstance(node, list):
            return [self._leaves(key, item) for item in node]
        if isinstance(node, dict):
            return {k: self._leaves(key, v) for k, v in node.items()}
        return node

    def all_clean(self, values: Collection[Any]) -> bool:
        """True when no value of ``values`` can change: one screen for all of them.

        The common case, a span without secrets, then costs one pass over its strings joined
        together instead of one per value. Exact: where this says True, the value-by-value
        path would change nothing; it says False (the caller takes that path) for anything
        else, including text that is not ASCII and values of other types.

        Example:
            >>> r = Redactor()
            >>> r.all_clean(["task", '{"args": [1]}', 2, 0.5, True, ("a", 1)])
            True
            >>> r.all_clean(["task", "Bearer abcdefghijkl"])
            False
        """
        if self._hook is not None or not self._joinable:
            return False
        if _TEXT.issuperset(map(type, values)):  # strings only: most decorated calls
            joined = _JOIN.join(values)
        else:
            texts = [v for v in values if type(v) is str]
            if not _PLAIN.issuperset(map(type, values)) and not _scalars_or_texts(values, texts):
                return False
            joined = _JOIN.join(texts)
        if not joined.isascii():
            return False
        lowered = joined.lower()
        if self._builtin and _builtin_token(lowered):
            return False
        for token in self._extra:  # noqa: SIM110  (any() over a generator costs twice this)
            if token in lowered:
                return False
        return True

    def attributes(self, attrs: Mapping[str, Any], *, drop_content: bool) -> dict[str, Any] | None:
        """Redacted copy of ``attrs``, or None when nothing needed to change."""
        if not drop_content and self.all_clean(attrs.values()):
            return None
        return self._each(attrs, drop_content)

    def _each(self, attrs: Mapping[str, Any], drop_content: bool) -> dict[str, Any] | None:
        """:meth:`attributes` value by value, without the screen."""
        out: dict[str, Any] | None = None
        plain = self._hook is None  # without a hook a value only changes when it holds a secret
        clean = self._clean if plain else ()
        for key, value in attrs.items():
            if drop_content and is_content_key(key):
                new: Any = None
            elif type(value) is str:
                if value in clean:
                    continue
                new = self._text(value) if plain else self.value(key, value)
            elif plain and type(value) in (int, float, bool):
                continue
            else:
                new = self.value(key, value)
            if new is value or new == value:
                continue
            if out is None:
                out = dict(attrs)
            if new is None:
                del out[key]
            else:
                out[key] = new
        return out


def _builtin_token(lowered: str) -> bool:
    """True when ``lowered`` holds one of :data:`_BUILTIN_TOKENS` or :data:`_HEADER_TOKENS`.

    The same answer as testing each token, in about half the tests for text without any:
    tokens that share a rare piece ("_", "-", "z", "ki") are tested only when it is there.
    """
    return (
        ("_" in lowered and "gh" in lowered and _any_in(_GH_TOKENS, lowered))
        or ("-" in lowered and ("sk-" in lowered or "subscription-key" in lowered))
        or ("z" in lowered and ("aiza" in lowered or "authorization" in lowered))
        or ("ki" in lowered and ("akia" in lowered or "cookie" in lowered))
        or "xox" in lowered
        or "eyj" in lowered
        or "token" in lowered
        or "api" in lowered
        or "bearer" in lowered
        or "password" in lowered
        or "secret" in lowered
    )


def _any_in(tokens: tuple[str, ...], lowered: str) -> bool:
    for token in tokens:  # noqa: SIM110  (any() over a generator costs twice this)
        if token in lowered:
            return True
    return False


def _scalars_or_texts(values: Collection[Any], texts: list[str]) -> bool:
    """Check the values that are not strings: True when each is a number, a bool, or a tuple
    of those and strings (whose strings join ``texts``)."""
    for value in values:
        kind = type(value)
        if kind is str or kind in _SCALARS:
            continue
        if kind is not tuple:
            return False
        for item in value:
            if type(item) is str:
                texts.append(item)
            elif type(item) not in _SCALARS:
                return False
    return True


def redact_span(
    span: Any, redactor: Redactor, *, drop_content: bool, attributes: Any = None
) -> None:
    """Rewrite a finished span in place: its attributes, event attributes and status text.

    ``attributes`` is the span's attribute mapping when the caller has it at hand.
    """
    plain = plain_attributes(span) if attributes is None else attributes
    if plain and (drop_content or not redactor.all_clean(plain.values())):
        new = redactor._each(plain, drop_content)
        if new is not None:
            replace_attributes(span, new)
    events = span.events
    if events:
        from opentelemetry.sdk.trace import Event

        changed = False
        out = []
        for ev in events:
            if drop_content and is_content_event(ev.name):
                ev_attrs: dict[str, Any] | None = {}
            else:
                ev_attrs = redactor.attributes(ev.attributes or {}, drop_content=drop_content)
            if ev_attrs is None:
                out.append(ev)
            else:
                changed = True
                out.append(Event(ev.name, ev_attrs, ev.timestamp))
        if changed:
            replace_events(span, tuple(out))
    status = span.status
    if status is not None and status.description:
        text = redactor.value("status", status.description)
        if text != status.description:
            from opentelemetry.trace import Status

            replace_status(span, Status(status.status_code, text))
