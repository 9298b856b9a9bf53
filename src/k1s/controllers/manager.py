"""The controller manager: every registered controller, sharing one client and one set of
informers, talking to the API over HTTP like any other client (never to the store).

`start_all(url)` builds the context, starts the shared informers and one task per controller;
`Manager.close()` stops the informers and the client after the tasks are cancelled.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


class Manager:
    def __init__(self, ctx, informers, client):
        self.ctx = ctx
        self.informers = informers
        self.client = client

    async def close(self) -> None:
        try:
            await self.informers.stop()
        finally:
            await self.client.close()


async def start_all(url: str, only: list[str] | None = None
                    ) -> tuple[Manager, list[asyncio.Task]]:
    from ..client.events import EventRecorder
    from ..client.informer import SharedInformerFactory
    from ..client.rest import APIClient
    from . import CONTROLLERS
    from .context import ControllerContext

    client = APIClient(url, user_agent="k1s-controller-manager")
    informers = SharedInformerFactory(client)
    ctx = ControllerContext(client, informers, EventRecorder(client, "k1s-controller-manager"))
    controllers = []
    for name, factory in CONTROLLERS.items():
        if only is not None and name not in only:
            continue
        try:
            controllers.append((name, factory(ctx)))
        except Exception:
            # one controller that cannot be built must not take the others down with it
            log.exception("controller %s could not start", name)
    await informers.start()
    tasks = []
    for name, c in controllers:
        tasks.append(asyncio.create_task(_run(name, c), name=f"controller:{name}"))
    return Manager(ctx, informers, client), tasks


async def _run(name: str, controller) -> None:
    # A controller that crashes is restarted after a pause: level-triggered reconcilers
    # converge from whatever state they find.
    while True:
        try:
            await controller.run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("controller %s failed; restarting in 1s", name)
            await asyncio.sleep(1)
