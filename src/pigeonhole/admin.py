"""
The admin: sent messages with their recipients' read state, inbox entries,
and a "Send a message to selected users" action on the users admin.

A message can go to 100,000 people, so nothing here renders or loads one row
per recipient: counts are subqueries, the inline shows a bounded slice, and the
delete confirmation counts entries instead of listing them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_permission_codename, get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import Truncator, capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import api, constants
from .exceptions import InvalidMessage
from .forms import MessageAdminForm, SendMessageForm
from .message import level_tag_for
from .models import InboxEntry, InboxEntryQuerySet, Message

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

__all__ = [
    "InboxEntryAdmin",
    "InboxEntryInline",
    "MessageAdmin",
    "SendMessageActionMixin",
    "add_send_message_action",
    "register_user_admin",
    "send_message_action",
]


def _entry_count(**filters: Any) -> Coalesce:
    """
    Count a message's entries in a correlated subquery.

    Unlike ``Count("entries")`` with its ``GROUP BY`` over the whole entry
    table, a subquery runs for the rows of the page alone.
    """
    entries = (
        InboxEntry.objects.filter(message=OuterRef("pk"), **filters)
        .order_by()
        .values("message")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return Coalesce(Subquery(entries, output_field=IntegerField()), 0)


def _entries_url(site_name: str, query: str) -> str | None:
    try:
        url = reverse("admin:pigeonhole_inboxentry_changelist", current_app=site_name)
    except NoReverseMatch:  # InboxEntry is not registered on this site
        return None
    return f"{url}?{query}"


# Filters ----------------------------------------------------------------------
class LevelListFilter(admin.SimpleListFilter):
    """
    Filter by level as a reader sees it: "info" covers plain, persistent and
    sticky info. Listing the distinct stored levels would scan the table.
    """

    title = _("level")
    parameter_name = "level"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(level), level_tag_for(level)) for level in constants.BASE_LEVELS]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        value = self.value()
        if value is None:
            return None
        field = "message__level" if queryset.model is InboxEntry else "level"
        return queryset.filter(**{f"{field}__in": constants.level_variants(int(value))})


class RecipientReadListFilter(admin.SimpleListFilter):
    """Find messages some recipient has yet to read, or that everyone has read."""

    title = _("read state")
    parameter_name = "read"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("unread", _("Has unread recipients")), ("read", _("All read"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        unread = Exists(InboxEntry.objects.filter(message=OuterRef("pk"), read_at__isnull=True))
        if self.value() == "unread":
            return queryset.filter(unread)
        if self.value() == "read":
            # A message nobody received is not "read by all".
            received = Exists(InboxEntry.objects.filter(message=OuterRef("pk")))
            return queryset.filter(received, ~unread)
        return None


class IsSetListFilter(admin.SimpleListFilter):
    """
    Filter entries on whether a state's timestamp is set: ``read_at``, ``archived_at``.

    Each state is kept as the time it began, so "read" and "unread" are one
    ``isnull`` lookup; a subclass names the ``field`` and the two ``labels``.
    """

    field = ""
    #: The labels of the "set" and the "not set" choices.
    labels: tuple[StrOrPromise, StrOrPromise] = ("", "")

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, StrOrPromise]]:
        return [("yes", self.labels[0]), ("no", self.labels[1])]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if self.value() in ("yes", "no"):
            return queryset.filter(**{f"{self.field}__isnull": self.value() == "no"})
        return None


class EntryReadListFilter(IsSetListFilter):
    title = _("read")
    parameter_name = "read"
    field = "read_at"
    labels = (_("Read"), _("Unread"))


class EntryArchivedListFilter(IsSetListFilter):
    title = _("archived")
    parameter_name = "archived"
    field = "archived_at"
    labels = (_("Archived"), _("Not archived"))


# Messages ---------------------------------------------------------------------
class InboxEntryInlineFormSet(BaseInlineFormSet):
    """
    Hold at most ``max_shown`` entries of a message.

    A message sent to everyone has an entry per user; the change page shows
    the newest few and links to the full, paginated list.
    """

    max_shown = 50

    def get_queryset(self) -> QuerySet:
        if not hasattr(self, "_shown"):
            shown = super().get_queryset()[: self.max_shown]
            for entry in shown:
                # Every row's label names the message; it is already loaded.
                entry.message = self.instance
            self._shown = shown
        return self._shown

    @cached_property
    def total_count(self) -> int:
        """Return how many entries the message has; MessageAdmin annotates it."""
        count = getattr(self.instance, "recipient_count", None)
        if count is None:
            count = super().get_queryset().count()
        return count


class InboxEntryInline(admin.TabularInline):
    """
    Show who received a message and what each recipient did with it.

    Read-only: read state belongs to its user, and changes made here would
    bypass the signals and live events the API sends. A row's change link
    leads to the entry's own page for the rare correction.
    """

    model = InboxEntry
    formset = InboxEntryInlineFormSet
    template = "pigeonhole/admin/edit_inline/inbox_entries.html"
    fields = ("user", "created", "read_at", "archived_at", "emailed_at")
    readonly_fields = fields
    # For a subclass that makes the inline editable: never a <select> of every user.
    raw_id_fields = ("user",)
    extra = 0
    can_delete = False
    show_change_link = True
    #: How many entries the change page shows at most.
    max_shown = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("user")

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        formset.max_shown = self.max_shown  # a fresh class per call: safe to set
        return formset

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """
    List sent messages with how many received and have yet to read them.

    Adding is disabled: a message created here would reach nobody. Send with
    the users admin's "Send a message to selected users" action, or with
    ``pigeonhole.send()``.
    """

    form = MessageAdminForm
    list_display = (
        "excerpt",
        "subject",
        "level_display",
        "from_user",
        "created",
        "expires",
        "recipients",
        "unread",
    )
    list_select_related = ("from_user",)
    list_filter = (LevelListFilter, RecipientReadListFilter, "created")
    date_hierarchy = "created"
    search_fields = ("subject", "message")
    show_full_result_count = False
    raw_id_fields = ("from_user", "in_reply_to")
    readonly_fields = (
        "recipient_summary",
        "safe",
        "target_display",
        "created",
        "expires",
    )
    fieldsets = (
        (None, {"fields": ("recipient_summary", "level", "subject", "message", "url")}),
        (
            _("Details"),
            {
                "fields": (
                    "extra_tags",
                    "data",
                    "from_user",
                    "in_reply_to",
                    "target_display",
                    "close_timeout",
                    "email",
                    "safe",
                    "created",
                    "expires",
                )
            },
        ),
    )
    inlines = (InboxEntryInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                recipient_count=_entry_count(),
                unread_count=_entry_count(read_at__isnull=True),
            )
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("message"))
    def excerpt(self, obj: Message) -> str:
        return Truncator(obj.message).chars(80)

    @admin.display(description=_("level"), ordering="level")
    def level_display(self, obj: Message) -> str:
        return obj.level_tag or str(obj.level)

    def _entries_link(self, count: int, query: str) -> str:
        url = _entries_url(self.admin_site.name, query)
        return format_html('<a href="{}">{}</a>', url, count) if url else str(count)

    @admin.display(description=_("recipients"), ordering="recipient_count")
    def recipients(self, obj: Message) -> str:
        return self._entries_link(obj.recipient_count, f"message__id__exact={obj.pk}")

    @admin.display(description=_("unread"), ordering="unread_count")
    def unread(self, obj: Message) -> str:
        return self._entries_link(obj.unread_count, f"message__id__exact={obj.pk}&read=no")

    @admin.display(description=_("recipients"))
    def recipient_summary(self, obj: Message) -> str:
        total = getattr(obj, "recipient_count", None)
        if total is None:
            return "-"
        return ngettext(
            "%(total)d recipient, %(unread)d unread",
            "%(total)d recipients, %(unread)d unread",
            total,
        ) % {"total": total, "unread": obj.unread_count}

    @admin.display(description=_("target"))
    def target_display(self, obj: Message) -> str:
        if obj.target_content_type_id is None:
            return "-"
        content_type = ContentType.objects.get_for_id(obj.target_content_type_id)
        return f"{content_type} #{obj.target_object_id}"

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, ...]:
        """
        Summarise what deleting messages removes, without listing each entry.

        Django's default collects and renders every related row, which for a
        message sent to everyone is a page as long as the user table.
        """
        objs = list(objs)
        entry_count = InboxEntry.objects.filter(message__in=objs).count()
        perms_needed = set()
        for model in (Message, InboxEntry):
            opts = model._meta
            codename = get_permission_codename("delete", opts)
            if (model is Message or entry_count) and not request.user.has_perm(
                f"{opts.app_label}.{codename}"
            ):
                perms_needed.add(opts.verbose_name)
        to_delete: list[Any] = [
            format_html("{}: {}", capfirst(Message._meta.verbose_name), obj) for obj in objs
        ]
        if entry_count:
            to_delete.append(
                ngettext(
                    "%(count)d inbox entry",
                    "%(count)d inbox entries",
                    entry_count,
                )
                % {"count": entry_count}
            )
        model_count = {Message._meta.verbose_name_plural: len(objs)}
        if entry_count:
            model_count[InboxEntry._meta.verbose_name_plural] = entry_count
        return to_delete, model_count, perms_needed, []


# Inbox entries ----------------------------------------------------------------
@admin.register(InboxEntry)
class InboxEntryAdmin(admin.ModelAdmin):
    """
    List inbox entries by user and message.

    No date hierarchy: its year and month links need a ``DISTINCT`` scan of
    ``created``, which this table, one row per recipient, cannot afford.
    """

    list_display = (
        "id",
        "user",
        "message",
        "created",
        "is_read",
        "read_at",
        "archived_at",
        "emailed_at",
    )
    list_select_related = ("user", "message")
    list_filter = (EntryReadListFilter, EntryArchivedListFilter, LevelListFilter, "created")
    raw_id_fields = ("user", "message")
    readonly_fields = ("created",)
    show_full_result_count = False

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return [f"^user__{get_user_model().USERNAME_FIELD}"]

    @admin.display(description=_("read"), boolean=True, ordering="read_at")
    def is_read(self, obj: InboxEntry) -> bool:
        return obj.is_read

    def delete_model(self, request: HttpRequest, obj: InboxEntry) -> None:
        """Delete the row and the thread history it keeps, as the store's own delete does."""
        self.delete_queryset(request, InboxEntry.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: InboxEntryQuerySet) -> None:
        with transaction.atomic(using=queryset.db):
            queryset.history().delete()
            super().delete_queryset(request, queryset)


