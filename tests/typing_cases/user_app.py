"""A user's module, type-checked with ``mypy --strict`` by tests/test_typing.py (never run)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import assert_type

import truefoundry_tracing as tt
from truefoundry_tracing import agent, task, tool, workflow


@task
def retrieve(question: str, *, k: int = 3) -> list[str]:
    return [question] * k


@task(name="rerank", version=2)
def rerank(docs: list[str]) -> list[str]:
    return sorted(docs)


@tool("lookup")
async def lookup(city: str) -> dict[str, float]:
    return {city: 1.0}


@agent(name="planner")
def plan(steps: int) -> Iterator[int]:
    yield from range(steps)


@workflow
async def stream(n: int) -> AsyncIterator[str]:
    for i in range(n):
        yield str(i)


@task(method_name="run")
class Step:
    def run(self, x: int) -> int:
        return x


class Service:
    @task
    def method(self, x: int) -> str:
        return str(x)

    @task(name="build")
    @classmethod
    def build(cls) -> Service:
        return cls()

    @tool
    @staticmethod
    def helper(x: float) -> float:
        return x


@tt.conversation("conv-1")
def turn(message: str) -> str:
    return message


async def main() -> None:
    assert_type(retrieve("q", k=2), list[str])
    assert_type(rerank(["b", "a"]), list[str])
    assert_type(await lookup("Paris"), dict[str, float])
    assert_type(plan(3), Iterator[int])
    assert_type(stream(2), AsyncIterator[str])
    assert_type(Step().run(1), int)
    assert_type(Service().method(1), str)
    assert_type(Service.build(), Service)
    assert_type(Service.helper(1.0), float)
    assert_type(turn("hi"), str)
    status = tt.init(app_name="typed", console=False)
    assert_type(status, tt.TracingStatus)
    assert_type(tt.flush(timeout=1.0), bool)
