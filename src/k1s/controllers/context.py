"""What every controller is built from: the API client, shared informers, an event recorder.

Controllers never touch the store; they see the cluster through `informers` (shared caches,
one list+watch per resource for the whole process) and change it through `client`. Each
controller records events under its own component name (`statefulset-controller`,
`persistentvolume-controller`, ...) through `recorder_for(name)`; `recorder` is the default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from k1s.client.events import EventRecorder
from k1s.client.informer import SharedInformerFactory
from k1s.client.rest import APIClient


@dataclass
class ControllerContext:
    client: APIClient
    informers: SharedInformerFactory
    recorder: EventRecorder
    _recorders: dict[str, EventRecorder] = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, client: APIClient, component: str = "k1s-controller-manager",
               host: str = "") -> "ControllerContext":
        """A context with a fresh informer factory and a recorder for `component`."""
        return cls(client, SharedInformerFactory(client), EventRecorder(client, component,
                                                                        host=host))

    def recorder_for(self, component: str) -> EventRecorder:
        """An EventRecorder whose events say source.component = component (one per name)."""
        if component == self.recorder.component:
            return self.recorder
        rec = self._recorders.get(component)
        if rec is None:
            rec = EventRecorder(self.client, component, host=self.recorder.host)
            self._recorders[component] = rec
        return rec

    async def close(self) -> None:
        """Stop the informers, flush events. The client is the caller's to close."""
        await self.informers.stop()
        for rec in (self.recorder, *self._recorders.values()):
            await rec.close()
