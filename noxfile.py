"""
The development tasks and the test matrix of django-pigeonhole, declared once, for nox.

``nox -l`` lists the sessions: ``test`` once per Python x Django x database, then ``lint``,
``docs``, ``bench`` and ``demo``. Each session gets its own environment under ``.nox/``, made
and kept current by uv. ``python3 dev.py`` installs nox and uv and runs these sessions, and
adds what a nox session cannot know alone: pyenv's interpreters, and one summary over the
databases of a run that fails under ``CI=true`` when one was skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree import ElementTree

import nox
from nox.command import CommandFailed

nox.needs_version = ">=2026.10.20"
nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
# Interpreters come from this machine (dev.py points nox at pyenv's), never from a download.
nox.options.download_python = "never"
nox.options.sessions = ["test"]

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"

#: Django series the suite supports, each with the Pythons it runs on.
DJANGO_PYTHONS = {
    "5.2": ("3.11", "3.12", "3.13"),
    "6.0": ("3.12", "3.13"),
    "6.1": ("3.12", "3.13"),
}
DATABASES = ("sqlite", "postgres", "mariadb")
#: The Django series that lint, docs, bench and demo install, and that the type stubs match.
DEFAULT_DJANGO = "5.2"

# The same variables tests/settings.py reads, so the probe asks the server the tests will use.
PG_HOST = os.environ.get("PIGEONHOLE_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("PIGEONHOLE_PG_PORT", "5432")
PG_USER = os.environ.get("PIGEONHOLE_PG_USER", "postgres")
MARIADB_HOST = os.environ.get("PIGEONHOLE_MARIADB_HOST", "127.0.0.1")
MARIADB_PORT = os.environ.get("PIGEONHOLE_MARIADB_PORT", "3306")
MARIADB_USER = os.environ.get("PIGEONHOLE_MARIADB_USER", "root")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/15"
MARIADB_FIX = "apt-get install libmariadb-dev pkg-config"

#: Where a test session records its summary rows for dev.py (see record()).
RESULTS_ENV = "PIGEONHOLE_DEV_RESULTS"
PYTEST_NO_TESTS = 5

VERSIONS = "import sys, django; print(sys.version.split()[0], django.__version__)"

PG_CONNECT = """
import sys, psycopg
host, port, user = sys.argv[1:4]
psycopg.connect(host=host, port=port, user=user, dbname="test", connect_timeout=10).close()
"""

MARIADB_CONNECT = """
import sys, MySQLdb
host, port, user = sys.argv[1:4]
MySQLdb.connect(host=host, port=int(port), user=user, password="", connect_timeout=10).close()
"""


# --------------------------------------------------------------------------- sessions


@nox.session
@nox.parametrize("db", DATABASES)
@nox.parametrize(
    "python,django",
    [(python, django) for django, pythons in DJANGO_PYTHONS.items() for python in pythons],
)
def test(session: nox.Session, django: str, db: str) -> None:
    """Run the test suite on one database; arguments after -- go to pytest."""
    install(session, django=django)
    python_version, django_version = str(session.run("python", "-c", VERSIONS, silent=True)).split()
    rows: list[dict[str, Any]] = []
    try:
        problem = database_problem(session, db)
        if problem:
            rows.append(row(db, "skipped", problem))
            session.skip(problem)
        env = suite_env(python_version, django_version, db, rows)
        run_pytest(session, db, env, rows)
    finally:
        record(session, f"Python {python_version}, Django {django_version}", rows)


@nox.session
def lint(session: nox.Session) -> None:
    """
    Check style and types without changing files: `ruff format .` is left to the author.

    Each check runs even when one before it failed, so one run shows every problem.
    """
    install(session)
    checks = [("ruff", "check", "."), ("ruff", "format", "--check", "."), ("mypy",)]
    failed = []
    for check in checks:  # mypy checks the modules [tool.mypy] in pyproject.toml lists
        try:
            session.run(*check)
        except CommandFailed:
            failed.append(" ".join(check))
    if failed:
        session.error(f"failed: {'; '.join(failed)}")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the site with --strict, so a broken link or a missing page fails the build."""
    install(session)
    session.run("mkdocs", "build", "--strict")


@nox.session
def bench(session: nox.Session) -> None:
    """Run benchmarks/run.py with the arguments after --."""
    install(session, "bench")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """
    Migrate, create the demo users (printed by demo_setup) and serve the example site.

    The demo installs only the package and uvicorn (the ``demo`` extra): a first look should
    not wait for the test and docs toolchain. uvicorn serves the site under ASGI, so the inbox
    streams its updates; one process keeps the in-memory broker, and a message sent in one tab
    reaches the others at once. ``-- 8001`` picks another port.
    """
    install(session, "demo")
    port = session.posargs[0] if session.posargs else "8000"
    url = f"http://127.0.0.1:{port}/"
    env = {"DEMO_SITE_URL": url.rstrip("/")}
    session.chdir("example")
    session.run("python", "manage.py", "migrate", "--noinput", "-v", "0", env=env)
    session.run("python", "manage.py", "demo_setup", f"--url={url}", env=env)
    session.log(f"Serving the demo at {url} with uvicorn (ASGI); Ctrl+C stops it.")
    session.run(
        "python", "-m", "uvicorn", "demo.asgi:application", "--host", "127.0.0.1",
        "--port", port, "--workers", "1", "--lifespan", "off", env=env,
    )  # fmt: skip


