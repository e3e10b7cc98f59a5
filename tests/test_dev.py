"""
``dev.py`` and ``noxfile.py``: the test matrix, how a pytest run is counted, and when a run fails.

These run the real tools: pytest writes the JUnit report that is counted, and nox lists the
project's sessions and runs small ones whose records dev.py summarises.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(name):
    if not (ROOT / name).is_file():
        pytest.skip(f"no {name} here (an unpacked sdist)")
    spec = importlib.util.spec_from_file_location(f"pigeonhole_{Path(name).stem}", ROOT / name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dev():
    yield load("dev.py")
    del sys.modules["pigeonhole_dev"]


@pytest.fixture(scope="module")
def noxfile():
    yield load("noxfile.py")
    del sys.modules["pigeonhole_noxfile"]


def nox(*args, cwd=ROOT, env=None):
    """Run the nox installed with the dev extra, as dev.py runs the one it bootstraps."""
    return subprocess.run(
        [sys.executable, "-m", "nox", *args],
        cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
        check=False, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def sessions(dev):
    listed = nox("--list", "--json", "--noxfile", ROOT / "noxfile.py")
    assert listed.returncode == 0, listed.stderr
    return dev.suite_sessions(listed.stdout)


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


def test_counts_come_from_pytests_report(noxfile, tmp_path):
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
    assert noxfile.junit_counts(report) == {"passed": 3, "failed": 2, "skipped": 2}


def test_no_report_means_no_counts(noxfile, tmp_path):
    assert noxfile.junit_counts(tmp_path / "missing.xml") is None
    assert noxfile.detail(4, 1.0, None) == "pytest exit code 4, no report (1.0s)"
    assert noxfile.detail(5, 1.0, {}).startswith("no tests collected (pytest exit 5)")


def test_the_matrix_pairs_django_6_with_python_3_12_and_newer_only(sessions):
    pairs = {(s.python, s.django) for s in sessions}
    assert ("3.11", "5.2") in pairs and ("3.13", "6.1") in pairs
    assert not [pair for pair in pairs if pair[1] >= "6" and pair[0] < "3.12"]
    for pair in pairs:
        assert {s.db for s in sessions if (s.python, s.django) == pair} == {
            "sqlite", "postgres", "mariadb"
        }  # fmt: skip


def test_dev_py_names_one_session_per_database_in_order(dev, sessions):
    names = dev.pick(sessions, "3.13", "6.1", ["postgres", "sqlite"])
    assert names == [
        'test(python="3.13", django="6.1", db="postgres")',
        'test(python="3.13", django="6.1", db="sqlite")',
    ]
    # Without --django, the oldest series; without --db, every database.
    assert [name.split("db=")[1] for name in dev.pick(sessions, "3.11", None, [])] == [
        '"sqlite")', '"postgres")', '"mariadb")'
    ]  # fmt: skip
    assert 'django="5.2"' in dev.pick(sessions, "3.13", None, ["sqlite"])[0]
    assert dev.pick(sessions, "3.11", None, ["all"]) == dev.pick(sessions, "3.11", None, [])


def test_dev_py_names_the_fix_for_a_pair_or_database_outside_the_matrix(dev, sessions):
    with pytest.raises(dev.DevError, match=r"Django 5.2, not 6.1; add --python 3.12 or 3.13$"):
        dev.pick(sessions, "3.11", "6.1", [])
    with pytest.raises(dev.DevError, match=r"Django 5.2, 6.0, 6.1, not 4.2$"):
        dev.pick(sessions, "3.12", "4.2", [])
    with pytest.raises(dev.DevError, match=r"tests Python 3.11, 3.12, 3.13, not 3.9"):
        dev.pick(sessions, "3.9", None, [])
    with pytest.raises(dev.DevError, match=r"unknown database oracle; choose from sqlite,"):
        dev.pick(sessions, "3.11", None, ["sqlite", "oracle"])


def test_nox_accepts_the_names_dev_py_gives(dev, sessions):
    names = dev.pick(sessions, "3.12", "6.0", ["mariadb"])
    listed = nox("--list", "--noxfile", ROOT / "noxfile.py", "--sessions", *names)
    assert listed.returncode == 0, listed.stderr
    assert "* test(python='3.12', django='6.0', db='mariadb')" in listed.stdout


def test_an_interpreter_is_put_on_path_under_its_version(dev, tmp_path):
    version, path = dev.interpreter(sys.executable)
    assert version == f"{sys.version_info[0]}.{sys.version_info[1]}"
    search = dev.interpreter_path(version, path, tmp_path / "interpreters")
    found = shutil.which(f"python{version}", path=search)
    assert found == str(tmp_path / "interpreters" / f"python{version}")
    assert Path(found).resolve() == Path(sys.executable).resolve()
    with pytest.raises(dev.DevError, match=r"no Python found for --python 2\.1"):
        dev.interpreter("2.1")


SESSIONS = """
import importlib.util

