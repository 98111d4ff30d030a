"""Python with ``rich`` not importable, as after ``pip install cdm-status`` without the
``cli`` extra: ``python tests/support/without_rich.py -c CODE [ARG ...]`` runs CODE with
``sys.argv`` = ``["-c", ARG, ...]``, as ``python -c`` would, after putting a finder in front
of ``sys.meta_path`` that refuses ``rich`` and every module under it. Only the standard
library is imported here, so it runs from any directory.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

BLOCKED = "rich"


class RefuseRich(importlib.abc.MetaPathFinder):
    """Raises ``ModuleNotFoundError`` for ``rich`` and ``rich.*``, as if not installed."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] == BLOCKED:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[0] != "-c":
        raise SystemExit("usage: without_rich.py -c CODE [ARG ...]")
    for name in [name for name in sys.modules if name.partition(".")[0] == BLOCKED]:
        del sys.modules[name]
    sys.meta_path.insert(0, RefuseRich())
    sys.argv = ["-c", *argv[2:]]
    exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})


if __name__ == "__main__":
    main(sys.argv[1:])
