"""The supervisor downloads the monthly evaluation report from the supervisor page."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from playwright.sync_api import expect

from bench import synthetic_month as synth
from signaling.evaluation import Month
from tsunagu.redis_keys import Keys

pytestmark = [pytest.mark.browser]


async def _write_month(url: str) -> list[object]:
    redis = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        return list(await synth.write_month(redis, Keys(), Month.parse("2026-10", tz=synth.TZ)))
    finally:
        await redis.aclose()


def test_the_supervisor_downloads_the_months_report(pages, stack, shot) -> None:
    # Playwright's sync API runs a loop in this thread: write from another
    with ThreadPoolExecutor(1) as pool:
        records = pool.submit(asyncio.run, _write_month(stack.redis_url)).result()
    offered = sum(1 for r in records if r.language != "test")  # type: ignore[attr-defined]
    sup = pages.supervisor()
    form = sup.locator("#report")
    # last month is filled in; the city's month is typed over it
    expect(form.locator("input[name=month]")).to_have_value(re.compile(r"^\d{4}-\d{2}$"))
    form.locator("input[name=month]").fill("2026-10")
    with sup.expect_download(timeout=120_000) as info:
        sup.click("[data-action=download-report-html]")
    html = Path(info.value.path()).read_text(encoding="utf-8")
    assert info.value.suggested_filename == "tsunagu-report-2026-10.html"
    assert f'data-total="offered">{offered}<' in html
    with sup.expect_download(timeout=120_000) as info:
        sup.click("[data-action=download-report-pdf]")
    assert info.value.suggested_filename == "tsunagu-report-2026-10.pdf"
    assert Path(info.value.path()).read_bytes().startswith(b"%PDF")
    expect(sup.locator("#report-status")).to_contain_text("ダウンロードしました")
    shot(sup, "supervisor-report-downloaded")
