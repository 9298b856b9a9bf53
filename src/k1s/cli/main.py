"""The `k1s` command.

    k1s up [--data-dir DIR] [--port PORT] [--host ADDR] [--kubeconfig FILE] [--no-controllers]

`up` runs the store, the API server and the controllers in one process in the foreground;
Ctrl-C or SIGTERM stops it cleanly (every acknowledged write is on disk). Imports are kept
lazy: the command must answer kubectl within a second of starting.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys


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
    up.add_argument("-v", "--verbose", action="store_true")
    sub.add_parser("version", help="print the k1s version")
    return p


async def _up(args: argparse.Namespace) -> int:
    from ..apiserver.server import APIServer
    from . import kubeconfig

    data_dir = os.path.abspath(args.data_dir)
    # node-side components (volumes) keep their files under the same data directory
    os.environ["K1S_DATA_DIR"] = data_dir
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

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    tasks: list[asyncio.Task] = []
    ctx = None
    if not args.no_controllers:
        from ..controllers.manager import start_all
        ctx, tasks = await start_all(server.url)
    try:
        await stop.wait()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if ctx is not None:
            await ctx.close()
        await server.stop()
    print("k1s stopped", flush=True)
    return 0


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
    if args.command == "up":
        return asyncio.run(_up(args))
    return 2


if __name__ == "__main__":
    sys.exit(main())
