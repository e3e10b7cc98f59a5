"""The admin: messages with their read state, inbox entries, and the send action."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

import pigeonhole
from pigeonhole.admin import (
    InboxEntryInline,
    SendMessageActionMixin,
    add_send_message_action,
    register_user_admin,
    send_message_action,
)
from pigeonhole.models import FoldedEntry, InboxEntry, Message

pytestmark = pytest.mark.django_db

MESSAGES_URL = "/admin/pigeonhole/message/"
ENTRIES_URL = "/admin/pigeonhole/inboxentry/"
USERS_URL = "/admin/auth/user/"


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol", password="password")


def listed(response):
    """Return the objects a changelist response shows."""
    return list(response.context["cl"].result_list)


def today_filter():
    """Return the query DateFieldListFilter's "Today" link carries."""
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return {"created__gte": str(start), "created__lt": str(start + timedelta(days=1))}


def user_admin():
    return admin.site.get_model_admin(get_user_model())


# Message changelist ---------------------------------------------------------------
class TestMessageChangelist:
    def test_shows_recipient_and_unread_counts(self, admin_client, group, user, other_user):
        sent = pigeonhole.send(group, "Staff meeting")
        pigeonhole.mark_read(user, pigeonhole.inbox(user))
        response = admin_client.get(MESSAGES_URL)
        [row] = listed(response)
        assert (row.pk, row.recipient_count, row.unread_count) == (sent.pk, 2, 1)
        content = response.content.decode()
        assert f'href="{ENTRIES_URL}?message__id__exact={sent.pk}"' in content
        assert f'href="{ENTRIES_URL}?message__id__exact={sent.pk}&amp;read=no"' in content

    def test_shows_level_as_its_tag_and_the_text_excerpt(self, admin_client, user):
        pigeonhole.send(user, "Disk almost full " + "x" * 200, level=pigeonhole.PERSISTENT_WARNING)
        content = admin_client.get(MESSAGES_URL).content.decode()
        assert '<td class="field-level_display">warning</td>' in content
        assert "Disk almost full" in content and "x" * 200 not in content

    def test_query_count_does_not_grow_with_the_number_of_messages(
        self, admin_client, user, other_user
    ):
        def queries():
            with CaptureQueriesContext(connection) as captured:
                assert admin_client.get(MESSAGES_URL).status_code == 200
            return len(captured)

        pigeonhole.send([user, other_user], "One", from_user=other_user)
        few = queries()
        for n in range(5):
            pigeonhole.send([user, other_user], f"More {n}", from_user=user)
        assert queries() == few

    def test_level_filter_matches_persistent_and_plain_variants(self, admin_client, user):
        plain = pigeonhole.send(user, "Plain", level=pigeonhole.INFO)
        stored = pigeonhole.send(user, "Stored", level=pigeonhole.PERSISTENT_INFO)
        pigeonhole.send(user, "Error", level=pigeonhole.ERROR)
        response = admin_client.get(MESSAGES_URL, {"level": pigeonhole.INFO})
        assert {m.pk for m in listed(response)} == {plain.pk, stored.pk}

    def test_read_filter_separates_unread_from_all_read(self, admin_client, user, other_user):
        everyone_read = pigeonhole.send([user, other_user], "Seen by all")
        half_read = pigeonhole.send([user, other_user], "Seen by one")
        nobody = pigeonhole.send([user], "Nobody left")
        InboxEntry.objects.filter(message=nobody).delete()
        InboxEntry.objects.filter(message=everyone_read).update(read_at=timezone.now())
        InboxEntry.objects.filter(message=half_read, user=user).update(read_at=timezone.now())

        unread = listed(admin_client.get(MESSAGES_URL, {"read": "unread"}))
        all_read = listed(admin_client.get(MESSAGES_URL, {"read": "read"}))
        assert [m.pk for m in unread] == [half_read.pk]
        # A message with no recipients left is not "read by all".
        assert [m.pk for m in all_read] == [everyone_read.pk]

    def test_date_hierarchy_and_created_filter_narrow_by_date(self, admin_client, user):
        old = pigeonhole.send(user, "Old")
        new = pigeonhole.send(user, "New")
        Message.objects.filter(pk=old.pk).update(created=datetime(2020, 5, 1, tzinfo=UTC))

        by_year = listed(admin_client.get(MESSAGES_URL, {"created__year": 2020}))
        assert [m.pk for m in by_year] == [old.pk]
        recent = listed(admin_client.get(MESSAGES_URL, today_filter()))
        assert [m.pk for m in recent] == [new.pk]

    def test_adding_a_message_in_the_admin_is_refused(self, admin_client):
        assert admin_client.get(f"{MESSAGES_URL}add/").status_code == 403


