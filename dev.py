#!/usr/bin/env python3
"""The one entry point for working on django-pigeonhole: tests, demo, lint, docs, benchmarks.

It uses only the standard library, so a fresh checkout needs nothing but Python 3.11+ and git:
everything else goes into a virtual environment that this script creates and keeps current.

    python3 dev.py test [--python 3.13] [--django 6.1] [--db sqlite,postgres] [-- -k inbox]
    python3 dev.py demo [--port 8000]
    python3 dev.py lint
    python3 dev.py docs
    python3 dev.py bench [benchmark args]

`test` runs the suite once per database, because the backends must behave the same on each of
them; a database that cannot be reached is reported as skipped, and with ``CI=true`` a skipped
backend fails the run, so that CI never goes green by testing less than it claims.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

if sys.version_info < (3, 11):  # noqa: UP036 - the point is a clear message on old Pythons
    sys.exit("dev.py needs Python 3.11 or newer.")

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"
PYENV_VERSIONS = Path.home() / ".pyenv" / "versions"

DATABASES = ("sqlite", "postgres", "mariadb")
DEFAULT_DJANGO = "5.2"
STAMP_NAME = "pigeonhole-dev-stamp.json"

# The same variables tests/settings.py reads, so the probe asks the server the tests will use.
PG_HOST = os.environ.get("PIGEONHOLE_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PIGEONHOLE_PG_PORT", "5432"))
PG_USER = os.environ.get("PIGEONHOLE_PG_USER", "postgres")
MARIADB_HOST = os.environ.get("PIGEONHOLE_MARIADB_HOST", "127.0.0.1")
MARIADB_PORT = int(os.environ.get("PIGEONHOLE_MARIADB_PORT", "3306"))
MARIADB_USER = os.environ.get("PIGEONHOLE_MARIADB_USER", "root")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/15"

MARIADB_FIX = "apt-get install libmariadb-dev pkg-config"
MANAGED_ENV = ("PIGEONHOLE_TEST_DB", "PIGEONHOLE_DJANGO_TESTS", "PIGEONHOLE_TEST_REDIS_URL")
PYTEST_NO_TESTS = 5


class DevError(Exception):
    """A problem the developer can fix; printed without a traceback."""


# --------------------------------------------------------------------------- running commands


def shown(arg: str | os.PathLike[str], cwd: Path = ROOT) -> str:
    """Print repository paths relative to ``cwd``, so echoed commands are short and pasteable."""
    text = os.fspath(arg)
    if text == str(ROOT) or text.startswith(f"{ROOT}{os.sep}"):
        return os.path.relpath(text, cwd)
    return text


def echo(cmd: Sequence[str | os.PathLike[str]], env: Mapping[str, str], cwd: Path) -> None:
    """Show each command before it runs: a failure is then easy to reproduce by hand."""
    parts = [f"{key}={shlex.quote(value)}" for key, value in env.items()]
    parts += [shlex.quote(shown(arg, cwd)) for arg in cmd]
    where = "" if cwd == ROOT else f"(cd {shown(cwd)} && "
    print(f"$ {where}{' '.join(parts)}{')' if where else ''}", flush=True)


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
    check: bool = True,
    unset: Sequence[str] = (),
) -> int:
    """
    Run a command in the foreground, echoing it; with ``check`` a failure stops dev.py.

    ``unset`` names inherited variables the command must not see: those ``env`` alone decides.
    """
    extra = dict(env or {})
    echo(cmd, extra, cwd)
    inherited = {key: value for key, value in os.environ.items() if key not in unset}
    try:
        code = subprocess.call(list(cmd), cwd=cwd, env={**inherited, **extra})
    except FileNotFoundError as exc:
        raise DevError(f"cannot run {shown(cmd[0])}: {exc.strerror}") from exc
    if check and code:
        command = " ".join(shlex.quote(shown(arg)) for arg in cmd)
        raise DevError(f"command failed with exit code {code}: {command}")
    return code


def output(cmd: Sequence[str | os.PathLike[str]]) -> str:
    """Capture a short answer from a helper command (versions, probes); not echoed."""
    try:
        result = subprocess.run(
            list(cmd), cwd=ROOT, capture_output=True, text=True, check=False, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DevError(f"cannot run {shown(cmd[0])}: {exc}") from exc
    if result.returncode:
        raise DevError((result.stderr or result.stdout).strip() or f"{cmd[0]} failed")
    return result.stdout.strip()


# --------------------------------------------------------------------------- interpreters


@dataclass(frozen=True)
class Interpreter:
    """A Python interpreter found on this machine and the version it reported."""

    path: Path
    version: tuple[int, int, int]

    @property
    def short(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def full(self) -> str:
        return ".".join(map(str, self.version))


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.name.split("."))


def resolve_python(spec: str | None) -> Interpreter:
    """Turn ``--python`` into an interpreter.

    A path is used as given; a version such as ``3.13`` prefers pyenv's newest matching build
    (``~/.pyenv/versions/3.13.*``), because distributions rarely ship several Pythons side by
    side, and falls back to ``python3.13`` on PATH.
    """
    if spec is None:
        path: Path | None = Path(sys.executable)
    elif os.sep in spec or spec.startswith("."):
        path = Path(spec).expanduser().absolute()  # commands run from the repository root
    elif re.fullmatch(r"\d+\.\d+(\.\d+)?", spec):
        path = None
        if spec.count(".") == 2:
            builds = [PYENV_VERSIONS / spec]
        else:
            pattern = re.compile(rf"{re.escape(spec)}\.\d+")
            found = PYENV_VERSIONS.glob(f"{spec}.*") if PYENV_VERSIONS.is_dir() else []
            builds = sorted((p for p in found if pattern.fullmatch(p.name)), key=_version_key)
        for build in reversed(builds):
            if (build / "bin" / "python").is_file():
                path = build / "bin" / "python"
                break
        if path is None:
            major_minor = ".".join(spec.split(".")[:2])
            on_path = shutil.which(f"python{major_minor}")
            path = Path(on_path) if on_path else None
    else:
        on_path = shutil.which(spec)
        path = Path(on_path) if on_path else None
    if path is None or not path.is_file():
        raise DevError(
            f"no Python interpreter found for --python {spec!r} "
            f"(looked in {PYENV_VERSIONS} and on PATH)"
        )
    reported = output([path, "-c", "import sys; print(*sys.version_info[:3])"])
    major, minor, micro = (int(part) for part in reported.split())
    return Interpreter(path, (major, minor, micro))


# --------------------------------------------------------------------------- virtual environments


def django_requirement(spec: str) -> tuple[str, str]:
    """Turn ``--django`` into a pip requirement and a short label for the venv's name.

    ``6.1`` means the 6.1 series (``django~=6.1.0``), ``6.1.3`` that exact release, and
    anything starting with an operator (``>=6.0``) is passed to pip as written.
    """
    spec = spec.strip()
    if re.fullmatch(r"\d+\.\d+", spec):
        return f"django~={spec}.0", spec
    if re.fullmatch(r"\d+\.\d+\.\d+\w*", spec):
        return f"django=={spec}", spec
    if re.match(r"[<>=!~]", spec):
        return f"django{spec}", re.sub(r"[^\w.]+", "_", spec).strip("_")
    raise DevError(f"--django {spec!r}: use a series (6.1), a release (6.1.3) or a pip spec")


@dataclass(frozen=True)
class Venv:
    """A virtual environment made by this script, with the project installed in it."""

    path: Path
    interpreter: Interpreter

    @property
    def python(self) -> Path:
        return self.bin("python")

    def bin(self, name: str) -> Path:
        if os.name == "nt":
            return self.path / "Scripts" / f"{name}.exe"
        return self.path / "bin" / name

    def pip(self, *args: str, check: bool = True) -> int:
        return run([self.python, "-m", "pip", *args], check=check)

    def has_module(self, module: str) -> bool:
        probe = [self.python, "-c", "import importlib, sys; importlib.import_module(sys.argv[1])"]
        return subprocess.call([*probe, module], stderr=subprocess.DEVNULL) == 0

    def django_version(self) -> str:
        return output([self.python, "-c", "import django; print(django.__version__)"])


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bootstrap(
    python_spec: str | None = None,
    django_spec: str = DEFAULT_DJANGO,
    *,
    extra: str = "dev",
    name: str | None = None,
) -> Venv:
    """Create or reuse the venv for this interpreter and Django, installing ``-e .[extra]``.

    The install is skipped when a stamp file says the venv was made from the same
    interpreter, the same Django requirement, extra and pyproject.toml, so repeated runs
    start at once; any change there reinstalls, and a different interpreter rebuilds the venv.
    ``name`` gives the venv its own directory, as the demo's small ``.venv-demo`` has.
    """
    interpreter = resolve_python(python_spec)
    requirement, label = django_requirement(django_spec)
    series = re.match(r"\d+", label)
    if series and int(series.group()) >= 6 and interpreter.version < (3, 12, 0):
        raise DevError(f"Django {label} needs Python 3.12 or newer; add --python 3.12 or 3.13")

    default_python = interpreter.path.resolve() == Path(sys.executable).resolve()
    if name:
        path = ROOT / name
    elif default_python and django_spec == DEFAULT_DJANGO:
        path = ROOT / ".venv"
    else:
        path = ROOT / f".venv-py{interpreter.short}-django{label}"
    venv = Venv(path, interpreter)

    wanted = {
        "python": str(interpreter.path.resolve()),
        "python_version": interpreter.full,
        "django": requirement,
        "extra": extra,
        "pyproject_sha256": file_hash(ROOT / "pyproject.toml"),
    }
    stamp = path / STAMP_NAME
    try:
        current = json.loads(stamp.read_text())
    except (OSError, ValueError):
        current = None
    if current == wanted and venv.python.is_file():
        print(f"Using {shown(path)} (Python {interpreter.full}, {requirement}; up to date)")
        return venv

    stale_interpreter = current is not None and current.get("python") != wanted["python"]
    if path.exists() and (stale_interpreter or not venv.python.is_file()):
        print(f"Rebuilding {shown(path)}: it was made by another interpreter or is broken")
        shutil.rmtree(path)
    if not path.exists():
        run([interpreter.path, "-m", "venv", path])
    stamp.unlink(missing_ok=True)  # a failed install must not look complete next time
    venv.pip("install", "--quiet", "-e", f".[{extra}]", requirement)
    stamp.write_text(json.dumps(wanted, indent=2) + "\n")
    return venv


# --------------------------------------------------------------------------- Django's own tests


def django_tests_dir(venv: Venv, version: str) -> tuple[Path | None, str]:
    """Return a directory holding ``messages_tests`` from this Django release's source.

    Django's own contrib.messages tests are not in the wheel, so the sdist is downloaded once
    per version into ``.cache/django-src/<version>/`` and only ``tests/messages_tests`` is
    unpacked. The second value says why there is no directory when the first is None.
    """
    base = CACHE / "django-src" / version
    tests = base / "tests"
    if (tests / "messages_tests" / "__init__.py").is_file():
        return tests, ""
    CACHE.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        download = Path(tmp) / "download"
        code = run(
            [
                venv.python, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
                "--no-deps", f"django=={version}", "--dest", download,
            ],
            check=False,
        )  # fmt: skip
        sdists = sorted(download.glob("*.tar.gz")) if download.is_dir() else []
        if code or not sdists:
            return None, f"could not download Django {version}'s source distribution"
        unpacked = Path(tmp) / "unpacked"
        count = _extract_messages_tests(sdists[0], unpacked)
        if not count:
            return None, f"no tests/messages_tests in {sdists[0].name}"
        if tests.exists():
            shutil.rmtree(tests)
        base.mkdir(parents=True, exist_ok=True)
        os.replace(unpacked / "tests", tests)  # whole or nothing: no half-filled cache
    print(f"Unpacked {count} files of Django {version}'s messages_tests into {shown(tests)}")
    return tests, ""


def _extract_messages_tests(sdist: Path, dest: Path) -> int:
    """Copy ``<top>/tests/messages_tests/**`` from the tarball to ``dest/tests/messages_tests``.

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


# --------------------------------------------------------------------------- service probes


@dataclass(frozen=True)
class Probe:
    """Whether a server answered, and if not, a reason a person can act on."""

    up: bool
    reason: str = ""


def port_problem(host: str, port: int, timeout: float = 2.0) -> str | None:
    """A plain TCP connect: cheap, and tells "not running" apart from "driver trouble"."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"nothing answers on {host}:{port} ({exc.strerror or exc})"


def driver_problem(venv: Venv, script: str, *args: str) -> str | None:
    """Connect with the real driver in the venv, as the tests will; return its error if any."""
    try:
        result = subprocess.run(
            [venv.python, "-c", script, *args],
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


def probe_sqlite(venv: Venv) -> Probe:
    return Probe(True)


def probe_postgres(venv: Venv) -> Probe:
    problem = port_problem(PG_HOST, PG_PORT) or driver_problem(
        venv, PG_CONNECT, PG_HOST, str(PG_PORT), PG_USER
    )
    return Probe(problem is None, problem or "")


def probe_mariadb(venv: Venv) -> Probe:
    """Check the server, then make sure mysqlclient is there (it compiles against libmariadb)."""
    problem = port_problem(MARIADB_HOST, MARIADB_PORT)
    if problem:
        return Probe(False, problem)
    if not venv.has_module("MySQLdb"):
        print("MariaDB needs the mysqlclient driver; installing it into the venv")
        if venv.pip("install", "--quiet", "mysqlclient", check=False):
            print(
                "\nmysqlclient failed to build. It needs the MariaDB client headers and "
                f"pkg-config; on Debian or Ubuntu:\n    {MARIADB_FIX}\n",
                file=sys.stderr,
            )
            return Probe(False, f"mysqlclient failed to build (fix: {MARIADB_FIX})")
    problem = driver_problem(venv, MARIADB_CONNECT, MARIADB_HOST, str(MARIADB_PORT), MARIADB_USER)
    return Probe(problem is None, problem or "")


def probe_redis() -> Probe:
    """Send a RESP PING over a plain socket: no driver needed to know the server is usable."""
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=2.0) as conn:
            conn.sendall(b"PING\r\n")
            reply = conn.recv(64)
    except OSError as exc:
        return Probe(False, f"nothing answers on {REDIS_HOST}:{REDIS_PORT} ({exc.strerror or exc})")
    if reply.startswith(b"+PONG"):
        return Probe(True)
    return Probe(False, f"unexpected PING reply {reply.decode(errors='replace').strip()!r}")


PROBES: dict[str, Callable[[Venv], Probe]] = {
    "sqlite": probe_sqlite,
    "postgres": probe_postgres,
    "mariadb": probe_mariadb,
}


# --------------------------------------------------------------------------- pytest runs


@dataclass(frozen=True)
class PytestRun:
    """What one pytest run reported: its exit code and counts, from its JUnit XML report."""

    code: int
    seconds: float
    counts: Mapping[str, int] | None  # passed, failed, skipped; None without a report

    @property
    def detail(self) -> str:
        took = f"({self.seconds:.1f}s)"
        if self.code == PYTEST_NO_TESTS:
            return f"no tests collected (pytest exit 5) {took}"
        if self.counts is None:
            return f"pytest exit code {self.code}, no report {took}"
        return f"{', '.join(f'{n} {word}' for word, n in self.counts.items())} {took}"


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


def run_pytest(venv: Venv, env: Mapping[str, str], args: Sequence[str]) -> PytestRun:
    """Run pytest in the foreground; its report, not its output, gives the counts."""
    with tempfile.TemporaryDirectory(prefix="pigeonhole-dev-") as tmp:
        report = Path(tmp) / "report.xml"
        started = time.monotonic()
        # Variables this script manages come only from it, so the summary matches what tests saw.
        cmd = [venv.python, "-m", "pytest", f"--junitxml={report}", *args]
        code = run(cmd, env=env, check=False, unset=MANAGED_ENV)
        return PytestRun(code, time.monotonic() - started, junit_counts(report))


@dataclass(frozen=True)
class Row:
    """One line of the closing summary."""

    backend: str
    result: str  # passed, failed, skipped, up, ready
    detail: str

    @property
    def skipped(self) -> bool:
        return self.result == "skipped"


def split_dbs(value: str) -> list[str]:
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    if names == ["all"]:
        return list(DATABASES)
    unknown = sorted(set(names) - set(DATABASES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown database {', '.join(unknown) or '(none)'}; choose from {','.join(DATABASES)}"
        )
    return list(dict.fromkeys(names))


def cmd_test(args: argparse.Namespace, pytest_args: list[str]) -> int:
    """Run the suite once per requested database and summarise; see the module docstring."""
    ci = os.environ.get("CI", "").strip().lower() == "true"
    venv = bootstrap(args.python, args.django)
    version = venv.django_version()
    rows: list[Row] = []
    env: dict[str, str] = {}

    tests, why = django_tests_dir(venv, version)
    if tests:
        env["PIGEONHOLE_DJANGO_TESTS"] = str(tests)
        rows.append(Row("django-suite", "ready", f"Django {version} messages_tests"))
    else:
        rows.append(Row("django-suite", "skipped", why))

    redis = probe_redis()
    if redis.up:
        env["PIGEONHOLE_TEST_REDIS_URL"] = REDIS_URL
        rows.append(Row("redis", "up", REDIS_URL))
    else:
        rows.append(Row("redis", "skipped", redis.reason))

    totals = {"passed": 0, "failed": 0, "skipped": 0}
    for db in args.db:
        print(f"\n===== {db} " + "=" * 60, flush=True)
        probe = PROBES[db](venv)
        if not probe.up:
            print(f"Skipping {db}: {probe.reason}")
            rows.append(Row(db, "skipped", probe.reason))
            continue
        outcome = run_pytest(venv, {"PIGEONHOLE_TEST_DB": db, **env}, pytest_args)
        for word, number in (outcome.counts or {}).items():
            totals[word] += number
        rows.append(Row(db, "passed" if outcome.code == 0 else "failed", outcome.detail))

    where = f"Python {venv.interpreter.full}, Django {version}, {shown(venv.path)}"
    print(f"\n===== summary ({where}) " + "=" * 20)
    width = max(len(row.backend) for row in rows)
    for row in rows:
        print(f"  {row.backend:<{width}}  {row.result:<7}  {row.detail}")
    skipped = [row for row in rows if row.skipped]
    if skipped:
        print("Skipped backends: " + "; ".join(f"{r.backend} ({r.detail})" for r in skipped))
    passed, failed_count, skipped_count = totals["passed"], totals["failed"], totals["skipped"]
    print(f"Total: {passed} passed, {failed_count} failed, {skipped_count} skipped")

    problem = verdict(rows, ci=ci)
    if problem:
        print(f"FAILED: {problem}")
        return 1
    return 0


def verdict(rows: Sequence[Row], *, ci: bool) -> str | None:
    """
    Say why a test run failed, or None when it passed.

    Under CI a skipped backend fails the run too: green must mean "tested everywhere".
    """
    failed = [row.backend for row in rows if row.result == "failed"]
    if failed:
        return ", ".join(failed)
    if ci and any(row.skipped for row in rows):
        return "CI=true and some backends were skipped; CI must test every backend"
    return None


# --------------------------------------------------------------------------- other commands


def cmd_demo(args: argparse.Namespace) -> int:
    """
    Migrate, create the demo users (printed by demo_setup) and serve the example site.

    The demo gets its own small venv, ``.venv-demo`` with the package and uvicorn (the
    ``demo`` extra): a first look should not wait for the test and docs toolchain. uvicorn
    serves the site under ASGI, so the inbox streams its updates; one process keeps the
    in-memory broker, and a message sent in one tab reaches the others at once.
    """
    venv = bootstrap(extra="demo", name=".venv-demo")
    example = ROOT / "example"
    url = f"http://127.0.0.1:{args.port}/"
    env = {"DEMO_SITE_URL": url.rstrip("/")}
    run([venv.python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=example, env=env)
    run([venv.python, "manage.py", "demo_setup", f"--url={url}"], cwd=example, env=env)
    print(f"Serving the demo at {url} with uvicorn (ASGI); Ctrl+C stops it.", flush=True)
    try:
        return run(
            [
                venv.python, "-m", "uvicorn", "demo.asgi:application", "--host", "127.0.0.1",
                "--port", str(args.port), "--workers", "1", "--lifespan", "off",
            ],
            cwd=example,
            env=env,
            check=False,
        )  # fmt: skip
    except KeyboardInterrupt:
        return 0


def cmd_lint(args: argparse.Namespace) -> int:
    """
    Check style and types without changing files: `ruff format .` is left to the author.

    mypy checks the modules ``[tool.mypy]`` in pyproject.toml lists, with django-stubs.
    """
    venv = bootstrap()
    check = run([venv.bin("ruff"), "check", "."], check=False)
    fmt = run([venv.bin("ruff"), "format", "--check", "."], check=False)
    types = run([venv.bin("mypy")], check=False)
    return 1 if check or fmt or types else 0


def cmd_docs(args: argparse.Namespace) -> int:
    """Build the site with --strict, so a broken link or a missing page fails the build."""
    venv = bootstrap()
    return run([venv.bin("mkdocs"), "build", "--strict"], check=False)


def cmd_bench(args: argparse.Namespace, extra: list[str]) -> int:
    venv = bootstrap()
    return run([venv.python, "benchmarks/run.py", *extra], check=False)


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="dev.py", description="Develop django-pigeonhole: one command for each task."
    )
    sub = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    test = sub.add_parser(
        "test",
        help="run the test suite against each database",
        description="Run pytest once per database. Arguments after `--` go to pytest.",
    )
    test.add_argument(
        "--python",
        metavar="PATH_OR_VERSION",
        help="interpreter: a path, or a version such as 3.13 (pyenv's build if present)",
    )
    test.add_argument(
        "--django",
        default=DEFAULT_DJANGO,
        metavar="SPEC",
        help=f"Django series such as 6.1 (means ~=6.1.0), a release, or a pip spec "
        f"(default {DEFAULT_DJANGO})",
    )
    test.add_argument(
        "--db",
        type=split_dbs,
        default=list(DATABASES),
        metavar="LIST",
        help=f"comma-separated databases (default: {','.join(DATABASES)})",
    )

    demo = sub.add_parser("demo", help="run the example site with demo users")
    demo.add_argument("--port", type=int, default=8000)
    sub.add_parser("lint", help="ruff check, ruff format --check and mypy")
    sub.add_parser("docs", help="mkdocs build --strict into site/")
    # No -h of its own: `dev.py bench --help` shows the benchmark script's options.
    sub.add_parser(
        "bench", help="run benchmarks/run.py with all arguments passed on", add_help=False
    )
    return main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    passthrough: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1 :]
    args, unknown = parser().parse_known_args(argv)
    try:
        if args.command == "bench":
            return cmd_bench(args, unknown + passthrough)
        if unknown:
            parser().error(f"unrecognized arguments: {' '.join(unknown)} (pytest's go after --)")
        if args.command == "test":
            return cmd_test(args, passthrough)
        if passthrough:
            parser().error(f"{args.command} takes no arguments after --")
        commands = {"demo": cmd_demo, "lint": cmd_lint, "docs": cmd_docs}
        return commands[args.command](args)
    except DevError as exc:
        print(f"dev.py: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ndev.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