# The action on the users admin ------------------------------------------------
def _send_permission() -> str:
    opts = Message._meta
    return f"{opts.app_label}.{get_permission_codename('add', opts)}"


@admin.action(description=_("Send a message to selected users"), permissions=["pigeonhole_send"])
def send_message_action(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> TemplateResponse | None:
    """
    Ask for the message, then send it to the selected users.

    The confirmation page posts back the selection (or "all N across pages")
    and the changelist's filters, as Django's "delete selected" does, so the
    second request sees the same users.
    """
    form = SendMessageForm(
        request.POST if request.POST.get("post") == "yes" else None, prefix="pigeonhole"
    )
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            sent = api.send(
                # Order means nothing to a recipient list and costs a sort.
                queryset.order_by(),
                data["message"],
                level=data["level"],
                subject=data["subject"],
                url=data["url"],
                from_user=request.user,
            )
        except InvalidMessage as exc:
            form.add_error(None, str(exc))
        else:
            count = sent.recipient_count
            modeladmin.message_user(
                request,
                ngettext(
                    "Sent message %(id)s to %(count)d user.",
                    "Sent message %(id)s to %(count)d users.",
                    count,
                )
                % {"id": sent.id, "count": count},
                messages.SUCCESS,
            )
            return None

    opts = modeladmin.model._meta
    admin_form = helpers.AdminForm(form, [(None, {"fields": list(form.fields)})], {})
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Send a message"),
        "opts": opts,
        "adminform": admin_form,
        "form": form,
        "media": modeladmin.media + admin_form.media,
        "recipient_count": queryset.count(),
        "action_name": send_message_action.__name__,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "pigeonhole/admin/send_message.html", context)


