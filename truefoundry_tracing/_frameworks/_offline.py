"""Nothing leaves for a third party: the switches that turn off what instrumented libraries
send on their own (telemetry, their vendors' trace exporters, downloads at import).

``init()`` applies them for each library it instruments, before the library is first used:
each is an environment default (a value the app or the shell already set wins), so the
user's own OpenTelemetry setup is never touched (CrewAI would also honour
``OTEL_SDK_DISABLED``, which would turn off every OpenTelemetry SDK in the process).
"""

from __future__ import annotations

import os
import sys
from typing import Any, NamedTuple

__all__ = ["SWITCHES", "Switch", "agno_telemetry_gate", "apply"]


class Switch(NamedTuple):
    """One environment default and what it stops."""

    variable: str
    value: str
    stops: str


SWITCHES: dict[str, tuple[Switch, ...]] = {
    "crewai": (
        Switch("CREWAI_DISABLE_TELEMETRY", "true", "CrewAI's anonymous telemetry"),
        Switch("CREWAI_TRACING_ENABLED", "false", "CrewAI's own tracing to its platform"),
    ),
    "haystack": (
        Switch("HAYSTACK_TELEMETRY_ENABLED", "False", "Haystack's telemetry"),
        # Haystack 2 turns its own OpenTelemetry tracer on when imported after init(): a
        # second span per pipeline and component, and a probe span at import, each its own trace
        Switch("HAYSTACK_AUTO_TRACE_ENABLED", "false", "Haystack 2's own second set of spans"),
    ),
    "agno": (
        Switch(
            "AGNO_TELEMETRY",
            "false",
            "Agno's telemetry to os-api.agno.com (agent, team and workflow runs; evals and "
            "AgentOS launches too, see agno_telemetry_gate)",
        ),
    ),
    "dspy": (
        Switch(
            "LITELLM_LOCAL_MODEL_COST_MAP",
            "True",
            "DSPy's download of its model metadata (the bundled copy is used)",
        ),
    ),
    "litellm": (
        Switch(
            "LITELLM_LOCAL_MODEL_COST_MAP",
            "True",
            "LiteLLM's download of its model cost map (the bundled copy is used)",
        ),
    ),
}


def _already_imported(name: str) -> None:
    """Switch off what a library set up at import, when it was imported before ``init()``."""
    if name == "haystack":
        module: Any = sys.modules.get("haystack.telemetry._telemetry")
        if module is not None and getattr(module, "telemetry", None) is not None:
            module.telemetry = None  # what it sets when the variable says off


def apply(name: str, switches: tuple[Switch, ...] | None = None) -> str:
    """Set the environment defaults for library ``name``; say what is off, for the report.

    Example:
        >>> apply("not-a-library")
        ''
    """
    done: list[str] = []
    for switch in SWITCHES.get(name, ()) if switches is None else switches:
        current = os.environ.get(switch.variable)
        if current is None or current == "":
            os.environ[switch.variable] = switch.value
            done.append(f"off: {switch.stops} ({switch.variable}={switch.value})")
            _already_imported(name)
        elif current.strip().lower() == switch.value.lower():
            done.append(f"off: {switch.stops} ({switch.variable}={current})")
            _already_imported(name)
        else:
            done.append(f"on: {switch.stops} ({switch.variable}={current} is set)")
    return "; ".join(done)


# With no instrumentation to receive them (the Agents SDK's failed or is incompatible), the
# SDK's traces would only go to api.openai.com: its tracing is switched off instead. Where one
# is applied (traceloop's, or on 0.38 this library's), the default processor is removed
# instead (agents_export_off) and the SDK's tracing stays on; a value the user set is kept.
AGENTS_UNOBSERVED = (
    Switch(
        "OPENAI_AGENTS_DISABLE_TRACING",
        "true",
        "the OpenAI Agents SDK's own trace export to api.openai.com",
    ),
)


def agents_export_off() -> str:
    """Take the OpenAI Agents SDK's default trace processor out (it exports every run, with
    the API key, to api.openai.com); traceloop's processor (or this library's, on 0.38) and
    the app's own stay.

    Processors the app registered, before ``init()`` or after, are kept: only the SDK's
    default one goes. Never raises.
    """
    try:
        from agents.tracing import get_trace_provider, set_trace_processors
        from agents.tracing.processors import default_processor

        default = default_processor()
        provider: Any = get_trace_provider()
        current = list(provider._multi_processor._processors)
        if default in current:
            set_trace_processors([p for p in current if p is not default])
    except Exception:
        return "unknown: the OpenAI Agents SDK's own trace export to api.openai.com"
    return "off: the OpenAI Agents SDK's own trace export to api.openai.com"


def agno_telemetry_gate() -> bool:
    """Make ``AGNO_TELEMETRY=false`` stop all of Agno's telemetry; False if Agno changed.

    Agno reads the variable for agent, team and workflow runs only: evals
    (``AccuracyEval(telemetry=True)`` by default) and AgentOS launches post to os-api.agno.com
    whatever it says. Every post goes through ``agno.api.api.Api.post_in_background``; while the
    variable is ``false`` it sends nothing. A user's ``AGNO_TELEMETRY=true`` leaves Agno as it is.

    Example:
        >>> isinstance(agno_telemetry_gate(), bool)
        True
    """
    try:
        from agno.api.api import Api as _Api
    except Exception:
        return False
    api: Any = _Api
    original = api.__dict__.get("post_in_background")
    if original is None or getattr(original, "_tfy_gated", False):
        return original is not None

    def post_in_background(self: Any, route: str, payload: dict[str, Any]) -> None:
        if os.environ.get("AGNO_TELEMETRY", "").strip().lower() == "false":
            return None
        return original(self, route, payload)  # type: ignore[no-any-return]

    post_in_background._tfy_gated = True  # type: ignore[attr-defined]
    post_in_background.__doc__ = original.__doc__
    api.post_in_background = post_in_background
    return True
