"""The shipped catalogues: every language compiles, and the pages speak it."""

import gettext
import shutil
import subprocess
from pathlib import Path

import pytest
from django.utils import translation

import pigeonhole

LOCALE = Path(pigeonhole.__file__).parent / "locale"
LANGUAGES = ("de", "es", "fr", "ja", "pt_BR")


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogue_ships_compiled_and_up_to_date(language):
    folder = LOCALE / language / "LC_MESSAGES"
    po, mo = folder / "django.po", folder / "django.mo"
    assert po.is_file() and mo.is_file()
    assert mo.stat().st_size > 1000


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogue_is_whole_and_compiled(language, tmp_path):
    """
    Placeholders and plural forms agree with the English, nothing is fuzzy or missing, and
    the committed ``.mo`` holds what the ``.po`` says (``manage.py compilemessages`` was run).
    """
    msgfmt = shutil.which("msgfmt")
    if not msgfmt:
        pytest.skip("GNU gettext's msgfmt is not installed (apt-get install gettext)")
    po = LOCALE / language / "LC_MESSAGES" / "django.po"
    fresh = tmp_path / "django.mo"
    result = subprocess.run(
        [msgfmt, "--check", "--statistics", "-o", fresh, po],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "fuzzy" not in result.stderr and "untranslated" not in result.stderr, result.stderr
    with fresh.open("rb") as new, po.with_suffix(".mo").open("rb") as committed:
        assert gettext.GNUTranslations(committed)._catalog == (
            gettext.GNUTranslations(new)._catalog
        )


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("de", ["Ungelesen", "Alle als gelesen markieren", "Archivieren"]),
        ("fr", ["Non lu", "Tout marquer comme lu", "Archiver"]),
        ("ja", ["未読", "すべて既読にする", "アーカイブ"]),
    ],
)
@pytest.mark.django_db
def test_inbox_page_speaks_the_active_language(client, user, language, words):
    pigeonhole.send(user, "Hello")
    client.force_login(user)
    with translation.override(language):
        response = client.get("/messages/")
    assert response.status_code == 200
    for word in words:
        assert word in response.text
    assert "Mark all as read" not in response.text


@pytest.mark.django_db
def test_accept_language_picks_the_catalogue(client, user, settings):
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[:1],
        "django.middleware.locale.LocaleMiddleware",
        *settings.MIDDLEWARE[1:],
    ]
    settings.LANGUAGES = [("en", "English"), ("pt-br", "Português (Brasil)")]
    pigeonhole.send(user, "Olá")
    client.force_login(user)
    response = client.get("/messages/", headers={"accept-language": "pt-BR,pt;q=0.9"})
    assert "Marcar todas como lidas" in response.text
    assert response["Content-Language"] == "pt-br"
