"""Old module paths, kept for one release: each forwards its names to the module's new home with a
:class:`DeprecationWarning` (the layout by layer is in the changelog). Nothing inside the package imports them.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def forward(
    old: str, new: str, elsewhere: dict[str, str] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for the module ``old``: a name is looked up in ``new`` (or, for a
    name that left for another module, in ``elsewhere[name]``) and returned with a deprecation warning."""
    elsewhere = elsewhere or {}

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        home = elsewhere.get(name, new)
        try:
            value = getattr(importlib.import_module(home), name)
        except AttributeError:
            raise AttributeError(f"module {old!r} has no attribute {name!r} (its code is now in {new!r})") from None
        warnings.warn(f"{old}.{name} is deprecated: import it from {home} (the old module path will be removed in "
                      "the next release)", DeprecationWarning, stacklevel=2)  # fmt: skip
        return value

    def __dir__() -> list[str]:
        return sorted({*dir(importlib.import_module(new)), *elsewhere})

    return __getattr__, __dir__
