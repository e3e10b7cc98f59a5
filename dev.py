#!/usr/bin/env python3
"""The one entry point for working on django-pigeonhole: tests, demo, lint, docs, benchmarks.

It uses only the standard library, so a fresh checkout needs nothing but Python 3.11+ and git.
The tasks themselves are nox sessions (``noxfile.py`` declares them and the test matrix); on its
first run this script installs nox and uv into ``.venv-nox/`` and then runs the sessions a
command names:

    python3 dev.py test [--python 3.13] [--django 6.1] [--db sqlite,postgres] [-- -k inbox]
    python3 dev.py demo [--port 8000]
    python3 dev.py lint
    python3 dev.py docs
    python3 dev.py bench [benchmark args]

What nox cannot do alone stays here: finding pyenv's interpreters, and the summary of a test
run. ``test`` runs one session per database, because the backends must behave the same on each;
a database that cannot be reached is reported as skipped, and with ``CI=true`` a skipped backend
fails the run, so that CI never goes green by testing less than it claims.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

if sys.version_info < (3, 11):  # noqa: UP036 - the point is a clear message on old Pythons
    sys.exit("dev.py needs Python 3.11 or newer.")

ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / ".venv-nox"
TOOLS_REQUIREMENTS = ("nox==2026.10.20", "uv==0.13.9")
PYENV_VERSIONS = Path.home() / ".pyenv" / "versions"
RESULTS_ENV = "PIGEONHOLE_DEV_RESULTS"  # where noxfile.py's test sessions record their rows


class DevError(Exception):
    """A problem the developer can fix; printed without a traceback."""


def run(cmd: Sequence[str | os.PathLike[str]], env: Mapping[str, str] | None = None) -> int:
    """Run a command in the foreground, echoing it, so a failure is easy to rerun by hand."""
    extra = dict(env or {})
    words = [f"{key}={value}" for key, value in extra.items() if key != "PATH"] + list(cmd)
    print("$ " + shlex.join(os.fspath(word) for word in words).replace(f"{ROOT}/", ""), flush=True)
    try:
        return subprocess.call(list(cmd), cwd=ROOT, env={**os.environ, **extra})
    except FileNotFoundError as exc:
        raise DevError(f"cannot run {cmd[0]}: {exc.strerror}") from exc


# --------------------------------------------------------------------------- nox and uv


def tools() -> Path:
    """
    Return the Python of ``.venv-nox``, creating it with nox and uv from PyPI when needed.

    A stamp file holds the pinned requirements, so later runs start at once and a new pin
    reinstalls. Made with the standard library's venv, so it has pip, which the test sessions
    use to fetch Django's source distribution.
    """
    python = TOOLS / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    stamp = TOOLS / "dev-requirements.txt"
    wanted = "\n".join(TOOLS_REQUIREMENTS) + "\n"
    if python.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return python
    if not python.is_file():
        shutil.rmtree(TOOLS, ignore_errors=True)
        if run([sys.executable, "-m", "venv", TOOLS]):
            raise DevError(f"could not create {TOOLS.name} with {sys.executable} -m venv")
    stamp.unlink(missing_ok=True)  # a failed install must not look complete next time
    if run([python, "-m", "pip", "install", "--quiet", *TOOLS_REQUIREMENTS]):
        raise DevError(f"could not install {' and '.join(TOOLS_REQUIREMENTS)} from PyPI")
    stamp.write_text(wanted)
    return python


def nox(args: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    return run([tools(), "-m", "nox", *args], env)


@dataclass(frozen=True)
class SuiteSession:
    """A test session of noxfile.py: one Python, one Django series, one database."""

    name: str
    python: str
    django: str
    db: str


def suite_sessions(text: str) -> list[SuiteSession]:
    """Read the test sessions from ``nox --list --json``'s output."""
    return [
        SuiteSession(s["session"], s["python"], s["call_spec"]["django"], s["call_spec"]["db"])
        for s in json.loads(text)
        if s["name"] == "test"
    ]


