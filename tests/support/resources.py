"""What the library's objects hold in memory, weighed by walking them."""

from __future__ import annotations

import collections
import gc
import sys

CONTAINERS = (dict, list, tuple, set, frozenset, collections.deque, collections.Counter)
VALUES = (int, float, str, bytes, bool, type(None))


def held_bytes(*roots: object) -> int:
    """Bytes of the library's objects reachable from ``roots``, and of the plain containers
    and values they hold; other libraries' objects (httpx, anyio, the test kit) are not
    entered."""
    seen: set[int] = set()
    stack = list(roots)
    total = 0
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        kind = type(item)
        module = kind.__module__
        own = module.startswith("cdm_status") and not module.startswith("cdm_status.testing")
        if not (own or isinstance(item, CONTAINERS) or kind in VALUES):
            continue
        total += sys.getsizeof(item)
        if own or isinstance(item, CONTAINERS):
            stack.extend(gc.get_referents(item))
    return total