def _may_send(request: HttpRequest) -> bool:
    """Allow those who may add messages: ``pigeonhole.add_message``."""
    return request.user.has_perm(_send_permission())


class SendMessageActionMixin:
    """
    Give a users ``ModelAdmin`` the permission check ``send_message_action`` needs.

    For a site's own users admin::

        class UserAdmin(SendMessageActionMixin, auth_admin.UserAdmin):
            actions = [send_message_action]
    """

    def has_pigeonhole_send_permission(self, request: HttpRequest) -> bool:
        """Allow those who may add messages: ``pigeonhole.add_message``."""
        return _may_send(request)


def _has_action(model_admin: admin.ModelAdmin) -> bool:
    name = send_message_action.__name__
    return any(getattr(action, "__name__", action) == name for action in model_admin.actions or ())


def register_user_admin(site: admin.AdminSite | None = None) -> bool:
    """
    Register the user model's admin on ``site`` again, with the send action.

    The admin registered for the user model is replaced by a subclass of its
    class that adds ``SendMessageActionMixin`` and ``send_message_action``; the
    class itself, and the same class on other sites, stay as they were. Return
    whether the action was added: not when the site has no user admin, when it
    already has the action, nor when it disables actions (``actions = None``).

    pigeonhole's admin module calls it for the default ``admin.site``; call it
    for another site.
    """
    site = admin.site if site is None else site
    user_model = get_user_model()
    if not site.is_registered(user_model):
        return False
    current = site.get_model_admin(user_model)
    if current.actions is None or _has_action(current):
        return False
    base = type(current)
    mixins = () if isinstance(current, SendMessageActionMixin) else (SendMessageActionMixin,)
    admin_class = type(
        base.__name__,
        (*mixins, base),
        {"__module__": base.__module__, "actions": [*current.actions, send_message_action]},
    )
    site.unregister(user_model)
    site.register(user_model, admin_class)
    return True


def add_send_message_action(model_admin: admin.ModelAdmin) -> bool:
    """
    Add ``send_message_action`` to one ``ModelAdmin`` instance.

    Only the instance changes, so the same ``ModelAdmin`` class on another
    site stays as it was. Return whether the action was added: not when the
    admin already has it, nor when it disables actions (``actions = None``).
    A registered user admin is better served by ``register_user_admin()``.
    """
    if model_admin.actions is None or _has_action(model_admin):
        return False
    if not hasattr(model_admin, "has_pigeonhole_send_permission"):
        # Django looks the check up on the instance and calls it with the request.
        model_admin.has_pigeonhole_send_permission = _may_send
    model_admin.actions = [*model_admin.actions, send_message_action]
    return True


# Registered as this module registers its own models: when the admin autodiscovers
# it, after the admin modules of the apps listed before pigeonhole (auth's among them).
register_user_admin()
