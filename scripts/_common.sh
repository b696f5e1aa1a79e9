# Shared by the scripts in this folder: finds or installs uv, and builds one virtual
# environment per supported traceloop-sdk line from its tested constraints file.

export UV_PYTHON_DOWNLOADS=never

ensure_uv() {
  if command -v uv >/dev/null 2>&1; then UV=$(command -v uv); return; fi
  if [ ! -x .venv/bootstrap/bin/uv ]; then
    python3 -m venv .venv/bootstrap
    .venv/bootstrap/bin/python -m pip install --quiet --disable-pip-version-check uv
  fi
  UV="$PWD/.venv/bootstrap/bin/uv"
}

# make_env NAME CONSTRAINTS EXTRAS: .venv/NAME with this project installed (editable) and
# every version pinned by CONSTRAINTS.
make_env() {
  local name=$1 constraints=$2 extras=$3
  if [ ! -x ".venv/$name/bin/python" ]; then
    "$UV" venv --quiet --python "$(command -v python3)" ".venv/$name"
  fi
  "$UV" pip install --quiet --python ".venv/$name/bin/python" -c "$constraints" -e ".[$extras]"
}

# The tracing libraries benchmarks/peers.py compares this one with (bash scripts/bench).
bench_peers() {
  echo traceloop-sdk logfire arize-phoenix-otel openinference-instrumentation langfuse mlflow-tracing
}
