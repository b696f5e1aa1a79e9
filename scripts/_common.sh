# Shared by the scripts in this folder: finds or installs uv, and builds one virtual
# environment per supported traceloop-sdk line from its constraints file.

ensure_uv() {
  if command -v uv >/dev/null 2>&1; then UV=uv; return; fi
  if [ ! -x .venv/bootstrap/bin/uv ]; then
    python3 -m venv .venv/bootstrap
    .venv/bootstrap/bin/python -m pip install --quiet --disable-pip-version-check uv
  fi
  UV="$PWD/.venv/bootstrap/bin/uv"
  export PATH="$PWD/.venv/bootstrap/bin:$PATH"
}

# make_env NAME CONSTRAINTS EXTRAS: creates .venv/NAME with the project installed in
# editable mode, pinned by the constraints file.
make_env() {
  local name=$1 constraints=$2 extras=$3
  if [ ! -x ".venv/$name/bin/python" ]; then
    "$UV" venv --quiet --python python3.11 ".venv/$name" 2>/dev/null \
      || "$UV" venv --quiet ".venv/$name"
  fi
  "$UV" pip install --quiet --python ".venv/$name/bin/python" -c "$constraints" -e ".[$extras]"
}
