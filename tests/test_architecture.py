"""
The layout a maintainer relies on: which module holds what, and which may import which.

These tests read the source tree or import modules; they need no database.
"""

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

import pigeonhole

SRC = Path(pigeonhole.__file__).parent


def imported_modules(path):
    """Return the absolute names of the top-level packages a module imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def python_files(under=SRC):
    return sorted(p for p in under.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize(
    "name",
    [
        "bulk",
        "change_view",
        "close_sticky",
        "count",
        "mark_all_read",
        "reply",
        "store_unavailable",
        "stream",
        "unavailable_as_503",
    ],
)
def test_views_package_keeps_each_view_importable_by_its_old_name(name):
    from pigeonhole import views

    assert callable(getattr(views, name))
    assert name in views.__all__


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("pigeonhole.views.actions", ["bulk", "reply", "stream", "count"]),
        ("pigeonhole.views.pages", ["inbox", "inbox_context", "with_senders"]),
        ("pigeonhole.views.preferences", ["preferences", "unsubscribe"]),
    ],
)
def test_views_are_one_package_with_a_module_per_concern(module, names):
    found = importlib.import_module(module)
    assert all(callable(getattr(found, name)) for name in names)


def test_views_no_longer_live_beside_the_package():
    assert importlib.util.find_spec("pigeonhole.pages") is None
    assert importlib.util.find_spec("pigeonhole.preferences") is None


def test_only_the_rest_framework_package_imports_drf():
    """DRF is optional: one package imports it, and raises the install line when it is missing."""
    outside = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in python_files()
        if "rest_framework" not in path.relative_to(SRC).parts[:1]
        for name in imported_modules(path)
        if name == "rest_framework" or name.startswith("rest_framework.")
    ]
    assert outside == []
