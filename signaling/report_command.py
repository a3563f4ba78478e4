"""``tsunagu report --month YYYY-MM --out FILE``: the month's evaluation report as a file.

Like the admin commands (PROTOCOL.md section 10) it starts no Redis of its own: with no
``--redis-url``/``REDIS_URL`` it uses the data directory's running Redis. Exit 0 on success,
1 with one line on standard error, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from signaling.evaluation import Month
from signaling.monthly_report import month_of, report_html
from signaling.report_html import to_pdf
from tsunagu import store
from tsunagu.cli import Command, CommandError, add_redis_arguments, redis_url_for
from tsunagu.languages import load_catalogue
from tsunagu.settings import ConfigError, SignalingSettings

FORMATS = (".html", ".pdf")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tsunagu report",
                                description="the month's evaluation report (docs/report.md)")
    p.add_argument("--month", required=True, help="YYYY-MM, in the deployment's time zone")
    p.add_argument("--out", type=Path, required=True, help="FILE.html or FILE.pdf")
    add_redis_arguments(p)
    return p


async def _html(settings: SignalingSettings, month: Month) -> str:
    redis = store.connect(settings.redis_url)
    try:
        try:
            await redis.ping()
        except store.REDIS_ERRORS as exc:
            raise CommandError(f"cannot reach Redis: {type(exc).__name__}") from None
        catalogue = {lang.code: lang for lang in load_catalogue(settings.languages_file)}
        try:
            return await report_html(redis, settings, month, catalogue)
        except store.REDIS_ERRORS as exc:
            raise CommandError(f"Redis failed: {type(exc).__name__}") from None
    finally:
        await redis.aclose()


def make_report(args: argparse.Namespace) -> str:
    """Write the report file; the line to say so."""
    suffix = args.out.suffix.lower()
    if suffix not in FORMATS:
        raise CommandError(f"--out must end in .html or .pdf, not {args.out.name!r}")
    with redis_url_for(args, start=False) as url:
        settings = SignalingSettings.from_env(data_dir=args.data_dir, redis_url=url)
        try:
            month = month_of(args.month, settings)
        except ValueError:
            raise CommandError(f"--month must be YYYY-MM, not {args.month!r}") from None
        html = asyncio.run(_html(settings, month))
    body = html.encode() if suffix == ".html" else to_pdf(html)
    try:
        args.out.write_bytes(body)
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    return f"report for {month.label} written to {args.out} ({len(body)} bytes)"


def run_report(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        line = make_report(args)
    except (CommandError, ConfigError) as exc:
        print(f"tsunagu report: {exc}", file=sys.stderr)
        return 1
    print(line, file=sys.stderr)
    return 0


REPORT = Command("the month's evaluation report as HTML or PDF", run_report)
