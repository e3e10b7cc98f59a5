from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PigeonholeConfig(AppConfig):
    name = "pigeonhole"
    verbose_name = _("Pigeonhole")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .brokers import publish

        publish.connect()
