"""The shipped catalogues: every language compiles, and the pages speak it."""

import gettext
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import translation

import pigeonhole

LOCALE = Path(pigeonhole.__file__).parent / "locale"
LANGUAGES = ("de", "es", "fr", "ja", "pt_BR")


def gettext_tool(name):
    """
    Find a GNU gettext program; without it, skip, except under ``CI=true``, where a skip
    would let the catalogues go unchecked.
    """
    found = shutil.which(name)
    if found:
        return found
    reason = f"GNU gettext's {name} is not installed (apt-get install gettext)"
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """
    The ``.pot`` that ``makemessages`` extracts from the code today, made in a copy of the
    package so that the shipped catalogues stay untouched.
    """
    gettext_tool("xgettext")
    package = tmp_path_factory.mktemp("extract") / "pigeonhole"
    shutil.copytree(LOCALE.parent, package, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "de", "--keep-pot"],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return package / "locale" / "django.pot"


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
    msgfmt = gettext_tool("msgfmt")
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


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogue_holds_every_string_of_the_code(language, template):
    """
    ``makemessages`` would add nothing and drop nothing: every string the code marks for
    translation has an entry, and no entry is left over from a string the code no longer has.
    """
    msgcmp = gettext_tool("msgcmp")
    po = LOCALE / language / "LC_MESSAGES" / "django.po"
    for definitions, references in ((po, template), (template, po)):
        result = subprocess.run(
            [msgcmp, "--use-fuzzy", "--use-untranslated", definitions, references],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, (
            f"{po.relative_to(LOCALE.parent)} is behind the code; run makemessages "
            f"--no-obsolete in src/pigeonhole and translate:\n{result.stderr}"
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
