"""Start ``tests/compat/real`` in a pytest of its own, with the old libraries installed."""

import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from .real.settings import LIBRARIES

ROOT = Path(__file__).resolve().parents[2]


def test_import_moves_rows_written_by_the_old_libraries():
    installed = [app for app in LIBRARIES if find_spec(app)]
    if not installed:
        pytest.skip(f"none of {', '.join(LIBRARIES.values())} is installed")
    base = os.environ.get("PIGEONHOLE_TEST_DB_NAME", "test_test")
    # Its own test database: this run's is in use.
    env = {**os.environ, "PIGEONHOLE_TEST_DB_NAME": f"{base}_import"}
    command = [
        sys.executable, "-m", "pytest", "tests/compat/real/real_import.py",
        "--ds=tests.compat.real.settings", "-o", "python_files=real_*.py",
        "-p", "no:cacheprovider", "-q", "-rs",
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert f"{len(installed)} passed" in output, output[-4000:]
