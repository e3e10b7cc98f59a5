"""``manage.py pigeonhole_export``: one user's stored data as JSON."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

import pigeonhole

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store"), pytest.mark.db_only]


def export(*args):
    out = io.StringIO()
    call_command("pigeonhole_export", *args, stdout=out)
    return out.getvalue()


def test_export_by_username_or_id_to_stdout(user, other_user):
    pigeonhole.send(user, "mine", thread="t", reason="mention")
    pigeonhole.send(other_user, "theirs")
    by_name = json.loads(export("--user", "alice"))
    by_id = json.loads(export("--user", str(user.pk)))
    assert [e["message"] for e in by_name["entries"]] == ["mine"]
    assert by_name["entries"] == by_id["entries"]


def test_export_to_a_file(user, tmp_path):
    pigeonhole.send(user, "filed")
    target = tmp_path / "alice.json"
    out = export("--user", "alice", "--output", str(target))
    assert "1 entry" in out and str(target) in out
    assert json.loads(target.read_text())["entries"][0]["message"] == "filed"


@pytest.mark.parametrize("who", ["nobody", "999999"])
def test_an_unknown_user_names_the_fix(user, who):
    with pytest.raises(CommandError, match="No user"):
        export("--user", who)
