"""In-memory span capture, under pytest or any other runner."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .._model import SpanRecord, record_from_readable
from ..spans import SpanList

if TYPE_CHECKING:
    from .._pipeline import Capture

__all__ = ["CapturedSpans", "capture_spans"]


class CapturedSpans(SpanList):
    """A live :class:`~truefoundry_tracing.spans.SpanList` of the spans finished so far.

    Every lookup reads the spans captured up to that moment; :meth:`snapshot` freezes them.

    Example:
        >>> from truefoundry_tracing import tool
        >>> @tool
        ... def ping() -> str:
        ...     return "pong"
        >>> with capture_spans() as spans:
        ...     before = len(spans)
        ...     _ = ping()
        ...     after = len(spans)
        >>> before, after
        (0, 1)
    """

    def __init__(self, capture: Capture) -> None:
        super().__init__()
        self._fixed = None
        self._capture = capture
        self._cache: tuple[int, list[SpanRecord]] = (0, [])

    def _items(self) -> list[SpanRecord]:
        raw = self._capture.spans()
        count, cached = self._cache
        if count != len(raw):
            cached = cached[: min(count, len(raw))] + [
                record_from_readable(s) for s in raw[min(count, len(raw)) :]
            ]
            self._cache = (len(raw), cached)
        return list(cached)

    def snapshot(self) -> SpanList:
        """The spans captured so far, frozen."""
        return SpanList(self._items())

    def clear(self) -> None:
        """Forget the spans captured so far (spans that started before are ignored too)."""
        self._capture.clear()
        self._cache = (0, [])

    def wait_for(self, count: int, timeout: float = 5.0) -> SpanList:
        """Wait until at least ``count`` spans were captured (spans ending in other threads).

        Raises AssertionError, with the tree of what did arrive, after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            items = self._items()
            if len(items) >= count:
                return SpanList(items)
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"expected at least {count} spans within {timeout} s, got {len(items)}.\n"
                    f"Captured spans:\n{self._tree_or_none()}"
                )
            time.sleep(0.01)


@contextmanager
def capture_spans(*, isolate: bool = True) -> Iterator[CapturedSpans]:
    """Capture, in memory, every span that starts and ends inside the block.

    Works whether or not ``init()`` was called. Before any ``init()``, it sets up a local
    tracer provider that sends nothing anywhere and instruments the LLM, framework and
    vector-DB libraries ``init()`` would (the installed ones, or those named by
    ``TFY_TRACING_INSTRUMENTS``; none with ``TFY_TRACING_ENABLED=false``), so LLM calls are
    captured too. Like ``init()``'s, that instrumentation stays for the rest of the process;
    outside a capture its spans go nowhere. Spans are seen after redaction, exactly as they
    would be exported. With ``isolate`` (the default) any ``init()`` made inside the block is
    undone at its end, so one test's configuration never leaks into the next.

    Example:
        >>> from truefoundry_tracing import task
        >>> from truefoundry_tracing.testing import capture_spans
        >>> @task
        ... def step() -> int:
        ...     return 1
        >>> with capture_spans() as spans:
        ...     _ = step()
        >>> spans.one(kind="task").name
        'step.task'
    """
    from .. import _state
    from .._pipeline import Capture, get_pipeline
    from .._state import FLAGS

    saved = _state.snapshot() if isolate else None
    pipe = get_pipeline()
    capture = Capture()
    pipe.add_capture(capture)
    _instrument_like_init(pipe.ensure_provider())
    if FLAGS.tracer is None:
        FLAGS.tracer = pipe.tracer
    try:
        yield CapturedSpans(capture)
    finally:
        _instrument_like_init(None)  # an init() in the block may have changed what is applied
        pipe.remove_capture(capture)
        if saved is not None:
            _state.restore(saved)


def _instrument_like_init(provider: Any) -> None:
    """With no ``init()`` in force: instrument the libraries ``init()`` would, exporting nothing.

    With an ``init()`` in force, ``init()`` decides, and the next capture without one applies
    again (``provider=None`` only checks that).
    """
    from .. import _instruments
    from .._config import resolve
    from .._state import STATE, effective_env

    if STATE.status is not None:
        STATE.capture_instruments = None
    if provider is None or STATE.status is not None:
        return
    try:
        settings = resolve(env=effective_env())
        names = settings.instruments if settings.enabled else ()
    except Exception:  # a bad environment value is init()'s to report, not the capture's
        names = None
    if names == ():
        return
    # Applying again costs milliseconds per test: skip it while nothing changed (shutdown()
    # cancels instrumentations still waiting for their library's first use).
    if STATE.capture_instruments == (provider, names, _in_place()):
        return
    _instruments.apply(names, provider)
    STATE.capture_instruments = (provider, names, _in_place())


def _in_place() -> frozenset[str]:
    from .. import _instruments

    return frozenset(_instruments._active) | frozenset(_instruments._pending)
