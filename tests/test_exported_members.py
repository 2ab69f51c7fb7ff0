"""The public API: complete, sorted, documented."""

from __future__ import annotations

import importlib
import inspect
import types

import pytest

import resilient

PUBLIC_MODULES = [
    "resilient",
    "resilient.delivery",
    "resilient.http",
    "resilient.instrumentation",
    "resilient.stores",
    "resilient.testing",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_complete(name: str) -> None:
    """__all__ lists every public name the module defines or re-exports, once.

    Its order is ruff's business (RUF022), checked with the rest of the lint.
    """
    module = importlib.import_module(name)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_") and not inspect.ismodule(value)
    }
    assert len(set(module.__all__)) == len(module.__all__)
    assert set(module.__all__) - {"__version__"} == public


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_name_has_a_docstring(name: str) -> None:
    """Every exported class and function says what it is for."""
    module = importlib.import_module(name)
    for attr in module.__all__:
        value = getattr(module, attr)
        if isinstance(value, types.GenericAlias):  # a type alias: 3.10 calls it a class
            continue
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name}.{attr} has no docstring"


def test_version_is_a_string() -> None:
    """The version is exposed for bug reports."""
    assert isinstance(resilient.__version__, str)
    assert resilient.__version__
