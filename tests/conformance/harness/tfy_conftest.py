"""conftest.py of traceloop's test suite run through truefoundry_tracing (mode "tfy").

The runner copies traceloop's ``tests/`` to a scratch folder, renames its ``conftest.py`` to
``upstream_conftest.py`` and puts this file in its place. Everything upstream's conftest defines
is kept, except:

- the session's ``exporter`` fixture: ``truefoundry_tracing.init(app_name="test",
  exporter=InMemorySpanExporter(), disable_batch=True, resource_attributes=...)`` instead of
  ``Traceloop.init(...)`` with the same arguments;
- traceloop's decorators: ``workflow``, ``task``, ``agent``, ``tool`` and their ``a*`` forms in
  ``traceloop.sdk.decorators`` are truefoundry_tracing's (which trace async functions too), so
  the test modules, which import them from there, decorate with ours.

Everything else a test calls (``Traceloop.set_association_properties``, ``set_prompt``,
``conversation``, ``track_llm_call``, ...) stays traceloop's and must reach our pipeline.
"""

import pytest
import traceloop.sdk.decorators as _traceloop_decorators
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import truefoundry_tracing

from .upstream_conftest import *  # noqa: F403  (upstream's fixtures, overridden below)

for _name in ("workflow", "task", "agent", "tool"):
    setattr(_traceloop_decorators, _name, getattr(truefoundry_tracing, _name))
    setattr(_traceloop_decorators, "a" + _name, getattr(truefoundry_tracing, _name))


@pytest.fixture(scope="session")
def exporter():
    exporter = InMemorySpanExporter()
    truefoundry_tracing.init(
        app_name="test",
        resource_attributes={"something": "yes"},
        disable_batch=True,
        exporter=exporter,
    )
    return exporter
