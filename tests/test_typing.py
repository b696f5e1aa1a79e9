"""A user's code decorated with this library passes ``mypy --strict`` with signatures intact."""

from __future__ import annotations

from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

CASES = Path(__file__).parent / "typing_cases"
ROOT = Path(__file__).parent.parent


def _mypy(path: Path) -> tuple[str, int]:
    out, err, code = mypy_api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir=/dev/null",
            "--python-version=3.11",
            "--config-file=",
            str(path),
        ]
    )
    return out + err, code


@pytest.mark.slow
def test_decorated_user_code_keeps_its_types() -> None:
    output, code = _mypy(CASES / "user_app.py")
    assert code == 0, output
    assert "Untyped decorator" not in output


@pytest.mark.slow
def test_wrong_calls_to_decorated_functions_are_reported() -> None:
    output, code = _mypy(CASES / "user_errors.py")
    assert code == 1, output
    lines = [line for line in output.splitlines() if ": error:" in line]
    assert len(lines) == 2, output
    assert 'incompatible type "int"; expected "str"' in lines[0]
    assert 'Unexpected keyword argument "extra"' in lines[1]
