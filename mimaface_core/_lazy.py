"""Lazy package attributes (PEP 562), so importing a package loads its heavy modules (diffusers,
transformers, torchmetrics, ...) only when one of their names is first used."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module


def lazy_getattr(package: str, table: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` resolving ``table`` ({attribute: relative module, e.g. ".loader"})
    on first use and caching the value in the package.

    Raises (from the returned function):
        AttributeError: a name that is not in ``table``.
    """
    def __getattr__(name: str):
        if name in table:
            value = getattr(import_module(table[name], package), name)
            setattr(import_module(package), name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
