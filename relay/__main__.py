"""``python -m relay --host H --port P --redis-url URL [--capacity N]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os

from relay.node import serve
from signaling.config import load_secret


def main() -> None:
    """Run one relay node until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m relay", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"))
    parser.add_argument("--capacity", type=int, default=None)
    parser.add_argument("--relay-id", default=None)
    parser.add_argument("--public-url", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    secret = load_secret(None, create=False)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.redis_url, secret, capacity=args.capacity,
                          relay_id=args.relay_id, public_url=args.public_url))


if __name__ == "__main__":
    main()