def run_pytest(
    session: nox.Session, db: str, env: dict[str, str | None], rows: list[dict[str, Any]]
) -> None:
    """Run pytest with a JUnit report, and add the database's row, counted from the report."""
    report = own_file(session, "report.xml")
    report.unlink(missing_ok=True)  # a run that dies early must not count the last one
    started = time.monotonic()
    code = 0
    try:
        session.run("python", "-m", "pytest", f"--junitxml={report}", *session.posargs, env=env)
    except CommandFailed as exc:
        code = exc.return_code or 1
        raise
    finally:
        counts = junit_counts(report)
        took = detail(code, time.monotonic() - started, counts)
        rows.append(row(db, "failed" if code else "passed", took, counts))


def own_file(session: nox.Session, name: str) -> Path:
    """
    Return the path of a file of the session's own, in its environment's folder.

    Not in ``session.create_tmp()``: that also points ``TMPDIR`` at ``.nox/<session>/tmp``,
    and a Unix socket under so deep a folder (Chromium's) outgrows the 108 bytes allowed.
    """
    return Path(session.virtualenv.location) / name


def install(session: nox.Session, extra: str = "dev", django: str = DEFAULT_DJANGO) -> None:
    """
    Install the project in editable mode with ``extra`` and one Django series.

    The requirements go through a file: uv rebuilds a project named on its command line on
    every run (seconds each time), one named in a file only when its pyproject.toml changed.
    """
    requirements = own_file(session, "requirements.txt")
    requirements.write_text(f"-e {ROOT}[{extra}]\ndjango~={django}.0\n")
    session.install("-r", str(requirements))


# --------------------------------------------------------------------------- probes


def database_problem(session: nox.Session, db: str) -> str | None:
    """
    Say why ``db`` cannot be tested, or None when it answers.

    A TCP connect tells "not running" apart from driver trouble; then the driver the tests
    use connects for real. MariaDB's driver, mysqlclient, compiles against the client headers,
    so it is installed here and a failed build names the packages it needs.
    """
    if db == "postgres":
        return port_problem(PG_HOST, PG_PORT) or driver_problem(
            session, PG_CONNECT, PG_HOST, PG_PORT, PG_USER
        )
    if db == "mariadb":
        problem = port_problem(MARIADB_HOST, MARIADB_PORT)
        if problem:
            return problem
        try:
            session.install("mysqlclient")
        except CommandFailed:
            session.warn(f"mysqlclient failed to build; on Debian or Ubuntu: {MARIADB_FIX}")
            return f"mysqlclient failed to build (fix: {MARIADB_FIX})"
        return driver_problem(session, MARIADB_CONNECT, MARIADB_HOST, MARIADB_PORT, MARIADB_USER)
    return None


def port_problem(host: str, port: str | int, timeout: float = 2.0) -> str | None:
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return None
    except OSError as exc:
        return f"nothing answers on {host}:{port} ({exc.strerror or exc})"


def driver_problem(session: nox.Session, script: str, *args: str) -> str | None:
    """Connect with the real driver in the session's environment; return its error if any."""
    python = shutil.which("python", path=session.bin)
    try:
        result = subprocess.run(
            [python or "python", "-c", script, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "the driver's connect timed out"
    if result.returncode == 0:
        return None
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1] if lines else f"driver check exited with {result.returncode}"


def redis_problem() -> str | None:
    """Send a RESP PING over a plain socket: no driver needed to know the server is usable."""
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=2.0) as conn:
            conn.sendall(b"PING\r\n")
            reply = conn.recv(64)
    except OSError as exc:
        return f"nothing answers on {REDIS_HOST}:{REDIS_PORT} ({exc.strerror or exc})"
    if reply.startswith(b"+PONG"):
        return None
    return f"unexpected PING reply {reply.decode(errors='replace').strip()!r}"


def suite_env(
    python_version: str, django_version: str, db: str, rows: list[dict[str, Any]]
) -> dict[str, str | None]:
    """
    Return the variables the suite reads, and add a row for each optional part to ``rows``.

    Each is set here or removed, never inherited, so the summary says what the tests saw.
    """
    tests, why = django_tests_dir(django_version, python_version)
    if tests:
        rows.append(row("django-suite", "ready", f"Django {django_version} messages_tests"))
    else:
        rows.append(row("django-suite", "skipped", why))
    redis = redis_problem()
    rows.append(row("redis", "skipped", redis) if redis else row("redis", "up", REDIS_URL))
    return {
        "PIGEONHOLE_TEST_DB": db,
        "PIGEONHOLE_DJANGO_TESTS": str(tests) if tests else None,
        "PIGEONHOLE_TEST_REDIS_URL": None if redis else REDIS_URL,
    }


