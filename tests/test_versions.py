"""
PIGEONHOLE["CACHE"]: a page with nothing unread skips the store, and never hides a message.

The cache is a real Redis cache shared the way processes share it; the store is
each backend in turn.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

import pigeonhole
from pigeonhole import versions
from pigeonhole.checks import check_cache
from pigeonhole.conf import get_backend
from pigeonhole.storage import PersistentStorage, PersistentStorageMixin
from tests.backends.redis_support import delete_keys, redis_url, unique_prefix

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store")]


@pytest.fixture
def shared_cache(settings):
    """Point PIGEONHOLE["CACHE"] at a Redis cache under a key prefix of its own."""
    url, prefix = redis_url(), unique_prefix("versions")
    settings.CACHES = {
        **settings.CACHES,
        "inbox": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": prefix,
        },
    }
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "CACHE": "inbox"}
    yield lambda: delete_keys(url, prefix)  # what an eviction or a restart does
    delete_keys(url, prefix)


@pytest.fixture
def reads(monkeypatch):
    """Count the listings (and claims) the storage asks the backend for; it still answers."""
    cls = type(get_backend())  # on the class: a settings change builds a new instance
    calls = []

    def counting(original):
        def method(self, *args, **kwargs):
            calls.append(args)
            return original(self, *args, **kwargs)

        return method

    for name in ("list", "claim_unread"):
        monkeypatch.setattr(cls, name, counting(getattr(cls, name)))
    return calls


@pytest.fixture
def alice(client, user, shared_cache):
    client.force_login(user)
    return client


def settle(client):
    """Show two empty pages: the first leaves a placeholder, the second the real note."""
    assert shown(client.get("/show/")) == []
    assert shown(client.get("/show/")) == []
    assert client.session["_pigeonhole_empty"][3] > 0


def shown(response):
    return [line.strip() for line in response.content.decode().splitlines() if line.strip()]


def own_queries(captured):
    return [q["sql"] for q in captured.captured_queries if "pigeonhole_" in q["sql"]]


class TestNothingUnread:
    def test_empty_pages_stop_asking_the_store(self, alice, reads):
        settle(alice)
        assert len(reads) == 2
        assert shown(alice.get("/show/")) == []
        assert shown(alice.get("/show/")) == []
        assert len(reads) == 2

    def test_pages_with_messages_do_not_read_the_cache(self, alice, user, monkeypatch):
        seen = []
        monkeypatch.setattr(versions, "read", lambda uid: seen.append(uid))
        for text in ("one", "two"):
            pigeonhole.send(user, text)
            assert len(shown(alice.get("/show/"))) == 1
        assert seen == []

    @pytest.mark.db_only
    def test_empty_page_costs_no_pigeonhole_query(self, alice):
        settle(alice)
        with CaptureQueriesContext(connection) as captured:
            assert shown(alice.get("/show/")) == []
        assert own_queries(captured) == []
        assert captured.captured_queries, "the session and the user are still read"

    def test_after_reading_everything_the_next_empty_page_is_remembered(
        self, alice, user, other_user, reads
    ):
        settle(alice)
        pigeonhole.send(user, "Hello", from_user=other_user)
        assert shown(alice.get("/show/")) == ['<li class="info persistent">Hello</li>']
        assert shown(alice.get("/show/")) == []
        before = len(reads)
        assert shown(alice.get("/show/")) == []
        assert len(reads) == before

    def test_unread_count_is_answered_from_the_note(self, alice, user, rf, monkeypatch):
        settle(alice)
        request = rf.get("/")
        request.user, request.session = user, alice.session
        counts = []
        backend = get_backend()
        monkeypatch.setattr(backend, "count", lambda uid: counts.append(uid) or 0)
        assert PersistentStorage(request).count_persistent_unread() == 0
        assert counts == []

    def test_badges_are_answered_from_the_note(self, alice, user, rf, monkeypatch):
        from django.template import Context, Template

        from pigeonhole.context_processors import unread_count

        settle(alice)
        request = rf.get("/")
        request.user, request.session = user, alice.session
        request._messages = PersistentStorage(request)
        counts = []
        original = type(get_backend()).count
        monkeypatch.setattr(
            type(get_backend()),
            "count",
            lambda self, uid: counts.append(uid) or original(self, uid),
        )
        tag = Template("{% load pigeonhole %}{% pigeonhole_unread_count %}")
        assert tag.render(Context({"request": request, "user": user})) == "0"
        assert str(unread_count(request)["pigeonhole_unread_count"]) == "0"
        assert counts == []
        pigeonhole.send(user, "Hello")  # renews the token: the note no longer holds
        assert tag.render(Context({"request": request, "user": user})) == "1"
        assert counts == [user.pk]

    def test_without_the_setting_every_page_asks(self, client, user, settings, reads):
        client.force_login(user)
        client.get("/show/")
        client.get("/show/")
        assert len(reads) == 2
        assert "_pigeonhole_empty" not in client.session


class TestArrivalsShowOnTheNextPage:
    @pytest.mark.parametrize("to", ["user", "list", "queryset", "group", "many"])
    def test_send_after_the_note_is_shown(self, alice, user, other_user, to, django_user_model):
        settle(alice)
        if to == "many":
            others = django_user_model.objects.bulk_create(
                django_user_model(username=f"u{i}") for i in range(versions.PER_USER_LIMIT + 1)
            )
            recipients = [user, *others]
        else:
            group = Group.objects.create(name="staff")
            group.user_set.add(user, other_user)
            recipients = {
                "user": user,
                "list": [other_user, user],
                "queryset": django_user_model.objects.filter(pk__in=[user.pk, other_user.pk]),
                "group": group,
            }[to]
        pigeonhole.send(recipients, "Deploy finished")
        assert shown(alice.get("/show/")) == ['<li class="info persistent">Deploy finished</li>']

    def test_message_stored_by_another_users_request(self, alice, rf, user, other_user):
        settle(alice)
        request = rf.post("/")
        request.user, request.session = other_user, SessionStore()
        PersistentStorage(request).add(pigeonhole.PERSISTENT_INFO, "From Bob", user=user)
        assert shown(alice.get("/show/")) == ['<li class="info persistent">From Bob</li>']

    def test_own_message_added_on_the_same_request(self, alice, user):
        settle(alice)
        response = alice.post("/add/persistent/", {"messages": ["Saved for later."]}, follow=True)
        assert shown(response) == ['<li class="info persistent">Saved for later.</li>']

    def test_mark_unread_brings_it_back(self, alice, user):
        pigeonhole.send(user, "Remind me")
        alice.get("/show/")  # shown and marked read
        alice.get("/show/")  # remembered as empty
        [entry] = pigeonhole.inbox(user, state="all")
        assert pigeonhole.mark_unread(user, [entry.id]) == 1
        assert shown(alice.get("/show/")) == ['<li class="info persistent">Remind me</li>']

    def test_unarchive_brings_it_back(self, alice, user):
        pigeonhole.send(user, "Later")
        [entry] = pigeonhole.inbox(user)
        pigeonhole.archive(user, [entry.id])
        settle(alice)
        assert pigeonhole.unarchive(user, [entry.id]) == 1
        assert shown(alice.get("/show/")) == ['<li class="info persistent">Later</li>']

    def test_lost_cache_keys_cost_a_query_not_a_message(self, alice, user, shared_cache, reads):
        settle(alice)
        pigeonhole.send(user, "Kept")
        shared_cache()  # every token gone, as after an eviction or a restart
        assert shown(alice.get("/show/")) == ['<li class="info persistent">Kept</li>']
        assert len(reads) == 3

    def test_unreachable_cache_falls_back_to_the_store(self, client, user, settings, reads):
        settings.CACHES = {
            **settings.CACHES,
            "inbox": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": "redis://127.0.0.1:1/0",
            },
        }
        settings.PIGEONHOLE = {**settings.PIGEONHOLE, "CACHE": "inbox"}
        client.force_login(user)
        assert shown(client.get("/show/")) == []
        assert shown(client.get("/show/")) == []
        pigeonhole.send(user, "Still here")
        assert shown(client.get("/show/")) == ['<li class="info persistent">Still here</li>']
        assert len(reads) == 3

    def test_note_expires(self, alice, user, reads, monkeypatch):
        monkeypatch.setattr(PersistentStorageMixin, "empty_hint_seconds", -1)
        settle(alice)
        assert len(reads) == 2

    def test_note_belongs_to_the_user_who_took_it(self, alice, user, other_user, reads):
        settle(alice)
        pigeonhole.send(other_user, "For Bob")
        session = alice.session
        note = session["_pigeonhole_empty"]
        assert note[0] == str(user.pk)
        alice.force_login(other_user)  # a new session for another user
        assert shown(alice.get("/show/")) == ['<li class="info persistent">For Bob</li>']


class TestRenewalOnlyWhereANoteMayExist:
    """
    A store that sees its empty listings renews a user's version only after one.

    The Redis store flags an inbox whose unread listing came back empty (the
    only kind of page that takes a note) in the listing's own script, and its
    add clears the flag in the add's script: a message stored for a user whose
    pages keep showing messages costs no cache write. The database store keeps
    no such flag and renews on every add.
    """

    @pytest.fixture
    def renewals(self, monkeypatch):
        calls = []
        bump = versions.bump
        monkeypatch.setattr(versions, "bump", lambda *a, **k: calls.append(a) or bump(*a, **k))
        return calls

    def test_message_for_a_user_whose_pages_show_messages_renews_nothing(
        self, alice, user, renewals, store
    ):
        if store == "db":
            pytest.skip("the database store has no flag to tell; it renews on every add")
        for text in ("one", "two", "three"):
            response = alice.post("/add/persistent/", {"messages": [text]}, follow=True)
            assert shown(response) == [f'<li class="info persistent">{text}</li>']
        assert renewals == []

    def test_the_first_message_after_an_empty_page_renews_and_shows(
        self, alice, user, renewals, reads
    ):
        for text in ("one", "two"):
            settle(alice)
            before = len(renewals)
            response = alice.post("/add/persistent/", {"messages": [text]}, follow=True)
            assert shown(response) == [f'<li class="info persistent">{text}</li>']
            assert len(renewals) > before
        pages = len(reads)
        assert shown(alice.get("/show/")) == []
        assert len(reads) == pages + 1  # the note of before the message no longer holds


@pytest.mark.django_db(transaction=True)
def test_send_from_another_process_shows_on_the_next_page(alice, user, settings):
    """A worker or a shell renews the token in the shared cache; this process sees it."""
    from tests.live.server import process_env

    if connection.vendor == "sqlite":
        pytest.skip("another process cannot see SQLite's in-memory test database")
    settle(alice)
    env = process_env(connection.settings_dict["NAME"], settings.PIGEONHOLE)
    env["PIGEONHOLE_SERVER_CACHES"] = json.dumps(settings.CACHES)
    subprocess.run(
        [sys.executable, "-m", "tests.live.send_from_process", str(user.pk), "From a worker"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        check=True,
        timeout=60,
    )
    assert shown(alice.get("/show/")) == ['<li class="info persistent">From a worker</li>']


@pytest.mark.db_only
def test_writes_that_bypass_pigeonhole_show_after_bump(alice, user):
    from pigeonhole.models import InboxEntry, Message

    settle(alice)
    content = Message.objects.create(level=pigeonhole.PERSISTENT_INFO, message="Imported")
    InboxEntry.objects.create(user=user, message=content)
    assert shown(alice.get("/show/")) == []  # the note still holds: nothing told the cache
    versions.bump([user.pk])
    assert shown(alice.get("/show/")) == ['<li class="info persistent">Imported</li>']


def test_an_alias_missing_from_caches_never_breaks_a_page_or_a_send(client, user, settings):
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "CACHE": "missing"}
    client.force_login(user)
    for _ in range(2):
        assert shown(client.get("/show/")) == []
    pigeonhole.send(user, "Sent anyway")
    assert shown(client.get("/show/")) == ['<li class="info persistent">Sent anyway</li>']


@pytest.mark.db_only
class TestTransactions:
    def test_rolled_back_send_shows_nothing(self, alice, user):
        settle(alice)
        with pytest.raises(RuntimeError), transaction.atomic():
            pigeonhole.send(user, "Never happened")
            raise RuntimeError
        assert shown(alice.get("/show/")) == []

    def test_versions_are_renewed_again_after_commit(
        self, shared_cache, user, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
            pigeonhole.send(user, "In a transaction")
            during = versions.read(user.pk)
        assert during is not None
        assert versions.read(user.pk) == during
        for callback in callbacks:
            callback()
        assert versions.read(user.pk)[0] != during[0]

    def test_group_send_renews_the_shared_token_only(self, shared_cache, user, group):
        before = versions.read(user.pk)
        pigeonhole.send(group, "Everyone")
        after = versions.read(user.pk)
        assert after[0] == before[0] and after[1] != before[1]


class TestChecks:
    def test_unknown_alias_is_an_error(self, settings):
        settings.PIGEONHOLE = {**settings.PIGEONHOLE, "CACHE": "nope"}
        assert [e.id for e in check_cache()] == ["pigeonhole.E040"]

    def test_per_process_cache_is_a_warning(self, settings):
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        }
        settings.PIGEONHOLE = {**settings.PIGEONHOLE, "CACHE": "default"}
        [warning] = check_cache()
        assert warning.id == "pigeonhole.W040" and "LocMemCache" in warning.msg

    def test_shared_cache_passes(self, shared_cache):
        assert check_cache() == []
        assert caches["inbox"] is not None

    def test_off_by_default(self):
        assert check_cache() == []


@pytest.mark.db_only
@pytest.mark.django_db(transaction=True)  # creating a table commits on MariaDB
def test_database_cache_is_shared_too(settings, client, user, reads):
    """The database cache works as well: its own table, no pigeonhole tables read."""
    settings.CACHES = {
        **settings.CACHES,
        "inbox": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "inbox_cache",
        },
    }
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "CACHE": "inbox"}
    call_command("createcachetable", "inbox_cache", verbosity=0)
    client.force_login(user)
    for _ in range(3):
        client.get("/show/")
    assert len(reads) == 2
    pigeonhole.send(user, "Via the database cache")
    assert shown(client.get("/show/")) == [
        '<li class="info persistent">Via the database cache</li>'
    ]
