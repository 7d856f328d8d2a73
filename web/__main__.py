"""``python -m web``: run the live web view until SIGTERM / SIGINT; prints a
``ready url=...`` line once it serves (``--port 0`` picks a free port)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import zmq

from engine.client import ClientKeys
from engine.config import ConfigError, load_config
from web.server import Hub, check_bind, serve
from web.sources import Collector, GatewayPools, GatewayView, SettlementBatches


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m web", description="Serve the venue's read-only live web view.")
    parser.add_argument("--config", type=Path, required=True, help="venue TOML (gateway endpoints, server key)")
    parser.add_argument("--gateway-keys", type=Path, required=True, metavar="KEY_SECRET",
                        help="the view's client key file (NAME.key_secret); any configured key, it only queries")
    parser.add_argument("--server-key", type=Path, help="the gateway's public key file (default: from --config)")
    parser.add_argument("--orders", help="gateway orders endpoint (default: from --config)")
    parser.add_argument("--market-data", help="gateway market-data endpoint (default: from --config)")
    parser.add_argument("--settlement-state", type=Path, help="the settlement job's state directory")
    parser.add_argument("--rpc", help="JSON-RPC URL of the chain, to show each batch's gas used")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: loopback)")
    parser.add_argument("--port", type=int, default=8080, help="port to serve on (0: any free port)")
    parser.add_argument("--allow-remote", action="store_true", help="allow a host that is not loopback")
    return parser


async def _run(args, keys: ClientKeys, orders: str, market_data: str) -> int:
    loop = asyncio.get_running_loop()
    hub = Hub()
    server = await serve(hub, args.host, args.port)
    gateway = GatewayView(orders, market_data, keys, GatewayPools())
    collector = Collector(gateway, SettlementBatches(args.settlement_state, args.rpc),
                          lambda document: loop.call_soon_threadsafe(hub.publish, document))
    collector.start()
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    host, port = server.sockets[0].getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"ready url=http://{shown}:{port}/", flush=True)
    try:
        await stopped.wait()
    finally:
        server.close()
        collector.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Check the arguments, then serve until a signal; 1 (with the reason) if it cannot start."""
    args = _parser().parse_args(argv)
    try:
        check_bind(args.host, args.allow_remote)
        if not 0 <= args.port <= 65_535:
            raise ValueError(f"port {args.port} is not 0..65535")
        config = load_config(args.config)
        server_key = args.server_key or config.server_key_file.with_suffix(".key")
        keys = ClientKeys.from_files(args.gateway_keys, server_key)
        orders = args.orders or config.endpoints.orders
        market_data = args.market_data or config.endpoints.market_data
        for name, endpoint in (("--orders", orders), ("--market-data", market_data)):
            if endpoint.endswith(":*"):
                raise ValueError(f"the config binds {endpoint} (any port): give the gateway's endpoint with {name}")
        return asyncio.run(_run(args, keys, orders, market_data))
    except (ValueError, ConfigError, OSError, zmq.ZMQError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
