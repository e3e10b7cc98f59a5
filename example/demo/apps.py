from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo project doubles as an app, for its templates, signals and ``demo_setup``."""

    name = "demo"
    verbose_name = "pigeonhole demo"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects the sign-in and sign-out messages)
