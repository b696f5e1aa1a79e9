"""Quickstart: a small traced LLM app (a workflow with tasks, an agent and a tool).

Run it with ``bash scripts/demo``, or after ``pip install 'truefoundry-tracing[openai]'`` with
``truefoundry-tracing demo``: this file runs that command. The program itself is
``truefoundry_tracing/cli/_demo.py``, shipped inside the package so the demo needs no clone.
With no TrueFoundry settings it starts a local OpenAI-compatible stand-in, so it works offline,
and prints its trace tree to stderr. With ``TFY_HOST`` and ``TFY_API_KEY`` set, it calls
TrueFoundry's AI gateway (``<TFY_HOST>/api/llm``, model ``TFY_MODEL`` or
``openai-main/gpt-4o-mini``) and sends the trace to TrueFoundry.
"""

from __future__ import annotations

import sys

from truefoundry_tracing.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