def listing() -> str:
    """Return ``nox --list --json``: every session of noxfile.py, with its parameters."""
    result = subprocess.run(
        [tools(), "-m", "nox", "--list", "--json"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode:
        raise DevError(f"nox --list failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


# --------------------------------------------------------------------------- interpreters


def interpreter(spec: str | None) -> tuple[str, Path]:
    """
    Turn ``--python`` into a version such as ``3.13`` and the interpreter to run it.

    A path is used as given; a version prefers pyenv's newest matching build
    (``~/.pyenv/versions/3.13.*``), because distributions rarely ship several Pythons side by
    side, and falls back to ``python3.13`` on PATH. Without ``--python``, the Python running
    this script.
    """
    path: str | Path | None = sys.executable
    if spec and (os.sep in spec or spec.startswith(".")):
        path = Path(spec).expanduser().absolute()
    elif spec and re.fullmatch(r"\d+\.\d+(\.\d+)?", spec):
        found = PYENV_VERSIONS.glob(f"{spec}*") if PYENV_VERSIONS.is_dir() else []
        pattern = re.compile(rf"{re.escape(spec)}(\.\d+)?")
        builds = [p / "bin" / "python" for p in found if pattern.fullmatch(p.name)]
        builds.sort(key=lambda p: tuple(map(int, p.parent.parent.name.split("."))))
        path = next((p for p in reversed(builds) if p.is_file()), None)
        path = path or shutil.which("python" + ".".join(spec.split(".")[:2]))
    elif spec:
        path = shutil.which(spec)
    if path is None or not Path(path).is_file():
        raise DevError(f"no Python found for --python {spec} (looked in {PYENV_VERSIONS}, PATH)")
    probe = [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
    version = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
    return version, Path(path)


def interpreter_path(version: str, path: Path, folder: Path = TOOLS / "interpreters") -> str:
    """
    Return a PATH on which nox finds ``path`` as ``python<version>``.

    nox looks interpreters up by name; pyenv's shims answer only for the active version, so
    a directory holding one link, ``python3.13``, to the chosen build goes first.
    """
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / f".python{version}-{os.getpid()}"
    link.symlink_to(path)
    os.replace(link, folder / f"python{version}")  # atomic: another run may be reading it
    return os.pathsep.join([str(folder), os.environ.get("PATH", os.defpath)])


# --------------------------------------------------------------------------- test summary


@dataclass(frozen=True)
class Row:
    """One line of the closing summary, as a test session of noxfile.py recorded it."""

    backend: str
    result: str  # passed, failed, skipped, up, ready
    detail: str
    counts: Mapping[str, int] | None = None

    @property
    def skipped(self) -> bool:
        return self.result == "skipped"


def collect(report: Path, results: Path) -> tuple[list[Row], str]:
    """
    Read the rows the sessions recorded, in the order nox ran them, and where they ran.

    A session that stopped before it recorded its database's row (its install failed, say)
    gets one failed row with nox's reason; the optional parts (Django's suite, Redis) are shown
    once.
    """
    try:
        ran = json.loads(report.read_text())["sessions"]
    except (OSError, ValueError, KeyError) as exc:
        raise DevError(f"nox wrote no report ({exc}); see its output above") from exc
    recorded = {}
    for path in results.glob("*.json"):
        entry = json.loads(path.read_text())
        recorded[entry["session"]] = entry
    parts: dict[str, Row] = {}
    rows: list[Row] = []
    where = ""
    for session in ran:
        db = session["args"].get("db", session["name"])
        entry = recorded.get(session["signatures"][0], {"where": "", "rows": []})
        where = where or entry["where"]
        mine = [Row(**item) for item in entry["rows"]]
        for row in mine:
            if row.backend != db:
                parts.setdefault(row.backend, row)
        own = [row for row in mine if row.backend == db]
        rows += own or [Row(db, "failed", session.get("reason") or session["result"])]
    return [*parts.values(), *rows], where


def summary(rows: Sequence[Row], where: str) -> None:
    print(f"\n===== summary ({where or 'no session recorded its versions'}) " + "=" * 20)
    width = max(len(row.backend) for row in rows)
    for row in rows:
        print(f"  {row.backend:<{width}}  {row.result:<7}  {row.detail}")
    skipped = [row for row in rows if row.skipped]
    if skipped:
        print("Skipped backends: " + "; ".join(f"{r.backend} ({r.detail})" for r in skipped))
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    for row in rows:
        for word, number in (row.counts or {}).items():
            totals[word] += number
    print("Total: " + ", ".join(f"{number} {word}" for word, number in totals.items()))


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


# --------------------------------------------------------------------------- commands


def pick(
    listed: Sequence[SuiteSession], python: str, django: str | None, dbs: Sequence[str]
) -> list[str]:
    """
    Name the test sessions for one Python, one Django series and each database, in order.

    Without ``django``, the oldest series the matrix pairs with this Python; without
    ``dbs`` (or with ``all``), every database.
    """
    dbs = [] if list(dbs) == ["all"] else dbs
    mine = [s for s in listed if s.python == python]
    if not mine:
        pythons = ", ".join(sorted({s.python for s in listed}))
        raise DevError(f"noxfile.py tests Python {pythons}, not {python}")
    series = sorted({s.django for s in mine}, key=lambda v: tuple(map(int, v.split("."))))
    django = django or series[0]
    if django not in series:
        others = sorted({s.python for s in listed if s.django == django})
        fix = f"; add --python {' or '.join(others)}" if others else ""
        raise DevError(
            f"noxfile.py pairs Python {python} with Django {', '.join(series)}, not {django}{fix}"
        )
    names = {s.db: s.name for s in mine if s.django == django}
    unknown = [db for db in dbs if db not in names]
    if unknown:
        raise DevError(f"unknown database {', '.join(unknown)}; choose from {','.join(names)}")
    # nox reads either quote; double ones echo without shell escapes.
    return [names[db].replace("'", '"') for db in dbs or names]


def cmd_test(args: argparse.Namespace, pytest_args: list[str]) -> int:
    """Run the suite once per requested database and summarise; see the module docstring."""
    version, path = interpreter(args.python)
    names = pick(suite_sessions(listing()), version, args.django, args.db)
    with tempfile.TemporaryDirectory(prefix="pigeonhole-dev-") as tmp:
        report, results = Path(tmp) / "nox.json", Path(tmp) / "results"
        results.mkdir()
        env = {"PATH": interpreter_path(version, path), RESULTS_ENV: str(results)}
        nox(["--report", str(report), "--sessions", *names, "--", *pytest_args], env)
        rows, where = collect(report, results)
    summary(rows, where)
    problem = verdict(rows, ci=os.environ.get("CI", "").strip().lower() == "true")
    if problem:
        print(f"FAILED: {problem}")
        return 1
    return 0


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
        metavar="SERIES",
        help="Django series such as 6.1 (default: the oldest noxfile.py pairs with the Python)",
    )
    test.add_argument(
        "--db",
        type=lambda value: [name.strip().lower() for name in value.split(",") if name.strip()],
        default=[],
        metavar="LIST",
        help="comma-separated databases (default: sqlite,postgres,mariadb)",
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
            return nox(["-s", "bench", "--", *unknown, *passthrough])
        if unknown:
            parser().error(f"unrecognized arguments: {' '.join(unknown)} (pytest's go after --)")
        if args.command == "test":
            return cmd_test(args, passthrough)
        if passthrough:
            parser().error(f"{args.command} takes no arguments after --")
        if args.command == "demo":
            return nox(["-s", "demo", "--", str(args.port)])
        return nox(["-s", args.command])
    except DevError as exc:
        print(f"dev.py: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ndev.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
