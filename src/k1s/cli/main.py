"""The `k1s` command.

    k1s up [--data-dir DIR] [--port PORT] [--host ADDR] [--kubeconfig FILE] [--no-controllers]
           [--simulated-nodes N [--simulated-pod-delay S] [--simulated-delete-cap S]
            [--simulated-allocatable cpu=32,memory=256Gi,pods=110]]
    k1s simulate-nodes N (--kubeconfig FILE | --server URL) [--prefix P] [--first-index I] ...
    k1s node (--kubeconfig FILE | --server URL) [--data-dir DIR] [--name N] [--pod-cidr CIDR]

`up` runs the store, the API server and the controllers in one process in the foreground;
Ctrl-C or SIGTERM stops it cleanly (every acknowledged write is on disk). Imports are kept
lazy: the command must answer kubectl within a second of starting. With `--simulated-nodes N`
it registers N simulated nodes (k1s.node.simulated) instead of this machine's node: pods must
not land on a node that runs nothing. `simulate-nodes` runs simulated nodes alone against an
existing API server; `node` runs this machine's node agent alone (k1s.node.agent) against
one, e.g. a second machine's node.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys

GC_THRESHOLD0 = 50_000     # young-generation size of the long-running commands (see main)


def _default_data_dir() -> str:
    return os.environ.get("K1S_DATA_DIR") or os.path.join(os.path.expanduser("~"), ".k1s")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="k1s", description="A Kubernetes-compatible control plane "
                                "for stateful workloads.")
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run a single-machine cluster in the foreground")
    up.add_argument("--data-dir", default=_default_data_dir(),
                    help="where the cluster keeps its state (default: %(default)s)")
    up.add_argument("--host", default="127.0.0.1",
                    help="address to serve the API on (default: loopback only)")
    up.add_argument("--port", type=int, default=6443,
                    help="API port; 0 picks a free one (default: %(default)s)")
    up.add_argument("--kubeconfig", default=None,
                    help="write the kubeconfig here and leave ~/.kube/config alone")
    up.add_argument("--no-controllers", action="store_true",
                    help="serve the API only (no controllers)")
    up.add_argument("--no-default-storage-class", action="store_true",
                    help="do not create the default StorageClass \"standard\"")
    up.add_argument("--dns-port", type=_non_negative_int, default=0, metavar="PORT",
                    help="cluster DNS port on --host, UDP and TCP (default: 0, a free one; "
                    "the log says which)")
    _simulation_flags(up, "simulated-")
    up.add_argument("-v", "--verbose", action="store_true")
    sim = sub.add_parser("simulate-nodes", help="run simulated nodes against an existing API "
                         "server (pods go Running without running anything)")
    sim.add_argument("count", type=_non_negative_int, metavar="N", help="how many nodes")
    where = sim.add_mutually_exclusive_group(required=True)
    where.add_argument("--kubeconfig", help="kubeconfig of the cluster (its current context)")
    where.add_argument("--server", help="API server URL (no authentication)")
    sim.add_argument("--prefix", default="k1s-sim-",
                     help="node name prefix (default: %(default)s)")
    sim.add_argument("--data-dir", default=_default_data_dir(),
                     help="where the nodes' provisioned volumes live (default: %(default)s)")
    sim.add_argument("--first-index", type=_non_negative_int, default=0,
                     help="number of the first node, for several simulators on one cluster "
                     "(default: %(default)s)")
    _simulation_flags(sim, "")
    sim.add_argument("-v", "--verbose", action="store_true")
    node = sub.add_parser("node", help="run this machine's node agent against an existing API "
                          "server (k1s up runs one in-process)")
    where = node.add_mutually_exclusive_group(required=True)
    where.add_argument("--kubeconfig", help="kubeconfig of the cluster (its current context)")
    where.add_argument("--server", help="API server URL (no authentication)")
    node.add_argument("--data-dir", default=_default_data_dir(),
                      help="where the node keeps pods, logs and volumes (default: %(default)s)")
    node.add_argument("--name", default=None,
                      help="node name (default: $K1S_NODE_NAME, else the short hostname)")
    node.add_argument("--pod-cidr", default=None,
                      help="pod address range of a new Node (default: 10.244.0.0/24; a Node "
                      "that exists keeps its own)")
    node.add_argument("-v", "--verbose", action="store_true")
    sub.add_parser("version", help="print the k1s version")
    return p


def _non_negative_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: expected an integer")
    if n < 0:
        raise argparse.ArgumentTypeError(f"invalid count {n}: must be 0 or more")
    return n


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: expected seconds")
    if v < 0 or v != v:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: must be 0 or more")
    return v


def _allocatable(text: str) -> dict[str, str]:
    """cpu=32,memory=256Gi,pods=110 -> {name: quantity}, each checked as a Quantity."""
    from ..api import quantity
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not quantity.is_valid(value.strip()):
            raise argparse.ArgumentTypeError(
                f"invalid allocatable {part!r}: expected NAME=QUANTITY, e.g. memory=256Gi")
        out[name.strip()] = value.strip()
    return out


def _simulation_flags(p: argparse.ArgumentParser, prefix: str) -> None:
    from_up = bool(prefix)
    if from_up:
        p.add_argument("--simulated-nodes", type=_non_negative_int, default=0, metavar="N",
                       help="register N simulated nodes k1s-sim-0... whose pods go Running "
                       "without running anything (kwok-like), instead of this machine's node")
    p.add_argument(f"--{prefix}pod-delay", type=_seconds, default=0.1, metavar="SECONDS",
                   help="time a simulated pod spends in ContainerCreating (default: "
                   "%(default)s; 0 allowed)")
    p.add_argument(f"--{prefix}delete-cap", type=_seconds, default=1.0, metavar="SECONDS",
                   help="longest a simulated node waits out a pod's deletion grace period "
                   "before finishing the delete (default: %(default)s)")
    p.add_argument(f"--{prefix}allocatable", type=_allocatable, default={},
                   metavar="cpu=32,memory=256Gi,pods=110",
                   help="capacity and allocatable of each simulated node (default: like a "
                   "kwok node, cpu=32,memory=256Gi,pods=110)")


async def _up(args: argparse.Namespace) -> int:
    from ..apiserver.server import APIServer
    from . import kubeconfig

    data_dir = os.path.abspath(args.data_dir)
    # node-side components (volumes) keep their files under the same data directory
    os.environ["K1S_DATA_DIR"] = data_dir
    # where the cluster DNS listens (read by k1s.dns.server.controller)
    os.environ["K1S_DNS_HOST"] = args.host
    os.environ["K1S_DNS_PORT"] = str(args.dns_port)
    server = APIServer(data_dir, host=args.host, port=args.port,
                       default_storage_class=not args.no_default_storage_class)
    try:
        await server.start()
    except OSError as e:
        print(f"k1s: cannot serve on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        await server.stop()
        return 1
    if args.kubeconfig:
        kubeconfig.write(args.kubeconfig, server.url)
        where = f"wrote kubeconfig {args.kubeconfig}"
    else:
        path = kubeconfig.default_path()
        kubeconfig.merge(path, server.url)
        where = f"merged context \"k1s\" into {path} and made it current"
    print(f"k1s is up: API at {server.url} ({where})", flush=True)
    # the components below reach this server's API in-process (same handlers, no socket)
    from ..client import local as local_transport
    local_transport.register(server.url, server.handlers.dispatch)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    tasks: list[asyncio.Task] = []
    ctx = None
    if not args.no_controllers:
        from ..controllers import CONTROLLERS
        from ..controllers.manager import start_all
        only = None
        if args.simulated_nodes:
            # pods must not land on a node that runs nothing: this machine is not registered
            only = [n for n in CONTROLLERS if n != "node"]
        ctx, tasks = await start_all(server.url, only)
        if args.simulated_nodes:
            from ..node.simulated import SimulatedNodes
            sim = SimulatedNodes(ctx.ctx, args.simulated_nodes,
                                 allocatable=args.simulated_allocatable,
                                 pod_delay=args.simulated_pod_delay,
                                 delete_cap=args.simulated_delete_cap)
            tasks.append(asyncio.create_task(sim.run(), name="simulated-nodes"))
    elif args.simulated_nodes:
        print("k1s: --simulated-nodes needs the controllers (drop --no-controllers)",
              file=sys.stderr)
    try:
        await stop.wait()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if ctx is not None:
            await ctx.close()
        local_transport.unregister(server.url)
        await server.stop()
    print("k1s stopped", flush=True)
    return 0


async def _run_component(args: argparse.Namespace, user_agent: str, what: str, make) -> int:
    """Run one node-side component against an existing API server until SIGINT/SIGTERM:
    `make(ctx)` returns (object with async run(), the line to print once started)."""
    from ..client.rest import APIClient
    from ..controllers.context import ControllerContext

    if args.kubeconfig:
        try:
            client = APIClient.from_kubeconfig(args.kubeconfig, user_agent=user_agent)
        except (OSError, KeyError, ValueError) as e:
            print(f"k1s: cannot use kubeconfig {args.kubeconfig}: {e}", file=sys.stderr)
            return 1
    else:
        client = APIClient(args.server.rstrip("/"), user_agent=user_agent)
    ctx = ControllerContext.create(client, "kubelet")
    component, started = make(ctx)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(component.run())
    print(started, flush=True)
    waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (task, waiter):
            t.cancel()
        await asyncio.gather(task, waiter, return_exceptions=True)
        await ctx.close()
        await client.close()
    if task.done() and not task.cancelled() and task.exception() is not None:
        print(f"k1s: {what} failed: {task.exception()}", file=sys.stderr)
        return 1
    return 0


async def _simulate(args: argparse.Namespace) -> int:
    from ..node.simulated import SimulatedNodes

    def make(ctx):
        sim = SimulatedNodes(ctx, args.count, prefix=args.prefix, first_index=args.first_index,
                             allocatable=args.allocatable, pod_delay=args.pod_delay,
                             delete_cap=args.delete_cap, data_dir=os.path.abspath(args.data_dir))
        return sim, (f"k1s: simulating {args.count} node(s) {sim.names[0] if sim.names else ''}"
                     f"{'...' if len(sim.names) > 1 else ''}")
    return await _run_component(args, "k1s-simulated-nodes", "simulated nodes", make)


async def _node(args: argparse.Namespace) -> int:
    from ..node.agent import NodeAgent

    def make(ctx):
        agent = NodeAgent(ctx, name=args.name, data_dir=os.path.abspath(args.data_dir),
                          pod_cidr=args.pod_cidr)
        return agent, f"k1s: node {agent.name} starting"
    return await _run_component(args, "k1s-node", "node", make)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "version":
        from .. import __version__
        print(f"k1s {__version__} (Kubernetes API v1.32)")
        return 0
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    # A server's heap is mostly long-lived caches of acyclic JSON objects. With the default
    # thresholds (700, 10, 10) a busy `k1s up` ran full collections every few seconds, each
    # scanning the whole heap: 50-250 ms pauses measured during bench_pod_start, every pod and
    # request waiting meanwhile. A larger young generation makes them rare (measured: none
    # above 30 ms); cycles are still collected.
    gc.set_threshold(GC_THRESHOLD0, 20, 10)
    if args.command == "up":
        return asyncio.run(_up(args))
    if args.command == "simulate-nodes":
        return asyncio.run(_simulate(args))
    if args.command == "node":
        return asyncio.run(_node(args))
    return 2


if __name__ == "__main__":
    sys.exit(main())
