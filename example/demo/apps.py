from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo project doubles as an app, for its templates and ``demo_setup``."""

    name = "demo"
    verbose_name = "pigeonhole demo"
