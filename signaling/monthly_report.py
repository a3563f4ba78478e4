"""The month's evaluation report from Redis: records and fleet rollup in, HTML or PDF out.

``GET /api/report`` and ``tsunagu report`` both call :func:`report_html`. The PDF is printed
by WeasyPrint in a child process (``python -m signaling.report_pdf``): it takes seconds of
mostly pure-Python layout, which in a thread would still hold the GIL the event loop needs.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from signaling.evaluation import Month, evaluate
from signaling.fleet_rollup import load_fleet
from signaling.report import finished_calls
from signaling.report_html import render
from tsunagu.languages import Language
from tsunagu.settings import SignalingSettings
from tsunagu.store import RedisClient

PDF_TIMEOUT_S = 120.0


class PdfError(RuntimeError):
    """The PDF could not be printed (the child process failed or took too long)."""


def month_of(text: str, settings: SignalingSettings) -> Month:
    """``YYYY-MM`` with the deployment's zone and targets; ValueError when malformed."""
    return Month.parse(text, tz=ZoneInfo(settings.timezone),
                       service_level_s=settings.service_level_s,
                       goal_pct=settings.service_level_goal_pct, wrapup_s=settings.wrapup_s)


async def report_html(redis: RedisClient, settings: SignalingSettings, month: Month,
                      catalogue: dict[str, Language]) -> str:
    """The report page. Records are read up to a day past the month, for calls that left
    the queue in it and ended after midnight; they count in the month they left the queue."""
    # The records, and the ends no record writer has reached yet (the current month's
    # last minutes): the same calls the CSV lists.
    records = await finished_calls(redis, settings.keys, first=month.first,
                                   last=month.last + timedelta(days=1), tz=month.tz)
    kiosks = await load_fleet(redis, settings.keys, month.days())
    evaluation = evaluate(records, month, {c: lang.modality for c, lang in catalogue.items()})
    generated = datetime.now(month.tz).isoformat(timespec="minutes")
    return render(evaluation, catalogue=catalogue, kiosks=kiosks, generated=generated)


async def pdf_of(html: str, timeout_s: float = PDF_TIMEOUT_S) -> bytes:
    """Print ``html`` to PDF in a child process, off this process's GIL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling.report_pdf", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate(html.encode())
    except TimeoutError:
        raise PdfError(f"printing the PDF took over {timeout_s:g} s") from None
    finally:
        if proc.returncode is None:  # timed out, or the asker went away: stop printing
            proc.kill()
            await proc.wait()
    if proc.returncode != 0 or not out.startswith(b"%PDF"):
        last = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise PdfError(f"printing the PDF failed: {last}")
    return out