# Message change page --------------------------------------------------------------
class TestMessageChangePage:
    def test_inline_shows_each_recipients_read_state(self, admin_client, user, other_user):
        sent = pigeonhole.send([user, other_user], "Hello")
        pigeonhole.mark_read(user, pigeonhole.inbox(user))
        response = admin_client.get(f"{MESSAGES_URL}{sent.pk}/change/")
        assert response.status_code == 200
        [inline] = response.context["inline_admin_formsets"]
        rows = {form.instance.user.username: form.instance for form in inline.formset.forms}
        assert rows["alice"].read_at is not None and rows["bob"].read_at is None
        assert "2 recipients, 1 unread" in response.content.decode()

    def test_inline_is_read_only(self, admin_client, user):
        sent = pigeonhole.send(user, "Hello")
        response = admin_client.get(f"{MESSAGES_URL}{sent.pk}/change/")
        [inline] = response.context["inline_admin_formsets"]
        assert not inline.has_change_permission and not inline.has_add_permission
        assert 'name="entries-0-read_at' not in response.content.decode()

    def test_inline_shows_a_bounded_slice_and_links_to_all_entries(
        self, admin_client, django_user_model, monkeypatch
    ):
        monkeypatch.setattr(InboxEntryInline, "max_shown", 3)
        users = [django_user_model.objects.create_user(f"user{n}") for n in range(5)]
        sent = pigeonhole.send(users, "To many")
        response = admin_client.get(f"{MESSAGES_URL}{sent.pk}/change/")
        [inline] = response.context["inline_admin_formsets"]
        assert len(inline.formset.forms) == 3
        content = response.content.decode()
        assert "Showing the newest 3 of 5 recipients." in content
        assert f'href="{ENTRIES_URL}?message__id__exact={sent.pk}"' in content

    def test_inline_rows_cost_no_query_each(self, admin_client, django_user_model, monkeypatch):
        users = [django_user_model.objects.create_user(f"user{n}") for n in range(6)]
        sent = pigeonhole.send(users, "To many")

        def queries(max_shown):
            monkeypatch.setattr(InboxEntryInline, "max_shown", max_shown)
            with CaptureQueriesContext(connection) as captured:
                response = admin_client.get(f"{MESSAGES_URL}{sent.pk}/change/")
            [inline] = response.context["inline_admin_formsets"]
            assert len(inline.formset.forms) == max_shown
            return len(captured)

        assert queries(2) == queries(6)

    def test_small_message_shows_no_truncation_note(self, admin_client, user):
        sent = pigeonhole.send(user, "Hello")
        content = admin_client.get(f"{MESSAGES_URL}{sent.pk}/change/").content.decode()
        assert "Showing the newest" not in content

    def change_data(self, message, **changes):
        data = {
            "level": message.level,
            "subject": message.subject,
            "message": message.message,
            "url": message.url,
            "extra_tags": message.extra_tags,
            "data": "null",
            "from_user": "",
            "in_reply_to": "",
            "close_timeout": "",
            "email": "unknown",
            "entries-MIN_NUM_FORMS": "0",
            "entries-MAX_NUM_FORMS": "0",
        }
        # The read-only inline posts back its rows' ids, as the page renders them.
        entry_ids = list(message.entries.values_list("pk", flat=True))
        data["entries-TOTAL_FORMS"] = data["entries-INITIAL_FORMS"] = str(len(entry_ids))
        for n, pk in enumerate(entry_ids):
            data[f"entries-{n}-id"] = str(pk)
            data[f"entries-{n}-message"] = str(message.pk)
        data.update(changes)
        return data

    def test_editing_saves_normalised_content(self, admin_client, user, other_user):
        sent = pigeonhole.send([user, other_user], "Hello")
        pigeonhole.mark_read(user, pigeonhole.inbox(user))
        response = admin_client.post(
            f"{MESSAGES_URL}{sent.pk}/change/",
            self.change_data(sent, subject="Fixed", extra_tags="billing   urgent"),
        )
        assert response.status_code == 302, response.context["adminform"].form.errors
        sent.refresh_from_db()
        assert (sent.subject, sent.extra_tags) == ("Fixed", "billing urgent")
        # The entries are untouched: alice's stays read, bob's unread.
        assert pigeonhole.inbox(user, state="read")[0].subject == "Fixed"
        assert pigeonhole.unread_count(other_user) == 1

    def test_editing_refuses_what_send_refuses(self, admin_client, user):
        sent = pigeonhole.send(user, "Hello")
        response = admin_client.post(
            f"{MESSAGES_URL}{sent.pk}/change/",
            self.change_data(sent, url="javascript:alert(1)"),
        )
        assert response.status_code == 200
        assert "url must be a path" in str(response.context["adminform"].form.non_field_errors())
        sent.refresh_from_db()
        assert sent.url == ""

    def test_safe_html_and_expiry_cannot_be_edited(self, admin_client, user):
        sent = pigeonhole.send(user, "<b>Hi</b>")
        content = admin_client.get(f"{MESSAGES_URL}{sent.pk}/change/").content.decode()
        assert 'name="safe"' not in content and 'name="expires_0"' not in content
        admin_client.post(f"{MESSAGES_URL}{sent.pk}/change/", self.change_data(sent, safe="on"))
        sent.refresh_from_db()
        assert sent.safe is False

    def test_delete_confirmation_counts_entries_instead_of_listing_them(
        self, admin_client, user, other_user
    ):
        sent = pigeonhole.send([user, other_user], "Goodbye")
        response = admin_client.get(f"{MESSAGES_URL}{sent.pk}/delete/")
        content = response.content.decode()
        assert "2 inbox entries" in content
        assert "→" not in content  # no InboxEntry.__str__ row per recipient

        response = admin_client.post(f"{MESSAGES_URL}{sent.pk}/delete/", {"post": "yes"})
        assert response.status_code == 302
        assert not Message.objects.exists() and not InboxEntry.objects.exists()

    def test_delete_needs_permission_on_entries_too(self, client, django_user_model, user):
        sent = pigeonhole.send(user, "Goodbye")
        staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
        staff.user_permissions.add(
            *Permission.objects.filter(codename__in=["view_message", "delete_message"])
        )
        client.force_login(staff)
        response = client.get(f"{MESSAGES_URL}{sent.pk}/delete/")
        assert response.context["perms_lacking"] == {"inbox entry"}
        client.post(f"{MESSAGES_URL}{sent.pk}/delete/", {"post": "yes"})
        assert Message.objects.filter(pk=sent.pk).exists()


