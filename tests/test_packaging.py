"""
What the distributions carry: the wheel the package and its data, the sdist the whole suite.

Building them takes a few seconds (``python -m build``, in its isolated environment), so the
build runs once for the module.
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_classifiers_name_every_python_and_django_the_matrix_tests():
    if not (ROOT / ".ci" / "run").is_file():
        pytest.skip("no .ci/run here (an unpacked sdist)")
    ci = (ROOT / ".ci" / "run").read_text()
    matrix = (ROOT / "noxfile.py").read_text().split("DJANGO_PYTHONS = {", 1)[1].split("}")[0]
    series = set(re.findall(r'^ +"(\d+\.\d+)": \(', matrix, flags=re.M))
    assert {"5.2", "6.1"} <= series and set(re.findall(r"--django (\d+\.\d+)", ci)) <= series
    pythons = set(re.findall(r'"(3\.\d+)"[,)]', matrix))
    assert "3.11" in pythons
    classifiers = PYPROJECT["project"]["classifiers"]
    for version in series:
        assert f"Framework :: Django :: {version}" in classifiers
    for version in pythons:
        assert f"Programming Language :: Python :: {version}" in classifiers


def tracked(*folders: str) -> set[str]:
    result = subprocess.run(
        ["git", "ls-files", "-z", *folders],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if result.returncode or not result.stdout:
        pytest.skip("not a git checkout: nothing to compare the sdist with")
    return {name for name in result.stdout.decode().split("\0") if name}


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, set[str]]:
    """Build the sdist, then the wheel from it, and return the names each holds."""
    if os.environ.get("PIGEONHOLE_TEST_DB", "sqlite") != "sqlite":
        pytest.skip("built on the SQLite run only: no database changes what is packaged")
    if importlib.util.find_spec("build") is None or not shutil.which("git"):
        pytest.skip("needs the build package (the dev extra) and git")
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", out, ROOT],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    return {"sdist": in_sdist, "wheel": set(zipfile.ZipFile(wheel).namelist())}


def test_sdist_carries_the_whole_test_suite(dists):
    sdist = dists["sdist"]
    assert {"tests/conftest.py", "tests/settings.py", "tests/testapp/__init__.py"} <= sdist
    missing = sorted(tracked("tests", "example") - sdist)
    assert not missing, f"tracked files left out of the sdist: {missing[:20]}"
    assert not [name for name in sdist if "__pycache__" in name or name.endswith(".sqlite3")]


def test_wheel_carries_the_package_data_and_no_tests(dists):
    wheel = dists["wheel"]
    for language in ("de", "es", "fr", "ja", "pt_BR"):
        assert f"pigeonhole/locale/{language}/LC_MESSAGES/django.mo" in wheel
    assert "pigeonhole/static/pigeonhole/pigeonhole.css" in wheel
    assert "pigeonhole/templates/pigeonhole/inbox.html" in wheel
    assert "pigeonhole/py.typed" in wheel
    assert {name.split("/")[0] for name in wheel if not name.startswith("django_pigeonhole-")} == {
        "pigeonhole"
    }
