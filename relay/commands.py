"""The relay's ``tsunagu`` subcommand; ``python -m relay`` is the same command."""

from __future__ import annotations

import argparse
import asyncio

from tsunagu.cli import (
    Command,
    add_redis_arguments,
    configure_logging,
    redis_url_for,
    until_signal,
    verbose,
)
from tsunagu.settings import RelaySettings, add_relay_arguments


def parser() -> argparse.ArgumentParser:
    """One parser for every way a relay is started."""
    p = argparse.ArgumentParser(prog="tsunagu relay", description="one media relay node")
    add_relay_arguments(p)
    add_redis_arguments(p)
    return p


def run(argv: list[str]) -> int:
    """Parse the relay's flags and serve until SIGINT or SIGTERM."""
    args = parser().parse_args(argv)
    configure_logging(verbose())
    from relay.server import serve  # aiortc loads only once the flags are good

    with redis_url_for(args, start=False) as url:
        settings = RelaySettings.from_args(args, url, args.data_dir)
        asyncio.run(until_signal(serve(settings)))
    return 0


RELAY = Command("one media relay node", run)
