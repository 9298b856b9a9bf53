"""Which Services select a pod (pure, with a cache of parsed selectors).

A pod event must requeue only the Services whose selector matches the pod (before or after a
label change), as upstream's GetPodServiceMemberships: the Services of the pod's namespace come
from the informer's namespace index, and each selector is parsed once per Service version.
"""

from __future__ import annotations

from typing import Iterable

from k1s.api.selectors import LabelSelector, selector_from_set

from .pods import key_of, meta, spec, wants_endpoints


class ServiceSelectors:
    def __init__(self):
        # service key -> (the selector map it was parsed from, the parsed selector)
        self._cache: dict[str, tuple[dict, LabelSelector]] = {}

    def selector(self, svc: dict) -> LabelSelector:
        key = key_of(svc)
        raw = spec(svc).get("selector") or {}
        hit = self._cache.get(key)
        if hit is None or hit[0] != raw:
            hit = (dict(raw), selector_from_set(raw))
            self._cache[key] = hit
        return hit[1]

    def forget(self, key: str) -> None:
        self._cache.pop(key, None)

    def selects(self, svc: dict, pod: dict) -> bool:
        return wants_endpoints(svc) and self.selector(svc).matches(meta(pod).get("labels"))

    def services_for(self, pod: dict, services: Iterable[dict]) -> set[str]:
        """Keys of the managed Services among `services` (the pod's namespace) selecting pod."""
        return {key_of(s) for s in services if self.selects(s, pod)}
