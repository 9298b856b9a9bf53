"""Pod networking for the node agent: a node network namespace holding bridge k1s0 with the
first address of the node's pod CIDR (bridge.NodeNetwork), one namespace per pod joined to it
by a veth pair (pod.PodNetwork), node namespaces of one machine joined so their pods reach
each other (fabric.Fabric), and sockets made inside those namespaces to reach pods from
the agent's event loop (forward). The root network namespace never routes to pod addresses.
Pod addresses come from pods.AddressPool; `NodeNetwork.pods()` reports the ones already in use
so a restarted agent adopts them."""

from . import forward, links, netns
from .bridge import NodeNetwork
from .fabric import Fabric
from .netns import cleanup_all, in_netns, in_netns_async
from .pod import PodNetwork

__all__ = ["Fabric", "NodeNetwork", "PodNetwork", "cleanup_all", "forward", "in_netns",
           "in_netns_async", "links", "netns"]
