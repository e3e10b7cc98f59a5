"""One uvicorn server for the live tests, and a logged-in user's cookies."""

import pytest

from .server import LiveServer, session_cookies


@pytest.fixture(scope="module")
def live():
    server = LiveServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live_streams():
    """The same project, its streams served by ``pigeonhole.asgi.live_streams``."""
    from django.core.asgi import get_asgi_application

    from pigeonhole.asgi import live_streams

    server = LiveServer(live_streams(get_asgi_application())).start()
    yield server
    server.stop()


@pytest.fixture
def cookies(transactional_db, user):
    return session_cookies(user)


@pytest.fixture(autouse=True)
def quick_streams(settings):
    """Streams in tests keep quiet for long enough not to get in the way."""
    settings.PIGEONHOLE = {"STREAM_KEEPALIVE": 30}
