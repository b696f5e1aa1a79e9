"""``truefoundry-tracing show``: traces stored by ``serve``, as trees in the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

from .._render import render_tree
from ._store import DB_NAME, Store
from ._web import trace_json

__all__ = ["run_show"]


def run_show(
    data_dir: Path,
    out: IO[str],
    *,
    last: int = 5,
    trace_id: str | None = None,
    as_json: bool = False,
) -> int:
    """Print the ``last`` most recent traces (or the one ``trace_id`` starts with); exit code.

    Example:
        >>> import io, tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     run_show(Path(tmp), io.StringIO())
        1
    """
    try:
        store = Store(data_dir, create=False)
    except FileNotFoundError:
        out.write(
            f"no traces stored in {data_dir} (no {DB_NAME} there). Run "
            "`truefoundry-tracing serve` and point your app at it with "
            "TFY_HOST=http://127.0.0.1:4318, or pass --data DIR.\n"
        )
        return 1
    with store:
        if trace_id is not None:
            found = store.find(trace_id)
            if not found:
                out.write(f"no trace id starting with {trace_id!r} in {store.path}.\n")
                return 1
            if len(found) > 1:
                out.write(
                    f"{len(found)} traces start with {trace_id!r}; give more characters: "
                    + ", ".join(found[:5])
                    + "\n"
                )
                return 1
            ids = found
        else:
            ids = [t.trace_id for t in store.traces(last)]
            if not ids:
                out.write(f"no traces stored in {store.path} yet.\n")
                return 1
        if as_json:
            out.write(json.dumps([trace_json(store.spans(t)) for t in ids], indent=2) + "\n")
            return 0
        for tid in reversed(ids):  # oldest first, so the newest ends up next to the prompt
            spans = store.spans(tid)
            app = next((s.service_name for s in spans if s.service_name), "-")
            out.write(f"trace {tid}  app={app}  spans={len(spans)}\n{render_tree(spans)}\n\n")
    return 0
