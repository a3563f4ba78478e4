"""The signaling package's ``tsunagu`` subcommands: ``up``, ``signaling`` and ``admin``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web

from signaling import backup, lan_cert
from signaling.accounts import STAFF_ROLES, AccountError, Accounts
from signaling.listener import listen
from signaling.media import RelayPool
from signaling.routing import Router, new_op_id
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
from tsunagu.languages import load_catalogue
from tsunagu.runtime import tune_gc
from tsunagu.settings import ConfigError, SignalingSettings, check_test_at
from tsunagu.states import ANSWERED_CALL_STATES, WAITING_CALL_STATES

log = logging.getLogger("tsunagu")
ENDED_BY_ADMIN = "ended_by_admin"


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
    server = await listen(runner, host, port, settings.header_timeout_s, tls)
    base = f"{'https' if tls else 'http'}://{host}:{port}"
    log.info("signaling on %s (pages: /kiosk /console /supervisor)", base)
    if announce:
        print(next_steps_line(base), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        server.close()
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
    p = argparse.ArgumentParser(prog="tsunagu admin",
                                description="accounts, kiosk devices and call records")
    sub = p.add_subparsers(dest="action", required=True)

    def action(name: str, what: str) -> argparse.ArgumentParser:
        a = sub.add_parser(name, help=what)
        add_redis_arguments(a)
        return a

    a = action("add-user", "create a staff account (an existing username is refused)")
    a.add_argument("username")
    a.add_argument("--role", required=True, choices=sorted(STAFF_ROLES))
    a.add_argument("--name", default="")
    a.add_argument("--languages", default="", help="comma-separated codes, e.g. jsl,en")
    a.add_argument("--password-stdin", action="store_true", required=True)
    a = action("update-user", "change a staff account's name, languages or role")
    a.add_argument("username")
    a.add_argument("--role", choices=sorted(STAFF_ROLES))
    a.add_argument("--name")
    a.add_argument("--languages", help="comma-separated codes, e.g. jsl,en")
    a = action("set-password", "a new password; the user's older tokens are refused")
    a.add_argument("username")
    a.add_argument("--password-stdin", action="store_true", required=True)
    for name, what in (("disable-user", "refuse a user's logins and tokens, close sockets"),
                       ("enable-user", "allow a disabled user to log in again")):
        action(name, what).add_argument("username")
    a = action("add-kiosk", "register a counter tablet; prints its device token")
    a.add_argument("kiosk_id")
    a.add_argument("--ward", required=True)
    a.add_argument("--counter", required=True)
    a.add_argument("--rotate", action="store_true",
                   help="the kiosk exists: issue a new token and revoke the old one")
    a.add_argument("--test-at", metavar="HH:MM",
                   help="its daily test call, deployment time zone (default 08:30)")
    a = action("update-kiosk", "change a kiosk's daily test time")
    a.add_argument("kiosk_id")
    a.add_argument("--test-at", metavar="HH:MM", required=True,
                   help="its daily test call, deployment time zone")
    action("revoke-kiosk", "refuse a kiosk's tokens from now on").add_argument("kiosk_id")
    for name in ("list-users", "list-kiosks"):
        action(name, name.replace("-", " ")).add_argument(
            "--json", action="store_true", help="one JSON array on standard output")
    action("end-call", "end a live or queued call (reason ended_by_admin)").add_argument(
        "call_id")
    a = action("export-records", "finished-call records as CSV, by ended date (backup)")
    a.add_argument("--from", dest="first", required=True, type=_day, metavar="YYYY-MM-DD")
    a.add_argument("--to", dest="last", required=True, type=_day, metavar="YYYY-MM-DD",
                   help="inclusive; dates in the deployment's time zone")
    a.add_argument("--out", type=Path, help="write here (default: standard output)")
    action("import-records", "read an export-records CSV back; call ids present are "
           "skipped").add_argument("file", help="the CSV, or - for standard input")
    a = action("make-lan-cert", "a local CA and a server certificate for a LAN trial without "
               "a proxy (tablets allow the camera only over HTTPS)")
    a.add_argument("--host", nargs="+", required=True, metavar="NAME-OR-ADDRESS",
                   help="every name and address the tablets will use to reach this machine")
    a.add_argument("--out", type=Path, default=DEFAULT_DATA_DIR / "tls",
                   help="where the CA (kept and reused) and the certificate go "
                   "(default ./var/tls)")
    a.add_argument("--port", type=int, default=8080, help="the port `tsunagu up` serves on")
    return p


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a YYYY-MM-DD date") from None


async def _records_action(args: argparse.Namespace, settings: SignalingSettings,
                          redis: store.RedisClient) -> str:
    """``export-records`` or ``import-records``; the line for standard error."""
    tz, keys = ZoneInfo(settings.timezone), settings.keys
    if args.action == "export-records":
        if args.last < args.first:
            raise CommandError("--to is before --from")
        catalogue = {lang.code: lang for lang in load_catalogue(settings.languages_file)}
        try:
            out = sys.stdout.buffer if args.out is None else await asyncio.to_thread(
                args.out.open, "wb")
        except OSError as exc:
            raise CommandError(f"cannot write {args.out}: {exc.strerror}") from None
        exported = 0
        try:
            async for piece, count in backup.export_records(
                    redis, keys, first=args.first, last=args.last, tz=tz, catalogue=catalogue):
                await asyncio.to_thread(out.write, piece)
                exported += count
            await asyncio.to_thread(out.flush)
        except OSError as exc:
            raise CommandError(f"cannot write {args.out or 'the output'}: {exc.strerror}"
                               ) from None
        finally:
            if args.out is not None:
                out.close()
        return f"{exported} records exported"
    try:
        raw = await asyncio.to_thread(
            sys.stdin.buffer.read if args.file == "-" else Path(args.file).read_bytes)
        records = backup.parse_csv(raw.decode("utf-8"))
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from None
    except (UnicodeDecodeError, backup.BackupError) as exc:
        raise CommandError(f"{args.file}: {exc}") from None
    added, skipped = await backup.import_records(redis, keys, records)
    return f"{added} records imported, {skipped} already present"


def _codes(raw: str | None) -> list[str] | None:
    return None if raw is None else [x.strip() for x in raw.split(",") if x.strip()]


def _test_at(raw: str | None) -> str | None:
    """A checked ``--test-at`` (HH:MM), or None when not given."""
    if raw is None:
        return None
    try:
        return check_test_at(raw)
    except ConfigError as exc:
        raise AccountError(f"--test-at: {exc}") from None


def _read_password() -> str:
    password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise AccountError("the password must be at least 8 characters")
    return password


def _table(rows: list[dict[str, object]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        print("\t".join(",".join(map(str, v)) if isinstance(v, list) else str(v)
                        for v in row.values()))


async def _end_call(settings: SignalingSettings, redis: store.RedisClient, call_id: str) -> str:
    """End a queued, ringing or live call with reason ``ended_by_admin``."""
    router = Router(redis, settings)
    call = await router.read_call(call_id)
    if not call:
        raise AccountError(f"no call {call_id}")
    state = call.get("state", "")
    if state in WAITING_CALL_STATES:
        out = await router.cancel(call["kiosk"], call_id, reason=ENDED_BY_ADMIN,
                                  op=new_op_id())
    elif state in ANSWERED_CALL_STATES:
        out = await router.hangup("system", "", call_id, reason=ENDED_BY_ADMIN, op=new_op_id())
        if out.ok and out.get("relay"):
            relays = RelayPool(redis, settings, router)
            await relays.start()
            try:
                await relays.close_call(call_id, str(out.get("relay")))
            finally:
                await relays.stop()
    else:
        raise AccountError(f"call {call_id} is already over ({state})")
    if not out.ok:
        raise AccountError(f"call {call_id} could not be ended ({out.err})")
    return f"call {call_id} ended ({ENDED_BY_ADMIN})"


async def _admin_action(args: argparse.Namespace, settings: SignalingSettings,
                        redis: store.RedisClient) -> str | None:
    """Do one admin action; the line for standard error, if any."""
    accounts = Accounts(redis, settings)
    codes = {lang.code for lang in load_catalogue(settings.languages_file)}
    act, who = args.action, getattr(args, "username", "")
    if act in ("export-records", "import-records"):
        return await _records_action(args, settings, redis)
    if act == "add-user":
        password = _read_password()
        await accounts.add_user(who, role=args.role, password=password, name=args.name,
                                languages=_codes(args.languages), catalogue=codes)
        return f"user {who} ({args.role}) added"
    if act == "update-user":
        await accounts.update_user(who, name=args.name, languages=_codes(args.languages),
                                   role=args.role, catalogue=codes)
        return f"user {who} updated"
    if act == "set-password":
        await accounts.set_password(who, _read_password())
        return f"password of {who} set; older tokens refused"
    if act == "disable-user":
        await accounts.disable_user(who)
        return f"user {who} disabled"
    if act == "enable-user":
        await accounts.enable_user(who)
        return f"user {who} enabled (tokens issued before stay refused)"
    if act == "add-kiosk":
        test_at = _test_at(args.test_at)
        print(await accounts.add_kiosk(args.kiosk_id, ward=args.ward, counter=args.counter,
                                       rotate=args.rotate, test_at=test_at))
        return None
    if act == "update-kiosk":
        test_at = _test_at(args.test_at)
        await accounts.update_kiosk(args.kiosk_id, test_at=test_at)
        return f"kiosk {args.kiosk_id}: daily test call at {test_at}"
    if act == "revoke-kiosk":
        if not await accounts.revoke_kiosk(args.kiosk_id):
            raise AccountError(f"no kiosk {args.kiosk_id}")
        return f"kiosk {args.kiosk_id} revoked"
    if act == "list-users":
        _table(await accounts.list_users(), args.json)
        return None
    if act == "list-kiosks":
        _table(await accounts.list_kiosks(), args.json)
        return None
    return await _end_call(settings, redis, args.call_id)


async def _admin(args: argparse.Namespace, settings: SignalingSettings) -> int:
    redis = store.connect(settings.redis_url)
    try:
        try:
            await redis.ping()
        except store.REDIS_ERRORS as exc:
            raise CommandError(f"cannot reach Redis at {_safe_url(settings.redis_url)}: "
                               f"{type(exc).__name__}") from None
        line = await _admin_action(args, settings, redis)
        if line:
            print(line, file=sys.stderr)
        return 0
    except AccountError as exc:
        print(f"tsunagu admin {args.action}: {exc}", file=sys.stderr)
        return 1
    except store.REDIS_ERRORS as exc:
        raise CommandError(f"Redis failed: {type(exc).__name__}") from None
    finally:
        await redis.aclose()


def _safe_url(url: str) -> str:
    """The Redis URL without its password."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


def run_admin(argv: list[str]) -> int:
    """``tsunagu admin ACTION``: staff accounts and kiosk devices. Never starts a Redis."""
    args = _admin_parser().parse_args(argv)
    configure_logging(verbose())
    if args.action == "make-lan-cert":  # no Redis needed
        files = lan_cert.make(args.host, args.out)
        print(lan_cert.instructions(files, args.host, args.port))
        return 0
    try:
        with redis_url_for(args, start=False) as url:
            settings = SignalingSettings.from_env(data_dir=args.data_dir, redis_url=url)
            return asyncio.run(_admin(args, settings))
    except CommandError as exc:
        print(f"tsunagu admin: {exc}", file=sys.stderr)
        return 1


UP = Command("the whole service on this machine (Redis, signaling, a relay, the pages)", run_up)
SIGNALING = Command("one signaling node", run_signaling)
ADMIN = Command("accounts, kiosk devices and call records", run_admin)
