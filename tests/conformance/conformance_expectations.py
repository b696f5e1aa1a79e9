"""What the conformance run of traceloop's own tests expects, with a reason for every entry.

- ``NETWORK_TESTS``: need a connection no cassette replays; deselected in both modes.
- ``LANGCHAIN_TESTS``: need langchain-openai, which the base environments do not install
  (LangChain is tested in the framework environments); deselected there in both modes.
- ``EXCLUDED``: anything else deselected in both modes.
- ``DELIBERATE``: pass with plain traceloop and fail through truefoundry_tracing on purpose.
  Each one is also listed, with the same reason, in docs/compatibility.md ("traceloop's own
  tests"); a test checks both lists agree.

Test ids are pytest node ids relative to the sdist's root (``tests/test_x.py::test_y``).
"""

from __future__ import annotations

NETWORK_TESTS: dict[str, str] = {}

LANGCHAIN_TESTS: dict[str, str] = {
    "tests/test_association_properties.py::test_langchain_association_properties": (
        "needs langchain-openai (installed in the framework environments only)"
    ),
    "tests/test_association_properties.py::test_langchain_and_external_association_properties": (
        "needs langchain-openai (installed in the framework environments only)"
    ),
    "tests/test_tasks.py::test_task_io_serialization_with_langchain": (
        "needs langchain-openai (installed in the framework environments only)"
    ),
}

EXCLUDED: dict[str, str] = {}

DELIBERATE: dict[str, str] = {}
