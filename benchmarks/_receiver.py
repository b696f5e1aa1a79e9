"""A local OTLP receiver in its own process, driven over stdin, for the benchmarks.

Running the collector in another process keeps its decoding work off the measured process's
GIL. Prints its base URL, then answers one line per command: ``count`` (spans accepted so
far), ``clear`` (forget them), ``hang`` (hold every later request unanswered). Exits when
stdin closes.

    python -m benchmarks._receiver
"""

from __future__ import annotations

import os
import sys
import threading

from truefoundry_tracing.testing import OTLPReceiver, ReceivedRequest


def main() -> None:
    lock = threading.Lock()
    accepted = [0]
    receiver: OTLPReceiver

    def on_export(request: ReceivedRequest) -> None:
        with lock:
            accepted[0] += len(request.spans)
        receiver.clear()  # keep the receiver's memory flat over long runs

    # Langfuse sends to <host>/api/public/otel/v1/traces; the others to /v1/traces.
    paths = ("/v1/traces", "/api/otel/v1/traces", "/api/public/otel/v1/traces")
    receiver = OTLPReceiver(on_export=on_export, paths=paths).start()
    print(receiver.url, flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "count":
            with lock:
                print(accepted[0], flush=True)
        elif command == "clear":
            with lock:
                accepted[0] = 0
            print("ok", flush=True)
        elif command == "hang":
            receiver.hang()
            print("ok", flush=True)
        else:
            print(f"unknown command {command!r}", flush=True)
    os._exit(0)  # a hung request must not hold the exit


if __name__ == "__main__":
    main()
