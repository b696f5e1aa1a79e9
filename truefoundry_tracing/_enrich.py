"""What a span gets from the context it starts in: the first step of the root processor.

traceloop's decorators and helpers keep the workflow name, the entity path, the agent, the
conversation id, association properties and ``set_prompt``'s template in the OpenTelemetry
context; :func:`from_context` writes them on every span as it starts, as traceloop's own span
processor does, so LLM spans inside a workflow carry its name whichever decorators made it.

Surfaces add their own start-time enrichers with :func:`register_start_hook` when they are
first used (the gateway when a ``gateway_metadata()`` block first opens), so the pipeline never
imports a surface and spans pay nothing for a feature the app does not use.
"""

from __future__ import annotations

import functools
from typing import Any

from ._context import AGENT_KEY, ASSOCIATION_KEY, CONVERSATION_KEY, ENTITY_PATH_KEY, WORKFLOW_KEY
from ._otel_compat import own_attributes, plain_attributes
from ._state import STATE, StartHook

__all__ = ["from_context", "register_start_hook"]

_ATTR_WORKFLOW = "traceloop.workflow.name"
_ATTR_PATH = "traceloop.entity.path"
_ATTR_ASSOC = "traceloop.association.properties."
_ATTR_AGENT = "gen_ai.agent.name"
_ATTR_CONVERSATION = "gen_ai.conversation.id"
# Context keys traceloop's ``set_prompt``/prompt registry set; recorded on LLM spans only.
_PROMPT_MARKER = "managed_prompt"
_PROMPT_KEYS = (
    ("managed_prompt", "traceloop.prompt.managed"),
    ("prompt_key", "traceloop.prompt.key"),
    ("prompt_version", "traceloop.prompt.version"),
    ("prompt_version_name", "traceloop.prompt.version_name"),
    ("prompt_version_hash", "traceloop.prompt.version_hash"),
    ("prompt_template", "traceloop.prompt.template"),
)
_LLM_MARKERS = ("llm.request.type", "gen_ai.operation.name")


def from_context(span: Any, ctx: Any) -> None:
    """Write what the context ``ctx`` carries on ``span``, which is starting now."""
    get = ctx.get
    workflow = get(WORKFLOW_KEY)
    path = get(ENTITY_PATH_KEY)
    agent = get(AGENT_KEY)
    if workflow is not None or path is not None or agent is not None:
        # our decorators set their own workflow name and path: read the live attributes
        own: Any = plain_attributes(span)
        if workflow is not None and _ATTR_WORKFLOW not in own:
            span.set_attribute(_ATTR_WORKFLOW, workflow)
        if path is not None and _ATTR_PATH not in own:
            span.set_attribute(_ATTR_PATH, path)
        if agent is not None and _ATTR_AGENT not in own:
            span.set_attribute(_ATTR_AGENT, agent)
    conversation = get(CONVERSATION_KEY)
    if conversation is not None:
        span.set_attribute(_ATTR_CONVERSATION, str(conversation))
    assoc: Any = get(ASSOCIATION_KEY)
    if assoc and isinstance(assoc, dict):
        for key, value in assoc.items():
            span.set_attribute(_ATTR_ASSOC + key, value)
    if get(_PROMPT_MARKER) is not None:
        _record_prompt(span, ctx)
    for hook in STATE.start_hooks:
        hook(span, ctx)


@functools.cache
def _prompt_values_as_text() -> bool:
    """traceloop 0.38 records prompt values as they are; later lines as text."""
    import importlib.metadata  # only once set_prompt was used: init() never pays for it

    try:
        major, minor = importlib.metadata.version("traceloop-sdk").split(".")[:2]
        return (int(major), int(minor)) > (0, 38)
    except Exception:
        return True


def _record_prompt(span: Any, ctx: Any) -> None:
    """What ``Traceloop.set_prompt`` put in the context, on the LLM span starting now."""
    attrs: Any = own_attributes(span)
    if not attrs or not any(m in attrs for m in _LLM_MARKERS):
        return
    as_text = _prompt_values_as_text()
    for key, attr in _PROMPT_KEYS:
        value = ctx.get(key)
        if value is not None:
            span.set_attribute(attr, str(value) if as_text else value)
    variables = ctx.get("prompt_template_variables")
    if isinstance(variables, dict):
        for name, value in variables.items():
            span.set_attribute(f"traceloop.prompt.template_variables.{name}", value)


def register_start_hook(hook: StartHook) -> None:
    """Call ``hook(span, context)`` for every span started from now on (once per hook).

    Example:
        >>> from truefoundry_tracing import _enrich, _state
        >>> def note(span, ctx):
        ...     pass  # e.g. span.set_attribute(...) from a context value
        >>> _enrich.register_start_hook(note)
        >>> _enrich.register_start_hook(note)  # a second registration is ignored
        >>> _state.STATE.start_hooks.count(note)
        1
    """
    with STATE.lock:
        if hook not in STATE.start_hooks:
            STATE.start_hooks = (*STATE.start_hooks, hook)