# Inbox entries --------------------------------------------------------------------
class TestInboxEntryAdmin:
    @pytest.fixture
    def entries(self, user, other_user):
        pigeonhole.send([user, other_user], "First")
        pigeonhole.send([user], "Second")
        first_alice, second_alice = (
            InboxEntry.objects.get(user=user, message__message=text) for text in ("First", "Second")
        )
        pigeonhole.mark_read(user, [first_alice.pk])
        pigeonhole.archive(user, [second_alice.pk])
        return {
            "read": first_alice.pk,
            "archived": second_alice.pk,
            "bob": InboxEntry.objects.get(user=other_user).pk,
        }

    def test_deleting_thread_rows_deletes_the_history_they_keep(
        self, admin_client, user, other_user
    ):
        for text in ("a", "b"):
            pigeonhole.send([user, other_user], text, thread="t")
        mine, theirs = (InboxEntry.objects.get(user=person) for person in (user, other_user))
        response = admin_client.post(f"{ENTRIES_URL}{mine.pk}/delete/", {"post": "yes"})
        assert response.status_code == 302
        assert not FoldedEntry.objects.filter(user=user).exists()
        assert FoldedEntry.objects.filter(user=other_user).count() == 1
        selected = {"action": "delete_selected", "_selected_action": [theirs.pk], "post": "yes"}
        assert admin_client.post(ENTRIES_URL, selected).status_code == 302
        assert not InboxEntry.objects.exists() and not FoldedEntry.objects.exists()

    def test_filters_by_read_state(self, admin_client, entries):
        read = listed(admin_client.get(ENTRIES_URL, {"read": "yes"}))
        unread = listed(admin_client.get(ENTRIES_URL, {"read": "no"}))
        assert [e.pk for e in read] == [entries["read"]]
        assert {e.pk for e in unread} == {entries["archived"], entries["bob"]}

    def test_filters_by_archived(self, admin_client, entries):
        archived = listed(admin_client.get(ENTRIES_URL, {"archived": "yes"}))
        kept = listed(admin_client.get(ENTRIES_URL, {"archived": "no"}))
        assert [e.pk for e in archived] == [entries["archived"]]
        assert {e.pk for e in kept} == {entries["read"], entries["bob"]}

    def test_filters_by_message_and_searches_by_username(self, admin_client, entries):
        first = Message.objects.get(message="First")
        by_message = listed(admin_client.get(ENTRIES_URL, {"message__id__exact": first.pk}))
        assert {e.pk for e in by_message} == {entries["read"], entries["bob"]}
        by_user = listed(admin_client.get(ENTRIES_URL, {"q": "bo"}))
        assert [e.pk for e in by_user] == [entries["bob"]]

    def test_filters_by_creation_date(self, admin_client, entries):
        InboxEntry.objects.filter(pk=entries["bob"]).update(
            created=timezone.now() - timedelta(days=60)
        )
        recent = listed(admin_client.get(ENTRIES_URL, today_filter()))
        assert {e.pk for e in recent} == {entries["read"], entries["archived"]}

    def test_query_count_does_not_grow_with_the_number_of_entries(
        self, admin_client, user, other_user
    ):
        def queries():
            with CaptureQueriesContext(connection) as captured:
                assert admin_client.get(ENTRIES_URL).status_code == 200
            return len(captured)

        pigeonhole.send([user], "One")
        few = queries()
        for n in range(4):
            pigeonhole.send([user, other_user], f"More {n}")
        assert queries() == few

    def test_change_page_edits_state_with_raw_id_user(self, admin_client, entries):
        response = admin_client.get(f"{ENTRIES_URL}{entries['bob']}/change/")
        content = response.content.decode()
        assert 'name="user" value="' in content and 'class="vForeignKeyRawIdAdminField"' in content
        assert '<select name="user"' not in content