import nox

spec = importlib.util.spec_from_file_location("project_noxfile", {noxfile!r})
project = importlib.util.module_from_spec(spec)
spec.loader.exec_module(project)


@nox.session(venv_backend="none")
@nox.parametrize("db", ["sqlite", "postgres", "mariadb"])
def probe(session, db):
    redis = project.row("redis", "up", "redis://127.0.0.1:6379/15")
    if db == "mariadb":
        session.error("the install failed")
    if db == "postgres":
        project.record(session, "Python 3", [redis, project.row(db, "skipped", "nothing answers")])
        session.skip("nothing answers")
    counts = {{"passed": 2, "failed": 0, "skipped": 1}}
    project.record(session, "Python 3", [redis, project.row(db, "passed", "2 passed", counts)])
"""


def test_the_summary_reads_what_each_session_recorded(dev, noxfile, tmp_path, capsys):
    (tmp_path / "noxfile.py").write_text(
        textwrap.dedent(SESSIONS.format(noxfile=str(ROOT / "noxfile.py")))
    )
    results, report = tmp_path / "results", tmp_path / "nox.json"
    results.mkdir()
    names = ["probe(db='sqlite')", "probe(db='postgres')", "probe(db='mariadb')"]
    ran = nox(
        "--report", report, "--sessions", *names,
        cwd=tmp_path, env={noxfile.RESULTS_ENV: str(results)},
    )  # fmt: skip
    assert ran.returncode == 1, ran.stderr  # mariadb's session failed

    rows, where = dev.collect(report, results)
    assert where == "Python 3"
    assert [(row.backend, row.result, row.detail) for row in rows] == [
        ("redis", "up", "redis://127.0.0.1:6379/15"),
        ("sqlite", "passed", "2 passed"),
        ("postgres", "skipped", "nothing answers"),
        ("mariadb", "failed", "the install failed"),  # no record: nox's reason
    ]
    dev.summary(rows, where)
    out = capsys.readouterr().out
    assert "Skipped backends: postgres (nothing answers)" in out
    assert "Total: 2 passed, 0 failed, 1 skipped" in out


def test_a_session_leaves_the_temporary_folder_alone():
    """
    nox's ``create_tmp()`` points TMPDIR into ``.nox/<session>/tmp``: too deep for the Unix
    sockets the suite's servers and Chromium make there (108 bytes at most).
    """
    assert f"{os.sep}.nox{os.sep}" not in tempfile.gettempdir()


def test_ci_fails_a_run_where_a_database_was_skipped(dev):
    rows = [dev.Row("sqlite", "passed", ""), dev.Row("mariadb", "skipped", "nothing answers")]
    assert dev.verdict(rows, ci=False) is None
    assert "skipped" in dev.verdict(rows, ci=True)


def test_a_failed_database_fails_the_run_everywhere(dev):
    rows = [dev.Row("sqlite", "failed", ""), dev.Row("postgres", "passed", "")]
    assert dev.verdict(rows, ci=False) == "sqlite"
