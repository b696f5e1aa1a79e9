"""Trace a Python LLM app into TrueFoundry with one call.

Example:
    >>> import truefoundry_tracing as tt
    >>> status = tt.init(app_name="demo", console=False)  # reads TFY_HOST, TFY_API_KEY...
    >>> @tt.workflow
    ... def answer() -> str:
    ...     return "42"
    >>> answer()
    '42'

Importing this package is cheap: OpenTelemetry is loaded by ``init()`` or the first traced
call, and each instrumentation when the app first imports or uses its library, not here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from ._version import __version__

if TYPE_CHECKING:
    from ._api import TracingStatus, flush, init, shutdown, status
    from ._context import association_properties, conversation
    from ._errors import ConfigError, MissingDependencyError, TracingError
    from ._gateway import gateway_headers, gateway_metadata, parse_metadata
    from ._instrument_table import InstrumentOutcome
    from .decorators import agent, task, tool, workflow

__all__ = [
    "ConfigError",
    "InstrumentOutcome",
    "MissingDependencyError",
    "TracingError",
    "TracingStatus",
    "__version__",
    "agent",
    "association_properties",
    "conversation",
    "flush",
    "gateway_headers",
    "gateway_metadata",
    "init",
    "parse_metadata",
    "shutdown",
    "status",
    "task",
    "tool",
    "workflow",
]

_LAZY = {
    "init": "._api",
    "flush": "._api",
    "shutdown": "._api",
    "status": "._api",
    "TracingStatus": "._api",
    "association_properties": "._context",
    "conversation": "._context",
    "ConfigError": "._errors",
    "MissingDependencyError": "._errors",
    "TracingError": "._errors",
    "gateway_headers": "._gateway",
    "gateway_metadata": "._gateway",
    "parse_metadata": "._gateway",
    "InstrumentOutcome": "._instrument_table",
    "workflow": ".decorators",
    "task": ".decorators",
    "agent": ".decorators",
    "tool": ".decorators",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__, globals())
