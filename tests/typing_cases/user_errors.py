"""Mistakes a type checker must report in a user's module (tests/test_typing.py)."""

from __future__ import annotations

from truefoundry_tracing import task


@task
def retrieve(question: str) -> list[str]:
    return [question]


retrieve(42)  # E: wrong argument type
retrieve("q", extra=True)  # E: unexpected keyword
