"""Context keys shared with traceloop, and scoped association properties.

The keys are the plain strings traceloop-sdk's span processor and instrumentations read with
``opentelemetry.context.get_value``; using the same ones keeps code that calls traceloop's
helpers working next to ours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = [
    "ASSOCIATION_KEY",
    "ENTITY_PATH_KEY",
    "WORKFLOW_KEY",
    "association_properties",
]

WORKFLOW_KEY = "workflow_name"
ENTITY_PATH_KEY = "entity_path"
ASSOCIATION_KEY = "association_properties"
_ATTR_ASSOC = "traceloop.association.properties."


def _check(props: Mapping[str, Any]) -> dict[str, str | int | float | bool]:
    out: dict[str, str | int | float | bool] = {}
    for key, value in props.items():
        if not isinstance(value, (str, int, float, bool)):
            raise TypeError(
                f"association property {key!r} must be a str, int, float or bool, "
                f"not {type(value).__name__}."
            )
        out[key] = value
    return out


@contextmanager
def association_properties(**properties: str | int | float | bool) -> Iterator[None]:
    """Tag every span started inside the block (yours and instrumented LLM calls).

    Properties land on spans as ``traceloop.association.properties.<key>``, which TrueFoundry
    and traceloop use to group traces by user, session or customer. Nested blocks merge, inner
    keys winning; the tags end with the block, in threads and asyncio tasks alike.

    Example:
        >>> import truefoundry_tracing as tt
        >>> with tt.association_properties(user_id="u-42", session_id="s-1"):
        ...     pass  # spans started here carry both properties
    """
    from opentelemetry import context as context_api
    from opentelemetry import trace

    new = _check(properties)
    outer: Any = context_api.get_value(ASSOCIATION_KEY) or {}
    merged = {**outer, **new}
    span = trace.get_current_span()
    if span.is_recording():
        for key, value in new.items():
            span.set_attribute(_ATTR_ASSOC + key, value)
    token = context_api.attach(context_api.set_value(ASSOCIATION_KEY, merged))
    try:
        yield
    finally:
        context_api.detach(token)


class _Flags:
    """Switches the decorators read on every call; set by ``init()`` (cheap to read)."""

    __slots__ = ("before_span", "enabled", "trace_content", "tracer")

    def __init__(self) -> None:
        self.enabled = True
        self.trace_content = True
        self.tracer: Any = None  # the pipeline's tracer once a provider exists
        # Deferred instrumentations to apply before a decorator starts its span, so their
        # loading time never counts inside the app's trace; None once nothing waits.
        self.before_span: Callable[[], None] | None = None


FLAGS = _Flags()
AGENT_KEY = "agent_name"
