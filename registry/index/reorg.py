"""Finding where a reorganised chain and the store part ways: the newest recorded block the
chain still has."""

from __future__ import annotations

from collections.abc import Callable

from registry.index.node import Node

__all__ = ["common_ancestor"]


def common_ancestor(
    at_or_below: Callable[[int], tuple[int, bytes] | None], node: Node, head: int, floor: int
) -> tuple[int, bytes] | None:
    """The newest recorded block that is still on the chain (None: none is), in O(log n)
    node calls.

    "Nothing is recorded at or below x, or the newest recorded block there is on the chain"
    holds for every x below the fork point and for none above it (a block's hash commits
    to all its ancestors), so galloping down from the newest record and then bisecting
    finds the fork point. `at_or_below(x)` is the store's newest recorded block at or below x;
    nothing is recorded at or below `floor` (the block before the deployment).
    """

    def before_fork(x: int) -> bool:
        block = at_or_below(x)
        return block is None or _on_chain(node, block, head)

    top = at_or_below(head)
    if top is None or _on_chain(node, top, head):
        return top
    high, step = top[0], 1
    while True:
        low = max(high - step, floor)
        if low == floor or before_fork(low):
            break
        high, step = low, step * 2
    while high - low > 1:
        middle = (low + high) // 2
        if before_fork(middle):
            low = middle
        else:
            high = middle
    return at_or_below(low)


def _on_chain(node: Node, block: tuple[int, bytes], head: int) -> bool:
    header = node.header(block[0]) if block[0] <= head else None
    return header is not None and header.hash == block[1]
