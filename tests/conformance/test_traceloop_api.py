"""What traceloop 0.62's test_associations.py pins, checked where that test cannot look.

Its fixture calls ``Traceloop.init(api_key=..., api_endpoint=...)`` for a client and then finds
its exporter in the global tracer provider's private processor list, which under
truefoundry_tracing holds the pipeline's root processor (a deliberate difference, listed in
docs/compatibility.md). Here the same ``client.associations.set`` calls run after
``truefoundry_tracing.init``, and the spans are read from the exporter given to ``init()``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import context as context_api
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import truefoundry_tracing
from truefoundry_tracing.testing import OTLPReceiver

associations = pytest.importorskip(
    "traceloop.sdk.associations", reason="traceloop-sdk 0.38.12 has no associations API"
)
AssociationProperty = associations.AssociationProperty
ASSOC = "traceloop.association.properties"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    truefoundry_tracing.init(app_name="test", exporter=exporter, disable_batch=True)
    # associations.set() attaches to the current context for good, as upstream's conftest
    # knows: each test starts from an empty one.
    token = context_api.attach(context_api.Context())
    try:
        yield exporter
    finally:
        context_api.detach(token)


@pytest.fixture
def client(exporter: InMemorySpanExporter) -> Iterator[object]:
    """traceloop's client (what ``Traceloop.init(api_key=...)`` returns), built directly.

    Not through ``Traceloop.init``: in this process that would also install traceloop's global
    meter provider for the rest of the test run.
    """
    from traceloop.sdk.client import Client

    with OTLPReceiver() as receiver:
        yield Client(api_key="test-api-key", app_name="test", api_endpoint=receiver.url)
        truefoundry_tracing.flush()
        assert receiver.requests == [], "the client sent something"


def _props(span: ReadableSpan) -> dict[str, object]:
    prefix = f"{ASSOC}."
    return {k[len(prefix) :]: v for k, v in (span.attributes or {}).items() if k.startswith(prefix)}


def _workflow_with_task(name: str) -> None:
    @truefoundry_tracing.task(name=f"{name}_task")
    def task() -> None:
        return None

    @truefoundry_tracing.workflow(name=name)
    def workflow() -> None:
        return task()

    workflow()


def test_associations_set_before_a_workflow_reach_it_and_its_task(
    exporter: InMemorySpanExporter, client: object
) -> None:
    client.associations.set(  # type: ignore[attr-defined]
        [
            (AssociationProperty.USER_ID, "user-456"),
            (AssociationProperty.SESSION_ID, "session-789"),
            (AssociationProperty.CUSTOMER_ID, "customer-999"),
        ]
    )
    _workflow_with_task("multiple")

    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["multiple_task.task", "multiple.workflow"]
    for span in spans:
        assert _props(span) == {
            "user_id": "user-456",
            "session_id": "session-789",
            "customer_id": "customer-999",
        }, span.name


def test_associations_set_inside_a_workflow_reach_it_and_its_task(
    exporter: InMemorySpanExporter, client: object
) -> None:
    @truefoundry_tracing.task(name="within_task")
    def task() -> None:
        return None

    @truefoundry_tracing.workflow(name="within")
    def workflow() -> None:
        client.associations.set(  # type: ignore[attr-defined]
            [(AssociationProperty.SESSION_ID, "conv-abc"), (AssociationProperty.USER_ID, "u")]
        )
        return task()

    workflow()

    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["within_task.task", "within.workflow"]
    for span in spans:
        assert _props(span) == {"session_id": "conv-abc", "user_id": "u"}, span.name


def test_the_last_value_of_a_repeated_association_wins(
    exporter: InMemorySpanExporter, client: object
) -> None:
    client.associations.set(  # type: ignore[attr-defined]
        [
            (AssociationProperty.SESSION_ID, "conv-1"),
            (AssociationProperty.CUSTOMER_ID, "customer-2"),
            (AssociationProperty.USER_ID, "user-3"),
            (AssociationProperty.SESSION_ID, "session-4"),
        ]
    )

    @truefoundry_tracing.workflow(name="all_properties")
    def workflow() -> None:
        return None

    workflow()

    (span,) = exporter.get_finished_spans()
    assert _props(span) == {
        "customer_id": "customer-2",
        "user_id": "user-3",
        "session_id": "session-4",
    }
