"""
``dev.py``: how it counts a pytest run and when a run fails.

The counts come from pytest's own JUnit XML report, so these tests run a real pytest.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dev():
    if not (ROOT / "dev.py").is_file():
        pytest.skip("no dev.py here (an unpacked sdist)")
    spec = importlib.util.spec_from_file_location("pigeonhole_dev", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


SAMPLE = """
import unittest

import pytest

class Levels(unittest.TestCase):
    def test_each_level(self):
        for level in (10, 20, 30):
            with self.subTest(level=level):
                pass

def test_passes(): pass
def test_passes_too(): pass
def test_fails(): assert False
@pytest.mark.skip(reason="not here")
def test_skipped(): pass
@pytest.mark.xfail(strict=True)
def test_expected_to_fail(): assert False
@pytest.fixture
def broken(): raise RuntimeError("setup")
def test_errors(broken): pass
"""


def test_counts_come_from_pytests_report(dev, tmp_path):
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    report = tmp_path / "report.xml"
    # A bare pytest: no plugins, no settings module, no project configuration.
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
         "-c", os.devnull, "--rootdir", tmp_path, tmp_path],
        cwd=tmp_path, env=env, capture_output=True, check=False, timeout=120,
    )  # fmt: skip
    # As pytest's closing line counts them: a test with subtests is one test.
    assert dev.junit_counts(report) == {"passed": 3, "failed": 2, "skipped": 2}


def test_no_report_means_no_counts(dev, tmp_path):
    assert dev.junit_counts(tmp_path / "missing.xml") is None
    run = dev.PytestRun(code=4, seconds=1.0, counts=None)
    assert run.detail == "pytest exit code 4, no report (1.0s)"


def test_ci_fails_a_run_where_a_database_was_skipped(dev):
    rows = [dev.Row("sqlite", "passed", ""), dev.Row("mariadb", "skipped", "nothing answers")]
    assert dev.verdict(rows, ci=False) is None
    assert "skipped" in dev.verdict(rows, ci=True)


def test_a_failed_database_fails_the_run_everywhere(dev):
    rows = [dev.Row("sqlite", "failed", ""), dev.Row("postgres", "passed", "")]
    assert dev.verdict(rows, ci=False) == "sqlite"