# --------------------------------------------------------------------------- Django's own tests


def django_tests_dir(version: str, python_version: str) -> tuple[Path | None, str]:
    """
    Return a directory holding ``messages_tests`` from this Django release's source.

    Django's own contrib.messages tests are not in the wheel, so the sdist is downloaded once
    per version into ``.cache/django-src/<version>/`` and only ``tests/messages_tests`` is
    unpacked. The pip nox runs with downloads it, so pip's configuration (an index mirror)
    applies, told the session's Python version because each Django release names the Pythons
    it supports. The second value says why there is no directory when the first is None.
    """
    base = CACHE / "django-src" / version
    tests = base / "tests"
    if (tests / "messages_tests" / "__init__.py").is_file():
        return tests, ""
    CACHE.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        download = Path(tmp) / "download"
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
            "--no-deps", "--python-version", python_version, f"django=={version}",
            "--dest", str(download),
        ]  # fmt: skip
        code = subprocess.call(command)
        sdists = sorted(download.glob("*.tar.gz")) if download.is_dir() else []
        if code or not sdists:
            return None, f"could not download Django {version}'s source distribution"
        unpacked = Path(tmp) / "unpacked"
        count = extract_messages_tests(sdists[0], unpacked)
        if not count:
            return None, f"no tests/messages_tests in {sdists[0].name}"
        if tests.exists():
            shutil.rmtree(tests)
        base.mkdir(parents=True, exist_ok=True)
        os.replace(unpacked / "tests", tests)  # whole or nothing: no half-filled cache
    return tests, ""


def extract_messages_tests(sdist: Path, dest: Path) -> int:
    """
    Copy ``<top>/tests/messages_tests/**`` from the tarball to ``dest/tests/messages_tests``.

    Regular files are written one by one under a checked relative path, so nothing in the
    archive (links, absolute names, ``..``) can write outside ``dest``.
    """
    count = 0
    with tarfile.open(sdist) as archive:
        for member in archive:
            parts = PurePosixPath(member.name).parts
            if len(parts) < 4 or parts[1:3] != ("tests", "messages_tests") or not member.isfile():
                continue
            relative = parts[1:]
            if any(part in ("", ".", "..") for part in relative):
                continue
            source = archive.extractfile(member)
            if source is None:
                continue
            target = dest.joinpath(*relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            with source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink)
            count += 1
    return count


# --------------------------------------------------------------------------- results


def junit_counts(report: Path) -> dict[str, int] | None:
    """
    Count passed, failed and skipped tests in a pytest ``--junitxml`` report.

    Each ``<testcase>`` is one test, as pytest's closing line counts them (the suite's
    ``tests`` attribute adds subtests). Errors count as failures, expected failures as
    skipped. None when there is no readable report: pytest stopped before writing it.
    """
    try:
        root = ElementTree.parse(report).getroot()
    except (OSError, ElementTree.ParseError):
        return None
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for case in root.iter("testcase"):
        outcomes = {child.tag for child in case}
        if outcomes & {"failure", "error"}:
            counts["failed"] += 1
        elif "skipped" in outcomes:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts


def detail(code: int, seconds: float, counts: dict[str, int] | None) -> str:
    """Describe one pytest run for the summary: its counts, or why there are none."""
    took = f"({seconds:.1f}s)"
    if code == PYTEST_NO_TESTS:
        return f"no tests collected (pytest exit 5) {took}"
    if counts is None:
        return f"pytest exit code {code}, no report {took}"
    return f"{', '.join(f'{n} {word}' for word, n in counts.items())} {took}"


def row(
    backend: str, result: str, detail: str, counts: dict[str, int] | None = None
) -> dict[str, Any]:
    """One line of dev.py's summary; the keys are those of ``Row`` in dev.py."""
    return {"backend": backend, "result": result, "detail": detail, "counts": counts}


def record(session: nox.Session, where: str, rows: list[dict[str, Any]]) -> None:
    """
    Write this session's rows where dev.py asked for them (``$PIGEONHOLE_DEV_RESULTS``).

    Run by nox alone, with no such directory, a session records nothing: pytest's closing
    line and nox's own summary tell the same story.
    """
    folder = os.environ.get(RESULTS_ENV)
    if not folder:
        return
    entry = {"session": session.name, "where": where, "rows": rows}
    path = Path(folder) / f"{hashlib.sha256(session.name.encode()).hexdigest()[:16]}.json"
    path.write_text(json.dumps(entry, indent=2) + "\n")
