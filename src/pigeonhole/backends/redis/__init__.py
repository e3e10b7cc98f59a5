"""
A store in Redis, for sites whose inboxes are hot enough to want memory speed.

``backend`` holds ``RedisBackend``; ``scripts`` loads the Lua scripts in
``lua/`` that make each change atomic; ``keys`` names every key;
``encoding`` writes entries and contents into hashes and reads them back.
``docs/backends.md`` describes the key layout and what a failure in the
middle of a send leaves behind.
"""

from django.core.exceptions import ImproperlyConfigured

try:
    import redis  # noqa: F401
except ImportError as exc:
    raise ImproperlyConfigured(
        "pigeonhole.backends.redis.RedisBackend needs redis-py: "
        'pip install "django-pigeonhole[redis]"'
    ) from exc

from .backend import RedisBackend, _redacted  # noqa: F401  (_redacted: the Redis broker's too)

__all__ = ["RedisBackend"]
