"""Which Services select a pod (pure, with a cache of parsed selectors).

A pod event must requeue only the Services whose selector matches the pod (before or after a
label change), as upstream's GetPodServiceMemberships: the Services of the pod's namespace come
from the informer's namespace index, and each selector is parsed once per Service version.
"""

from __future__ import annotations

from typing import Iterable

from k1s.api.selectors import LabelSelector, selector_from_set

from .pods import endpoint_relevant, key_of, meta, spec, wants_endpoints


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


class PodEventsQueueServices:
    """The pod handlers both endpoint controllers share: a pod event requeues, after the batch
    period, only the Services selecting the pod (before and after a label change), and only
    when something an endpoint shows changed. Mixed into a controller that has `selectors`
    (ServiceSelectors), `services` (an informer), `queue` and `batch_period`."""

    def _services_of(self, pod: dict) -> set[str]:
        return self.selectors.services_for(pod, self.services.list(meta(pod).get("namespace", "")))

    def _pod_added(self, pod: dict) -> None:
        for key in self._services_of(pod):
            self.queue.add_after(key, self.batch_period)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if endpoint_relevant(old) == endpoint_relevant(new):
            return
        keys = self._services_of(new)
        if (meta(old).get("labels") or {}) != (meta(new).get("labels") or {}):
            keys |= self._services_of(old)
        for key in keys:
            self.queue.add_after(key, self.batch_period)