# The send action on the users admin -----------------------------------------------
class TestActionRegistration:
    def test_action_is_added_to_the_registered_user_admin(self):
        assert send_message_action in user_admin().actions

    def test_django_user_admin_class_is_left_unchanged(self):
        assert send_message_action not in UserAdmin.actions
        other_site = admin.AdminSite(name="other")
        other = UserAdmin(user_admin().model, other_site)
        assert send_message_action not in (other.actions or ())
        assert not hasattr(other, "has_pigeonhole_send_permission")

    def test_adding_again_does_not_duplicate_the_action(self):
        model_admin = UserAdmin(user_admin().model, admin.AdminSite(name="other"))
        assert add_send_message_action(model_admin) is True
        assert add_send_message_action(model_admin) is False
        assert add_send_message_action(user_admin()) is False
        assert list(model_admin.actions).count(send_message_action) == 1
        assert list(user_admin().actions).count(send_message_action) == 1

    def test_admin_with_actions_disabled_is_left_alone(self):
        model_admin = UserAdmin(user_admin().model, admin.AdminSite(name="other"))
        model_admin.actions = None
        assert add_send_message_action(model_admin) is False
        assert model_admin.actions is None

    def test_registered_user_admin_is_a_subclass_not_a_patched_instance(self):
        registered = user_admin()
        assert isinstance(registered, SendMessageActionMixin)
        assert issubclass(type(registered), UserAdmin)
        assert "has_pigeonhole_send_permission" not in vars(registered)

    def test_register_user_admin_adds_the_action_on_another_site_once(self):
        site = admin.AdminSite(name="other")
        site.register(user_admin().model, UserAdmin)
        assert register_user_admin(site) is True
        assert register_user_admin(site) is False
        registered = site.get_model_admin(user_admin().model)
        assert list(registered.actions).count(send_message_action) == 1
        assert isinstance(registered, SendMessageActionMixin)
        assert site.check(None) == []

    def test_register_user_admin_leaves_a_site_without_a_user_admin_alone(self):
        site = admin.AdminSite(name="empty")
        assert register_user_admin(site) is False
        assert not site.is_registered(user_admin().model)

    def test_register_user_admin_respects_disabled_actions(self):
        class NoActions(UserAdmin):
            actions = None

        site = admin.AdminSite(name="no-actions")
        site.register(user_admin().model, NoActions)
        assert register_user_admin(site) is False
        assert type(site.get_model_admin(user_admin().model)) is NoActions

    def test_admins_using_the_action_pass_the_system_checks(self):
        class CustomUserAdmin(SendMessageActionMixin, UserAdmin):
            actions = [send_message_action]

        site = admin.AdminSite(name="custom")
        site.register(user_admin().model, CustomUserAdmin)
        assert site.check(None) == []
        assert [e.id for e in admin.site.check(None) if e.id == "admin.E129"] == []


def action_names(response):
    """Return the actions the changelist offers the requesting user."""
    return response.context["cl"].model_admin.get_actions(response.wsgi_request)


def action_post(users, **extra):
    return {
        "action": "send_message_action",
        "_selected_action": [str(u.pk) for u in users],
        **extra,
    }


def confirm_post(users, **fields):
    data = action_post(users, post="yes", select_across="0")
    data.update({f"pigeonhole-{name}": value for name, value in fields.items()})
    return data


