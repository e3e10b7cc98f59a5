#!/usr/bin/env python
"""
Run the benchmark suite and print every figure beside its target.

    python benchmarks/run.py [--only request,fanout,reads,live]
                             [--db sqlite,postgres,redis,redis-cluster] [--quick]

Each benchmark runs once per store in a fresh process (its own settings, its own
throwaway database, its own memory high-water mark). Speed is reported as rates
and ratios measured in the same run, never as absolute times compared across
machines. The table goes to stdout and the whole report, with the machine it ran
on, to ``benchmarks/results/latest.json``. The exit status is 1 when a
benchmark failed to run, not when a figure misses its target: the verdict
column says that.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import (  # noqa: E402
    REDIS_STORES,
    ROOT,
    STORES,
    Database,
    Skip,
    log,
    setup_django,
    store_version,
)

DEFAULT_OUTPUT = HERE / "results" / "latest.json"
#: Every store some benchmark runs on.
ALL_STORES = (*STORES, "redis-cluster")
#: name -> (module, the stores it applies to)
BENCHMARKS = {
    "request": ("request_path", STORES),
    "fanout": ("fanout", ("sqlite", "postgres", *REDIS_STORES)),
    "reads": ("reads", STORES),
    "live": ("live", ("sqlite-wal", "postgres")),
}


# --------------------------------------------------------------------------- worker process


def run_worker(benchmark: str, store: str, quick: bool) -> dict[str, Any]:
    import importlib

    module = importlib.import_module(BENCHMARKS[benchmark][0])
    with Database(store) as database:
        setup_django(database, store, **getattr(module, "SETTINGS", {}))
        version = store_version(store)
        start = time.perf_counter()
        rows = module.run(store, quick=quick)
        log(f"[{store}] {benchmark}: {time.perf_counter() - start:.1f} s")
        return {"store": store, "version": version, "rows": rows}


# --------------------------------------------------------------------------- parent process


def run_one(benchmark: str, store: str, quick: bool) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    try:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            f"{benchmark}:{store}",
            "--worker-output",
            str(out),
            *(["--quick"] if quick else []),
        ]
        proc = subprocess.run(command, check=False)
        text = out.read_text()
        if proc.returncode or not text:
            return {"store": store, "error": f"{benchmark} exited with status {proc.returncode}"}
        return json.loads(text)
    finally:
        out.unlink(missing_ok=True)


def fmt_value(value: float, unit: str) -> str:
    if unit == "recipients/s":
        return f"{value:,.0f}/s"
    if unit in ("queries", "streams"):
        return f"{value:,g} {unit}" if unit == "streams" else f"{value:g}"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "ms":
        return f"{value:.3f} ms"
    return f"{value:,.1f} {unit}"


def fmt_target(r: dict[str, Any]) -> str:
    if r["target"] is None:
        return "-"
    sign = ">=" if r["at_least"] else "<="
    return f"{sign} {fmt_value(r['target'], r['unit'])}"


def verdict(r: dict[str, Any]) -> str:
    return {True: "ok", False: "MISSED", None: "(report)"}[r["ok"]]


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ("benchmark", "store", "figure", "value", "target", "verdict")
    lines = [
        (
            r["benchmark"],
            r["store"],
            r["metric"],
            fmt_value(r["value"], r["unit"]),
            fmt_target(r),
            verdict(r),
        )
        for r in rows
    ]
    widths = [max(len(str(c)) for c in column) for column in zip(header, *lines, strict=True)]
    right = {3, 4}

    def fmt(cells) -> str:
        return "  ".join(
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(fmt(header))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(fmt(line))


def git_commit() -> str | None:
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return None
    return proc.stdout.strip() or None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated benchmarks: {', '.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument(
        "--db",
        default=",".join(ALL_STORES),
        help=f"comma-separated stores: {', '.join(ALL_STORES)} (default: all)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, to check the suite itself runs"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON report file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.benchmarks = [b.strip() for b in args.only.split(",") if b.strip()]
    args.stores = [s.strip() for s in args.db.split(",") if s.strip()]
    if unknown := sorted(set(args.benchmarks) - set(BENCHMARKS)):
        parser.error(f"--only takes {', '.join(BENCHMARKS)}; unknown: {', '.join(unknown)}")
    if unknown := sorted(set(args.stores) - set(ALL_STORES)):
        parser.error(f"--db takes {', '.join(ALL_STORES)}; unknown: {', '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        benchmark, store = args.worker.split(":")
        try:
            result = run_worker(benchmark, store, args.quick)
        except Skip as exc:
            result = {"store": store, "skipped": str(exc)}
        args.worker_output.write_text(json.dumps(result))
        return 0

    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    versions: dict[str, str] = {}
    skipped: dict[str, str] = {}
    errors: list[str] = []
    for benchmark in args.benchmarks:
        for store in args.stores:
            if store not in BENCHMARKS[benchmark][1]:
                continue
            log(f"--- {benchmark} on {store}")
            outcome = run_one(benchmark, store, args.quick)
            if "skipped" in outcome:
                skipped[store] = outcome["skipped"]
            elif "error" in outcome:
                errors.append(f"{benchmark} on {store}: {outcome['error']}")
            else:
                versions[store] = outcome["version"]
                rows += outcome["rows"]
    elapsed = time.perf_counter() - started

    import django

    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Django {django.get_version()}"
    )
    print()
    print(f"django-pigeonhole benchmarks ({'quick' if args.quick else 'full'} run, {machine})")
    for store, version in versions.items():
        print(f"  {store}: {version}")
    print()
    if rows:
        print_table(rows)
    missed = [r for r in rows if r["ok"] is False]
    print()
    print(
        f"{len(rows)} figures, {sum(r['ok'] is True for r in rows)} on target, "
        f"{len(missed)} missed, in {elapsed:.0f} s"
    )
    for store, why in skipped.items():
        print(f"skipped {store}: {why}")
    for error in errors:
        print(f"FAILED {error}")

    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "quick": args.quick,
        "python": platform.python_version(),
        "django": django.get_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "stores": versions,
        "skipped": skipped,
        "errors": errors,
        "seconds": round(elapsed, 1),
        "results": rows,
    }
    if rows:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")
        try:
            shown = args.output.resolve().relative_to(ROOT)
        except ValueError:
            shown = args.output
        print(f"Wrote {shown}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
