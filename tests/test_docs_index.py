"""Every page of the documentation is reachable from its index and from the README."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

if not DOCS.is_dir():
    pytest.skip("no docs/ here (an unpacked sdist)", allow_module_level=True)

PAGES = sorted(
    path.relative_to(DOCS).as_posix()
    for path in DOCS.rglob("*.md")
    # The pages for each library one switches from are listed on migration/index.md.
    if path.name != "index.md" or path.parent.name == "migration"
)


def links(text: str) -> set[str]:
    return {target.split("#")[0] for target in re.findall(r"\]\(([^)\s]+)\)", text)}


@pytest.mark.parametrize("page", PAGES)
def test_docs_index_lists_the_page(page):
    assert page in links((DOCS / "index.md").read_text())


@pytest.mark.parametrize("page", PAGES)
def test_readme_lists_the_page(page):
    assert f"docs/{page}" in links((ROOT / "README.md").read_text())


def test_quick_starts_lead_with_the_built_in_inbox_page():
    """The page at /messages/ comes before any hand-made inbox."""
    for path in (ROOT / "README.md", DOCS / "quickstart.md"):
        text = path.read_text()
        built_in = text.find("/messages/")
        assert built_in != -1, path
        assert "pigeonhole.inbox(request.user" not in text[:built_in], path
        assert "built-in inbox page" in text, path
