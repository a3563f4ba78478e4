"""``tsunagu``: the operator's one command (PROTOCOL.md section 10).

The ground floor knows no subcommand. Each part registers its own under the entry-point
group ``tsunagu.commands`` in ``pyproject.toml`` (the plugin pattern of pytest and flake8),
and this module finds them with :mod:`importlib.metadata`. An entry point names a
:class:`Command`; its module is loaded only when the command is run or listed, and loads
nothing heavy itself (the kiosk must import OpenCV before PyAV, say).

The helpers below (shared flags, the Redis a command talks to, running until a signal) are
what the parts' commands have in common.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from tsunagu.redis_server import RedisServer, RedisServerError
from tsunagu.settings import ConfigError

ENTRY_POINT_GROUP = "tsunagu.commands"
DEFAULT_DATA_DIR = Path("var")
log = logging.getLogger("tsunagu")


@dataclass(frozen=True, slots=True)
class Command:
    """One ``tsunagu`` subcommand: a one-line summary and ``run(argv) -> exit status``."""

    summary: str
    run: Callable[[list[str]], int]


class CommandError(Exception):
    """A command cannot go on; its message is the one line the operator sees."""


def commands() -> dict[str, EntryPoint]:
    """The registered subcommands by name (not loaded)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load(entry: EntryPoint) -> Command:
    """Load one entry point and check it names a :class:`Command`."""
    command = entry.load()
    if not isinstance(command, Command):
        raise TypeError(f"entry point {entry.value} is not a tsunagu.cli.Command")
    return command


def usage(found: dict[str, EntryPoint]) -> str:
    lines = ["usage: tsunagu [-v] COMMAND [ARGS...]", "", "commands:"]
    for name in sorted(found):
        try:
            summary = load(found[name]).summary
        except Exception as exc:  # a broken plugin must not hide the others
            summary = f"(cannot load: {exc})"
        lines.append(f"  {name:<12} {summary}")
    lines += ["", "`tsunagu COMMAND --help` shows a command's options."]
    return "\n".join(lines)


def configure_logging(verbose: bool = False) -> None:
    """Log lines to standard error; the entry point is the only place handlers are set."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tsunagu COMMAND ARGS...``; exit 2 with one line for a configuration error."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = False
    while args and args[0] in ("-v", "--verbose"):
        verbose = True
        args.pop(0)
    found = commands()
    if not args or args[0] in ("-h", "--help"):
        print(usage(found))
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in found:
        print(f"tsunagu: unknown command {name!r}\n\n{usage(found)}", file=sys.stderr)
        return 2
    if verbose:
        os.environ["TSUNAGU_VERBOSE"] = "1"
    try:
        return int(load(found[name]).run(rest) or 0)
    except (ConfigError, RedisServerError, CommandError) as exc:
        print(f"tsunagu: {exc}", file=sys.stderr)
        return 2


# -- helpers the parts' commands share ---------------------------------------------------------

def add_redis_arguments(p: argparse.ArgumentParser) -> None:
    """``--redis-url`` and ``--data-dir``, the same on every command."""
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL"),
                   help="Redis to use (default: REDIS_URL, else the data directory's own)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                   help="where `tsunagu up` keeps its Redis and secret (default ./var)")


def verbose() -> bool:
    """Whether ``tsunagu -v`` asked for debug logging."""
    return os.environ.get("TSUNAGU_VERBOSE") == "1"


@contextlib.contextmanager
def redis_url_for(args: argparse.Namespace, *, start: bool = True) -> Iterator[str]:
    """The configured Redis URL, or the data directory's own redis-server.

    With ``start`` that server is started when it is not running (``tsunagu up``) and stopped
    on the way out; without, a missing server is a :class:`CommandError`."""
    if args.redis_url:
        yield args.redis_url
        return
    server = RedisServer(args.data_dir, unix_socket=True)
    if server.answers():
        yield server.url
        return
    if not start:
        raise CommandError(f"no Redis is running for {args.data_dir.resolve()}: start "
                           "`tsunagu up` there, or give --redis-url / REDIS_URL")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


async def until_signal(main: Awaitable[Any]) -> None:
    """Run ``main`` until it ends or SIGINT/SIGTERM cancels it."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
