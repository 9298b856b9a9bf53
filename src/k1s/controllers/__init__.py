"""The controllers `k1s up` and `k1s controllers` run: `CONTROLLERS` maps each controller's name
(upstream's kube-controller-manager --controllers names) to a factory taking a
ControllerContext and returning an object with `async def run()`.

Factories import their controller lazily, so importing this registry stays cheap and one
controller's import error cannot stop the others from being listed.
"""

from __future__ import annotations

from typing import Any, Callable


def _namespace(ctx) -> Any:
    from .namespace.controller import NamespaceController
    return NamespaceController(ctx)


def _garbage_collector(ctx) -> Any:
    from .garbage_collector.controller import GarbageCollector
    return GarbageCollector(ctx)


CONTROLLERS: dict[str, Callable[[Any], Any]] = {
    "namespace": _namespace,
    "garbage-collector": _garbage_collector,
}
