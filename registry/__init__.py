"""ISCC declaration registry: generate, sign, declare, index and resolve ISCC codes."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

__version__ = "0.1.0"

# Python's own default. py_ecc (imported by eth_account) raises the limit to 100,000 for its
# recursive pairing code, which this project never calls. With that limit the C JSON parser
# overflows the C stack on a deeply nested body instead of raising RecursionError: one 200 KB
# request of "[[[..." killed the whole service (segfault). Every process of the project
# imports this package first, so this is the one place that keeps the limit where it was.
DEFAULT_RECURSION_LIMIT = 1000


class _KeepRecursionLimit(importlib.abc.MetaPathFinder):
    """Finds py_ecc like the normal path finder does and restores the recursion limit right
    after the module has run. A hook rather than importing py_ecc here: processes that never
    touch eth_account (the log reader workers) would otherwise pay its ~0.2 s import."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "py_ecc":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            limit = sys.getrecursionlimit()
            try:
                run(module)
            finally:
                sys.setrecursionlimit(limit)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if "py_ecc" in sys.modules:
    # Imported before this package (e.g. eth_account first): its raise already happened.
    sys.setrecursionlimit(min(sys.getrecursionlimit(), DEFAULT_RECURSION_LIMIT))
elif not any(isinstance(finder, _KeepRecursionLimit) for finder in sys.meta_path):
    sys.meta_path.insert(0, _KeepRecursionLimit())
