"""
Drop-in replacements for the older persistent-message libraries.

``pigeonhole.compat.stored_messages``, ``messages_extends``, ``drf_messages``
and ``monitio`` carry each library's level constants, function names and
signatures, storage extras and URL names, so a project switches by changing
imports and settings. ``pigeonhole.compat.presets`` holds the matching
``PIGEONHOLE`` settings; it imports nothing, so settings files can use it.
Each library's data comes along with ``manage.py pigeonhole_import``.
"""
