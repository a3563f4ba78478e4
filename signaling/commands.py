"""The signaling package's ``tsunagu`` subcommands: ``up``, ``signaling`` and ``admin``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from aiohttp import web

from signaling import lan_cert
from signaling.accounts import STAFF_ROLES, Accounts
from signaling.server import create_app
from tsunagu import store
from tsunagu.cli import (
    DEFAULT_DATA_DIR,
    Command,
    CommandError,
    add_redis_arguments,
    configure_logging,
    redis_url_for,
    until_signal,
    verbose,
)
from tsunagu.runtime import tune_gc
from tsunagu.settings import SignalingSettings

log = logging.getLogger("tsunagu")


def _server_parser(prog: str, what: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=what)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    add_redis_arguments(p)
    return p


def next_steps_line(base: str) -> str:
    """The one line ``tsunagu up`` ends its start-up with: what to do next."""
    return (f"tsunagu is up at {base}. Next: add accounts and tablets in another terminal "
            "(tsunagu admin add-user NAME --role interpreter --languages jsl --password-stdin; "
            "tsunagu admin add-kiosk ID --ward WARD --counter N), then open "
            f"{base}/console, {base}/supervisor and {base}/kiosk#token=<the kiosk's token>")


async def serve_signaling(settings: SignalingSettings, host: str, port: int, *,
                          announce: bool = False, tls: ssl.SSLContext | None = None) -> None:
    """Serve one signaling node (and the web pages) until cancelled; HTTPS and WSS with
    ``tls``."""
    runner = web.AppRunner(create_app(settings), handle_signals=False)
    await runner.setup()
    tune_gc()
    await web.TCPSite(runner, host, port, ssl_context=tls).start()
    base = f"{'https' if tls else 'http'}://{host}:{port}"
    log.info("signaling on %s (pages: /kiosk /console /supervisor)", base)
    if announce:
        print(next_steps_line(base), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def _relay_process(args: argparse.Namespace, redis_url: str, secret: bytes) -> Iterator[None]:
    """The relay of ``tsunagu up``: ``tsunagu relay`` as a child process (its own core). Its
    control API is for the signaling node beside it only, so it stays on loopback plain HTTP
    whatever ``--host`` the pages are served on (its media uses the machine's addresses)."""
    if args.no_relay:
        yield
        return
    cmd = [sys.executable, "-m", "tsunagu", "relay", "--host", "127.0.0.1",
           "--port", str(args.relay_port), "--redis-url", redis_url]
    if args.capacity:
        cmd += ["--capacity", str(args.capacity)]
    env = dict(os.environ, TSUNAGU_SECRET=secret.decode())
    proc = subprocess.Popen(cmd, env=env)
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_up(argv: list[str]) -> int:
    """``tsunagu up``: Redis (its own unless given), a signaling node and a relay."""
    p = _server_parser("tsunagu up", "the whole service on this machine")
    p.add_argument("--relay-port", type=int, default=8081)
    p.add_argument("--capacity", type=int, default=None, help="calls per relay")
    p.add_argument("--no-relay", action="store_true", help="signaling only")
    p.add_argument("--tls-cert", type=Path, help="serve HTTPS and WSS with this certificate "
                   "(PEM, chain included; see `tsunagu admin make-lan-cert`)")
    p.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
    args = p.parse_args(argv)
    configure_logging(verbose())
    tls = tls_context(args.tls_cert, args.tls_key)
    with redis_url_for(args) as url:
        settings = SignalingSettings.from_env(data_dir=args.data_dir, create_secret=True,
                                              redis_url=url)
        with _relay_process(args, url, settings.secret):
            asyncio.run(until_signal(serve_signaling(settings, args.host, args.port,
                                                     announce=True, tls=tls)))
    log.info("stopped")
    return 0


def tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """The server's TLS context for ``--tls-cert``/``--tls-key`` (both or neither)."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise CommandError("--tls-cert and --tls-key go together")
    try:
        return lan_cert.server_context(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise CommandError(f"cannot use {cert} and {key} for TLS: {exc}") from exc


def run_signaling(argv: list[str]) -> int:
    """``tsunagu signaling``: one signaling node."""
    args = _server_parser("tsunagu signaling", "one signaling node").parse_args(argv)
    configure_logging(verbose())
    with redis_url_for(args) as url:
        settings = SignalingSettings.from_env(data_dir=args.data_dir, redis_url=url)
        asyncio.run(until_signal(serve_signaling(settings, args.host, args.port)))
    return 0


def _admin_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tsunagu admin", description="accounts and kiosk devices")
    sub = p.add_subparsers(dest="action", required=True)
    a = sub.add_parser("add-user", help="create or replace a staff account")
    a.add_argument("username")
    a.add_argument("--role", required=True, choices=sorted(STAFF_ROLES))
    a.add_argument("--name", default="")
    a.add_argument("--languages", default="", help="comma-separated codes, e.g. jsl,en")
    a.add_argument("--password-stdin", action="store_true", required=True)
    add_redis_arguments(a)
    a = sub.add_parser("add-kiosk", help="register a counter tablet; prints its device token")
    a.add_argument("kiosk_id")
    a.add_argument("--ward", required=True)
    a.add_argument("--counter", required=True)
    add_redis_arguments(a)
    a = sub.add_parser("revoke-kiosk", help="refuse a kiosk's tokens from now on")
    a.add_argument("kiosk_id")
    add_redis_arguments(a)
    a = sub.add_parser("make-lan-cert", help="a local CA and a server certificate for a LAN "
                       "trial without a proxy (tablets allow the camera only over HTTPS)")
    a.add_argument("--host", nargs="+", required=True, metavar="NAME-OR-ADDRESS",
                   help="every name and address the tablets will use to reach this machine")
    a.add_argument("--out", type=Path, default=DEFAULT_DATA_DIR / "tls",
                   help="where the CA (kept and reused) and the certificate go "
                   "(default ./var/tls)")
    a.add_argument("--port", type=int, default=8080, help="the port `tsunagu up` serves on")
    return p


async def _admin(args: argparse.Namespace, settings: SignalingSettings) -> int:
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


def run_admin(argv: list[str]) -> int:
    """``tsunagu admin ACTION``: staff accounts and kiosk devices."""
    args = _admin_parser().parse_args(argv)
    configure_logging(verbose())
    if args.action == "make-lan-cert":  # no Redis needed
        files = lan_cert.make(args.host, args.out)
        print(lan_cert.instructions(files, args.host, args.port))
        return 0
    with redis_url_for(args) as url:
        settings = SignalingSettings.from_env(data_dir=args.data_dir, create_secret=True,
                                              redis_url=url)
        return asyncio.run(_admin(args, settings))


UP = Command("the whole service on this machine (Redis, signaling, a relay, the pages)", run_up)
SIGNALING = Command("one signaling node", run_signaling)
ADMIN = Command("accounts and kiosk devices", run_admin)
