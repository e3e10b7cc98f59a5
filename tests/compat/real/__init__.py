"""
The import command against the old libraries themselves, installed.

Installing them changes the process (django-messages-extends patches
``django.contrib.messages`` on import), so these tests run in a pytest of
their own with ``settings.py`` here; ``tests/compat/test_import_real.py``
starts it once per database.
"""
