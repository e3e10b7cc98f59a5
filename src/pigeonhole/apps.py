from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PigeonholeConfig(AppConfig):
    name = "pigeonhole"
    verbose_name = _("Pigeonhole")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.models.signals import post_delete, pre_delete

        from . import checks  # noqa: F401  (registers the system checks)
        from .receivers import drop_history_of_deleted_rows, forget_deleted_user

        post_delete.connect(
            forget_deleted_user,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="pigeonhole.forget_deleted_user",
        )
        # Before the deletion: the rows whose history goes are found through the message.
        pre_delete.connect(
            drop_history_of_deleted_rows,
            sender="pigeonhole.Message",
            dispatch_uid="pigeonhole.drop_history_of_deleted_rows",
        )
        from .brokers import publish

        publish.connect()
