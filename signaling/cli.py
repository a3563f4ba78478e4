"""``tsunagu``: the operator's one command (PROTOCOL.md section 10)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from signaling import store
from signaling.accounts import STAFF_ROLES, Accounts
from signaling.config import ConfigError, Settings
from signaling.redis_server import RedisServer, RedisServerError
from signaling.runtime import tune_gc

log = logging.getLogger("tsunagu")
DEFAULT_DATA_DIR = Path("var")
PASS_THROUGH = {"kiosk": "kiosk_client.app", "bot": "interpreter_console.bot"}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL"),
                   help="Redis to use (default: REDIS_URL, else the data directory's own)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                   help="where `tsunagu up` keeps its Redis and secret (default ./var)")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tsunagu", description="tsunagu interpretation service")
    root.add_argument("-v", "--verbose", action="store_true")
    sub = root.add_subparsers(dest="command", required=True)
    for name, port, what in (("up", 8080, "the whole service on this machine"),
                             ("signaling", 8080, "one signaling node"),
                             ("relay", 8081, "one media relay node")):
        p = sub.add_parser(name, help=what)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=port)
        _common(p)
        if name in ("up", "relay"):
            p.add_argument("--relay-port", type=int, default=8081) if name == "up" else None
            p.add_argument("--capacity", type=int, default=None, help="calls per relay")
        if name == "up":
            p.add_argument("--no-relay", action="store_true", help="signaling only")
    admin = sub.add_parser("admin", help="accounts and kiosk devices")
    asub = admin.add_subparsers(dest="action", required=True)
    p = asub.add_parser("add-user", help="create or replace a staff account")
    p.add_argument("username")
    p.add_argument("--role", required=True, choices=sorted(STAFF_ROLES))
    p.add_argument("--name", default="")
    p.add_argument("--languages", default="", help="comma-separated codes, e.g. jsl,en")
    p.add_argument("--password-stdin", action="store_true", required=True)
    _common(p)
    p = asub.add_parser("add-kiosk", help="register a counter tablet; prints its device token")
    p.add_argument("kiosk_id")
    p.add_argument("--ward", required=True)
    p.add_argument("--counter", required=True)
    _common(p)
    p = asub.add_parser("revoke-kiosk", help="refuse a kiosk's tokens from now on")
    p.add_argument("kiosk_id")
    _common(p)
    for name, target in PASS_THROUGH.items():
        sub.add_parser(name, help=f"run {target} (`tsunagu {name} --help` for its options)")
    return root


@contextlib.contextmanager
def _own_redis(args: argparse.Namespace) -> Any:
    """The configured Redis URL, or the data directory's own redis-server (started if needed)."""
    if args.redis_url:
        yield args.redis_url, None
        return
    server = RedisServer(args.data_dir, unix_socket=True)
    if server._answers():
        yield server.url, None
        return
    server.start()
    try:
        yield server.url, server
    finally:
        server.stop()


def _settings(args: argparse.Namespace, redis_url: str, *, create_secret: bool) -> Settings:
    return Settings.from_env(data_dir=args.data_dir, create_secret=create_secret,
                             redis_url=redis_url)


async def _serve_signaling(settings: Settings, host: str, port: int) -> None:
    from signaling.server import create_app

    runner = web.AppRunner(create_app(settings), handle_signals=False)
    await runner.setup()
    tune_gc()
    await web.TCPSite(runner, host, port).start()
    log.info("signaling on http://%s:%s (pages: /kiosk /console /supervisor)", host, port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def _until_signal(main: Any) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


@contextlib.contextmanager
def _relay_process(args: argparse.Namespace, redis_url: str, secret: bytes) -> Any:
    if args.no_relay:
        yield None
        return
    cmd = [sys.executable, "-m", "relay", "--host", args.host, "--port", str(args.relay_port),
           "--redis-url", redis_url]
    if args.capacity:
        cmd += ["--capacity", str(args.capacity)]
    env = dict(os.environ, TSUNAGU_SECRET=secret.decode())
    proc = subprocess.Popen(cmd, env=env)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def cmd_up(args: argparse.Namespace) -> int:
    with _own_redis(args) as (url, _server):
        settings = _settings(args, url, create_secret=True)
        with _relay_process(args, url, settings.secret):
            asyncio.run(_until_signal(_serve_signaling(settings, args.host, args.port)))
    log.info("stopped")
    return 0


def cmd_signaling(args: argparse.Namespace) -> int:
    with _own_redis(args) as (url, _server):
        settings = _settings(args, url, create_secret=False)
        asyncio.run(_until_signal(_serve_signaling(settings, args.host, args.port)))
    return 0


def cmd_relay(args: argparse.Namespace) -> int:
    from relay.node import serve

    with _own_redis(args) as (url, _server):
        settings = _settings(args, url, create_secret=False)
        asyncio.run(_until_signal(serve(args.host, args.port, url, settings.secret,
                                        capacity=args.capacity)))
    return 0


async def _admin(args: argparse.Namespace, settings: Settings) -> int:
    redis = store.connect(settings.redis_url)
    accounts = Accounts(redis, settings)
    try:
        if args.action == "add-user":
            password = sys.stdin.readline().rstrip("\n")
            if len(password) < 8:
                print("the password must be at least 8 characters", file=sys.stderr)
                return 2
            langs = [x.strip() for x in args.languages.split(",") if x.strip()]
            await accounts.add_user(args.username, role=args.role, password=password,
                                    name=args.name, languages=langs)
            print(f"user {args.username} ({args.role}) saved", file=sys.stderr)
        elif args.action == "add-kiosk":
            print(await accounts.add_kiosk(args.kiosk_id, ward=args.ward, counter=args.counter))
        elif args.action == "revoke-kiosk":
            if not await accounts.revoke_kiosk(args.kiosk_id):
                print(f"no kiosk {args.kiosk_id}", file=sys.stderr)
                return 1
            print(f"kiosk {args.kiosk_id} revoked", file=sys.stderr)
        return 0
    finally:
        await redis.aclose()


def cmd_admin(args: argparse.Namespace) -> int:
    with _own_redis(args) as (url, _server):
        settings = _settings(args, url, create_secret=True)
        return asyncio.run(_admin(args, settings))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PASS_THROUGH:
        # These programs own their options (and their logging); argparse would eat them.
        module = importlib.import_module(PASS_THROUGH[argv[0]])
        return int(module.main(argv[1:]) or 0)
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers = {"up": cmd_up, "signaling": cmd_signaling, "relay": cmd_relay,
                "admin": cmd_admin}
    try:
        return handlers[args.command](args)
    except (ConfigError, RedisServerError) as exc:
        print(f"tsunagu: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())