class TestSendMessageAction:
    def test_choosing_the_action_shows_a_confirmation_form(self, admin_client, user, other_user):
        response = admin_client.post(USERS_URL, action_post([user, other_user], index="0"))
        assert response.status_code == 200
        assert "pigeonhole/admin/send_message.html" in [t.name for t in response.templates]
        content = response.content.decode()
        assert "The message goes to the 2 selected users." in content
        for name in ("level", "subject", "message", "url"):
            assert f'name="pigeonhole-{name}"' in content
        assert f'name="_selected_action" value="{user.pk}"' in content
        assert not Message.objects.exists()

    def test_submitting_sends_to_the_selected_users_and_reports(
        self, admin_client, user, other_user, carol
    ):
        response = admin_client.post(
            USERS_URL,
            confirm_post(
                [user, other_user],
                level=str(pigeonhole.WARNING),
                subject="Heads up",
                message="Maintenance tonight",
                url="/status/",
            ),
            follow=True,
        )
        sent = Message.objects.get()
        assert f"Sent message {sent.pk} to 2 users." in [
            str(m) for m in response.context["messages"]
        ]
        for recipient in (user, other_user):
            [entry] = pigeonhole.inbox(recipient)
            assert (str(entry), entry.level, entry.subject, entry.url) == (
                "Maintenance tonight",
                pigeonhole.WARNING,
                "Heads up",
                "/status/",
            )
            assert entry.from_user_id == response.context["user"].pk
        assert pigeonhole.inbox(carol) == []

    def test_select_across_sends_to_every_user_the_filter_shows(
        self, admin_client, user, other_user, carol
    ):
        data = confirm_post([user], message="To all non-staff", level=str(pigeonhole.INFO))
        data["select_across"] = "1"
        admin_client.post(f"{USERS_URL}?is_staff__exact=0", data)
        recipients = Message.objects.get().entries.values_list("user__username", flat=True)
        assert sorted(recipients) == ["alice", "bob", "carol"]  # not the staff "admin"

    def test_confirmation_page_keeps_select_across(self, admin_client, user, other_user, carol):
        response = admin_client.post(
            f"{USERS_URL}?is_staff__exact=0", action_post([user], index="0", select_across="1")
        )
        content = response.content.decode()
        assert "The message goes to the 3 selected users." in content
        assert '<input type="hidden" name="select_across" value="1">' in content

    def test_invalid_message_shows_on_the_form_and_sends_nothing(self, admin_client, user):
        response = admin_client.post(
            USERS_URL,
            confirm_post([user], message="Click", url="javascript:alert(1)", level="20"),
        )
        assert response.status_code == 200
        form = response.context["form"]
        assert "url must be a path" in str(form.non_field_errors())
        assert "url must be a path" in response.content.decode()
        assert not Message.objects.exists()

    @override_settings(PIGEONHOLE={"MAX_LENGTH": 10})
    def test_too_long_message_shows_on_the_form(self, admin_client, user):
        response = admin_client.post(USERS_URL, confirm_post([user], message="x" * 11, level="20"))
        assert "more than the 10 allowed" in str(response.context["form"].non_field_errors())
        assert not Message.objects.exists()

    def test_missing_text_is_a_field_error(self, admin_client, user):
        response = admin_client.post(USERS_URL, confirm_post([user], message="", level="20"))
        assert response.context["form"].errors["message"]
        assert not Message.objects.exists()

    @pytest.fixture
    def staff(self, client, django_user_model):
        staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
        staff.user_permissions.add(
            *Permission.objects.filter(codename__in=["view_user", "change_user", "delete_user"])
        )
        client.force_login(staff)
        return staff

    def test_staff_without_add_message_permission_neither_sees_nor_runs_it(
        self, client, staff, user
    ):
        response = client.get(USERS_URL)
        assert "delete_selected" in action_names(response)
        assert "send_message_action" not in action_names(response)
        response = client.post(
            USERS_URL, confirm_post([user], message="Sneaky", level="20"), follow=True
        )
        assert "No action selected." in [str(m) for m in response.context["messages"]]
        assert not Message.objects.exists()

    def test_staff_with_add_message_permission_can_send(self, client, staff, user):
        staff.user_permissions.add(Permission.objects.get(codename="add_message"))
        response = client.get(USERS_URL)
        assert "send_message_action" in action_names(response)
        client.post(USERS_URL, confirm_post([user], message="Allowed", level="20"))
        assert [str(m) for m in pigeonhole.inbox(user)] == ["Allowed"]
