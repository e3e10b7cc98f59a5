"""
Hand-made copies of old libraries' tables, for those that no longer install.

The models mirror the libraries' migrations (names, columns, types) in a
registry of their own, so they never join the project's apps.
"""
# ruff: noqa: DJ008 - table shapes only, never displayed

from django.apps.registry import Apps
from django.db import models
from django.utils import timezone

registry = Apps()


def _meta(table):
    return type("Meta", (), {"app_label": table.split("_")[0], "db_table": table, "apps": registry})


class StoredMessage(models.Model):
    message = models.TextField()
    level = models.IntegerField()
    tags = models.TextField()
    url = models.URLField(null=True, blank=True)
    date = models.DateTimeField(default=timezone.now)
    Meta = _meta("stored_messages_message")


class StoredArchive(models.Model):
    user_id = models.IntegerField()
    message = models.ForeignKey(StoredMessage, on_delete=models.CASCADE)
    Meta = _meta("stored_messages_messagearchive")


class StoredInbox(models.Model):
    user_id = models.IntegerField()
    message = models.ForeignKey(StoredMessage, on_delete=models.CASCADE)
    Meta = _meta("stored_messages_inbox")


class Monit(models.Model):
    user_id = models.IntegerField(null=True)
    from_user_id = models.IntegerField(null=True)
    subject = models.CharField(max_length=255, blank=True, default="")
    message = models.TextField()
    level = models.IntegerField()
    extra_tags = models.CharField(max_length=128)
    created = models.DateTimeField(default=timezone.now)
    modified = models.DateTimeField(default=timezone.now)
    read = models.BooleanField(default=False)
    expires = models.DateTimeField(null=True, blank=True)
    close_timeout = models.IntegerField(null=True, blank=True)
    url = models.URLField(max_length=1024, null=True, blank=True)
    Meta = _meta("monitio_monit")


STORED_MESSAGES = (StoredMessage, StoredArchive, StoredInbox)
MONITIO = (Monit,)
