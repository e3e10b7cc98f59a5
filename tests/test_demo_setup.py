"""
The demo's first minute: what ``python3 dev.py demo`` installs and prints.

A newcomer runs it before reading anything else, so it must install little and put the
logins where they are seen, not under pages of raw email.
"""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "example"


def test_demo_extra_holds_only_what_the_demo_runs():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    demo = project["optional-dependencies"]["demo"]
    assert [requirement.split(">")[0].split("=")[0] for requirement in demo] == ["uvicorn"]


def test_demo_setup_prints_the_logins_first_and_each_email_on_one_line(tmp_path):
    if os.environ.get("PIGEONHOLE_TEST_DB", "sqlite") != "sqlite":
        pytest.skip("run on the SQLite run only: the demo has its own SQLite file")
    env = {
        **os.environ,
        "DEMO_DATABASE": str(tmp_path / "db.sqlite3"),
        "DEMO_MAIL_DIR": str(tmp_path / "sent-mail"),
        "DEMO_SITE_URL": "http://127.0.0.1:8123",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the demo's own settings, not the suite's

    def manage(*args):
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=EXAMPLE,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    manage("migrate", "--noinput", "-v", "0")
    lines = manage("demo_setup", "--url=http://127.0.0.1:8123/")
    logins = next(i for i, line in enumerate(lines) if "password alice-demo" in line)
    emails = [line for line in lines if line.startswith("Email to ")]
    assert emails, "the welcome warning is emailed, and the terminal should say so"
    assert all(lines.index(line) > logins for line in emails)
    assert not any(line.startswith(("Content-Type:", "MIME-Version:")) for line in lines)
    assert len(lines) <= 16, "\n".join(lines)
    # The whole email is kept, for whoever wants its links.
    [saved] = list((tmp_path / "sent-mail").iterdir())
    assert "http://127.0.0.1:8123/messages/preferences/" in saved.read_text()
