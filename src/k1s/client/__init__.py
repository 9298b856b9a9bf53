"""The client library k1s components use to talk to the API server (never to the store).

- `APIClient` (rest): async Kubernetes REST with watch streams; errors are `ApiError`.
- `Informer`, `SharedInformerFactory` (informer): list+watch caches with indexes and handlers.
- `WorkQueue`, `run_workers`, `ShutDown` (workqueue): de-duplicated, rate-limited keys.
- `LeaderElector` (leader): Lease-based leader election.
- `EventRecorder` (events): aggregated core/v1 Events.
"""

from .errors import ApiError
from .events import EventRecorder
from .informer import Informer, SharedInformerFactory
from .leader import LeaderElector
from .rest import APIClient
from .workqueue import ShutDown, WorkQueue, run_workers

__all__ = ["APIClient", "ApiError", "EventRecorder", "Informer", "LeaderElector",
           "SharedInformerFactory", "ShutDown", "WorkQueue", "run_workers"]
