"""The ``truefoundry-tracing`` command: ``doctor``, ``serve``, ``show`` and ``demo``.

Example:
    >>> main(["--version"])  # doctest: +ELLIPSIS
    truefoundry-tracing ...
    0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from .._version import __version__

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="truefoundry-tracing",
        description="Check the tracing configuration, or receive and view traces locally.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    doctor = sub.add_parser(
        "doctor",
        help="show the configuration init() would use and send one probe span",
        description=(
            "Resolve the configuration exactly as init() does (arguments here, then TFY_* and "
            "TRACELOOP_* variables), print it with where each value came from, send one probe "
            "span and explain the outcome. Exit code 0 only when the probe was accepted."
        ),
    )
    doctor.add_argument("--host", help="TrueFoundry control-plane URL (like TFY_HOST)")
    doctor.add_argument("--endpoint", help="any OTLP/HTTP base URL (like TFY_TRACING_ENDPOINT)")
    doctor.add_argument("--tracing-project", help="tracing project FQN (like TFY_TRACING_PROJECT)")
    doctor.add_argument("--app-name", help="application name (like TFY_TRACING_APP)")
    doctor.add_argument(
        "--timeout", type=float, default=None, help="seconds to wait for the probe (default 5)"
    )
    doctor.add_argument("--json", action="store_true", help="print one JSON document")

    serve = sub.add_parser(
        "serve",
        help="receive OTLP traces locally, store them and show them in a browser",
        description=(
            "A local stand-in for TrueFoundry's tracing endpoint: OTLP/HTTP (protobuf or JSON) "
            "at /v1/traces and /api/otel/v1/traces, spans stored in SQLite, each trace printed "
            "as a tree, and a trace viewer on the same port."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback)")
    serve.add_argument("--port", type=int, default=4318, help="port (default 4318; 0 = any free)")
    serve.add_argument("--data", type=Path, default=None, help="directory of the span database")
    serve.add_argument(
        "--require-key", default=None, metavar="KEY", help="answer 401 to exports without this key"
    )
    serve.add_argument(
        "--max-body-mb", type=float, default=20.0, help="largest request body, in MB (default 20)"
    )

    show = sub.add_parser("show", help="print stored traces as trees")
    show.add_argument("trace_id", nargs="?", help="a trace id, or its first characters")
    show.add_argument("--last", type=int, default=5, help="how many recent traces (default 5)")
    show.add_argument("--data", type=Path, default=None, help="directory of the span database")
    show.add_argument("--json", action="store_true", help="print the traces as JSON")

    sub.add_parser(
        "demo",
        help="run a small traced LLM app offline and print its trace (needs the openai extra)",
        description=(
            "A workflow with tasks, an agent and a tool calling an OpenAI-compatible endpoint: "
            "a local stand-in unless TFY_HOST and TFY_API_KEY are set. The trace tree is "
            "printed to stderr, or sent where TFY_HOST points."
        ),
    )
    return parser


def main(argv: Sequence[str] | None = None, *, out: IO[str] | None = None) -> int:
    """Run the command line; return the exit code (``python -m truefoundry_tracing`` too).

    Example:
        >>> main(["show", "--data", "/nonexistent/dir"])  # doctest: +ELLIPSIS
        no traces stored in /nonexistent/dir ...
        1
    """
    stream = out if out is not None else sys.stdout
    args = _parser().parse_args(argv)
    if args.version:
        stream.write(f"truefoundry-tracing {__version__}\n")
        return 0
    if args.command == "doctor":
        from ._doctor import print_report, run_doctor

        if args.timeout is not None and not 0 < args.timeout <= 600:
            stream.write("--timeout must be a number of seconds between 0 and 600.\n")
            return 2
        report = run_doctor(
            timeout=args.timeout,
            host=args.host,
            endpoint=args.endpoint,
            tracing_project=args.tracing_project,
            app_name=args.app_name,
        )
        print_report(report, stream, as_json=args.json)
        return 0 if report.ok else 1
    if args.command == "serve":
        return _serve(args, stream)
    if args.command == "show":
        from ._show import run_show
        from ._store import default_data_dir

        return run_show(
            args.data or default_data_dir(),
            stream,
            last=max(1, args.last),
            trace_id=args.trace_id,
            as_json=args.json,
        )
    if args.command == "demo":
        from ._demo import run_demo

        return run_demo(stream)
    _parser().print_help(stream)
    return 2


def _serve(args: argparse.Namespace, stream: IO[str]) -> int:
    import errno

    from ._serve import LocalServer, banner, serve_forever
    from ._store import default_data_dir

    if not 0 <= args.port <= 65535:
        stream.write(f"--port must be between 0 and 65535, not {args.port}.\n")
        return 2
    if args.max_body_mb <= 0:
        stream.write("--max-body-mb must be positive.\n")
        return 2
    data = args.data or default_data_dir()
    try:
        server = LocalServer(
            data,
            host=args.host,
            port=args.port,
            require_key=args.require_key,
            max_body_bytes=int(args.max_body_mb * 1024 * 1024),
            out=stream,
        ).start()
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            stream.write(
                f"port {args.port} on {args.host} is already in use (another serve, or an "
                "OpenTelemetry collector?); stop it or pass --port.\n"
            )
        else:
            stream.write(f"cannot serve on {args.host}:{args.port} with data in {data}: {err}\n")
        return 1
    serve_forever(server, stream, banner(server, args.host, args.require_key is not None))
    return 0
