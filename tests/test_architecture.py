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


def module_name(path):
    """Return the dotted name of the module at ``path``, as Python imports it."""
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute(path, node):
    """Return the absolute module name an ``ImportFrom`` reads from, relative ones resolved."""
    if not node.level:
        return node.module
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, node.module] if node.module else package)


def imports(path):
    """Return every module a module imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = absolute(path, node)
            found.add(source)
            # ``from . import api`` imports the module pigeonhole.api.
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return found


def references(path, module, name):
    """
    Return the lines where a module takes ``name`` from ``module``.

    By ``from module import name`` (under any alias, at any depth), or as an
    attribute of the module however it was imported (``conf.get_backend``,
    ``pigeonhole.conf.get_backend``).
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    bound = {}  # local name -> the module it stands for
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    bound[top] = top
        elif isinstance(node, ast.ImportFrom):
            source = absolute(path, node)
            for alias in node.names:
                if source == module and alias.name == name:
                    lines.append(node.lineno)
                bound[alias.asname or alias.name] = f"{source}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == name:
            chain, value = [], node.value
            while isinstance(value, ast.Attribute):
                chain.insert(0, value.attr)
                value = value.value
            named = isinstance(value, ast.Name) and value.id in bound
            if named and ".".join([bound[value.id], *chain]) == module:
                lines.append(node.lineno)
    return sorted(lines)


SERVICE = SRC / "service.py"

#: The modules that act for one user: they go through the service's functions
#: (or ``pigeonhole.api``), never holding the store themselves.
ONE_USER = ("api.py", "storage.py", "views", "rest_framework", "compat", "templatetags")


def test_the_store_is_reached_through_the_service_alone():
    """
    Only the stores and ``pigeonhole.service`` call ``get_backend()``.

    Everything else goes through the service, so what surrounds a store call
    (the anonymous check, signals, ``DELETE_READ``, email) is written once.
    """
    # The scan finds the calls that are allowed, so it would find the others.
    assert references(SERVICE, "pigeonhole.conf", "get_backend")
    outside = [
        f"{path.relative_to(SRC)}:{line}"
        for path in python_files()
        if path != SERVICE and path.relative_to(SRC).parts[0] not in ("backends", "conf.py")
        for line in references(path, "pigeonhole.conf", "get_backend")
    ]
    assert outside == []


def test_modules_acting_for_one_user_never_hold_the_store():
    """Views, REST, compat, the storage and the API use the service's per-user functions."""
    assert references(SRC / "tasks.py", "pigeonhole.service", "store")
    holding = [
        f"{path.relative_to(SRC)}:{line}"
        for path in python_files()
        if path.relative_to(SRC).parts[0] in ONE_USER
        for line in references(path, "pigeonhole.service", "store")
    ]
    assert holding == []


def test_api_and_storage_do_not_import_each_other():
    """
    The storage reaches the store through the service, not through the API.

    ``api.add_message()`` hands over to the storage, so the storage importing
    ``api`` back, even inside a function, would be a cycle.
    """
    api, storage = SRC / "api.py", SRC / "storage.py"
    assert "pigeonhole.storage" in imports(api)
    assert "pigeonhole.api" not in imports(storage)


@pytest.mark.parametrize(
    "above",
    [
        "pigeonhole.api",
        "pigeonhole.storage",
        "pigeonhole.views",
        "pigeonhole.live",
        "pigeonhole.rest_framework",
        "pigeonhole.compat",
    ],
)
def test_the_service_imports_nothing_that_uses_it(above):
    assert importlib.util.find_spec(above) is not None
    found = [name for name in imports(SERVICE) if name == above or name.startswith(f"{above}.")]
    assert found == []
