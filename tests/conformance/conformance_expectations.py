"""What the conformance run of traceloop's own tests expects, with a reason for every entry.

- ``NEEDS_PACKAGE``: tests that need a package the environment may not have (test id ->
  (distribution, reason)); deselected in both modes where it is not installed.
- ``LANGCHAIN``: the LangChain tests. langchain-openai is installed in the framework
  environments only, and there just these run (see ``_conformance.selection``).
- ``EXCLUDED``: deselected in both modes everywhere (for instance a test that needs a
  connection no cassette replays); none so far.
- ``DELIBERATE``: pass with plain traceloop and fail through truefoundry_tracing on purpose.
  Each one is also listed in docs/compatibility.md ("traceloop's own tests"); a test checks
  that both lists agree.

Test ids are pytest node ids relative to the sdist's root (``tests/test_x.py::test_y``).
"""

from __future__ import annotations

_LANGCHAIN = "needs langchain-openai: runs in the framework environments (fw-latest)"
_PANDAS = "needs pandas (traceloop's datasets API, not tracing)"
_ANTHROPIC = (
    "needs anthropic; it checks that Traceloop.init's use_attributes reaches each "
    "instrumentor, an option truefoundry_tracing.init does not have"
)

LANGCHAIN = (
    "tests/test_association_properties.py::test_langchain_association_properties",
    "tests/test_association_properties.py::test_langchain_and_external_association_properties",
    "tests/test_tasks.py::test_task_io_serialization_with_langchain",
)

NEEDS_PACKAGE: dict[str, tuple[str, str]] = {
    **{test_id: ("langchain-openai", _LANGCHAIN) for test_id in LANGCHAIN},
    "tests/datasets/test_create_dataset.py::test_create_dataset_from_dataframe": (
        "pandas",
        _PANDAS,
    ),
    "tests/datasets/test_create_dataset.py::"
    "test_create_dataset_from_dataframe_with_duplicate_slug": ("pandas", _PANDAS),
    "tests/test_sdk_initialization.py::"
    "test_use_legacy_attributes_false_propagates_to_instrumentors": ("anthropic", _ANTHROPIC),
    "tests/test_sdk_initialization.py::"
    "test_use_attributes_false_propagates_to_multiple_instrumentors": ("anthropic", _ANTHROPIC),
    "tests/test_sdk_initialization.py::test_use_attributes_defaults_to_true": (
        "anthropic",
        _ANTHROPIC,
    ),
}

EXCLUDED: dict[str, str] = {}

_ASSOCIATIONS = (
    "its fixture finds the exporter by walking the global tracer provider's private processor "
    "list for a processor with a span_exporter attribute; under truefoundry_tracing that list "
    "holds the pipeline's root processor, so the fixture falls back to a new, empty "
    "InMemorySpanExporter and sees no spans. The association properties themselves reach the "
    "spans (tests/conformance/test_traceloop_api.py)"
)

DELIBERATE: dict[str, str] = {
    "tests/test_agent_name_scope.py::test_generator_span_not_current_after_exhaustion": (
        "it expects a generator's span to be the current span in the caller's loop body "
        "between items (it reads the span id there, then checks it is no longer current after "
        "exhaustion); truefoundry_tracing's generator span is current only while the "
        "generator's own code runs, so both ids are 0 and the test's inequality fails"
    ),
    "tests/test_associations.py::test_associations_create_single": _ASSOCIATIONS,
    "tests/test_associations.py::test_associations_create_multiple": _ASSOCIATIONS,
    "tests/test_associations.py::test_associations_within_workflow": _ASSOCIATIONS,
    "tests/test_associations.py::test_all_association_properties": _ASSOCIATIONS,
}
