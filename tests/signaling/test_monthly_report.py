"""The monthly report over real Redis and real sockets: ``GET /api/report`` (HTML and PDF, who
may read it, bad input, Redis down), ``tsunagu report``, and the fleet rollup. The PDF's
pages go to test-artifacts/screenshots/report-page-N.png (look at them)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Awaitable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from bench import synthetic_month as synth
from signaling.evaluation import Month, evaluate
from signaling.fleet_rollup import KioskMonth, add_availability, add_test_result, load_fleet
from signaling.ledger import CallRecord
from signaling.monthly_report import PdfError, pdf_of
from signaling.report_html import render, to_pdf
from tests.signaling.test_server import make_settings
from tests.support.stack import running
from tsunagu.languages import DEFAULT_CATALOGUE
from tsunagu.redis_keys import Keys
from tsunagu.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TSUNAGU_TEST_ARTIFACTS", ROOT / "test-artifacts"))
SCREENSHOTS = ARTIFACTS / "screenshots"
MONTH = Month.parse("2026-10", tz=synth.TZ)
CATALOGUE = {lang.code: lang for lang in DEFAULT_CATALOGUE}


def expected_totals(records: list[Any]) -> dict[str, str]:
    """Counted by hand: every real generated call leaves the queue in October."""
    real = [r for r in records if r.language != "test"]
    return {"offered": str(len(real)),
            **{k: str(sum(1 for r in real if r.outcome == k))
               for k in ("answered", "abandoned", "failed")}}


def totals_of(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-total="(\w+)">(\d+)<', html))


async def max_loop_lag(during: Awaitable[Any]) -> tuple[Any, float]:
    """Await ``during`` while a ticker measures how late this event loop wakes it."""
    lag = 0.0
    done = False

    async def tick() -> None:
        nonlocal lag
        while not done:
            start = time.monotonic()
            await asyncio.sleep(0.01)
            lag = max(lag, time.monotonic() - start - 0.01)
    ticker = asyncio.ensure_future(tick())
    try:
        result = await during
    finally:
        done = True
        await ticker
    return result, lag


async def test_the_report_over_http_as_html_and_pdf(redis_server: RedisServer,
                                                     redis: aioredis.Redis) -> None:
    records = await synth.write_month(redis, Keys(), MONTH)
    async with running(make_settings(redis_server)) as stack:
        token = await stack.add_staff("sue", "supervisor")
        url = stack.nodes[0].base_url + "/api/report?month=2026-10"
        auth = {"Authorization": "Bearer " + token}
        async with aiohttp.ClientSession(headers=auth) as http:
            async with http.get(url) as r:
                assert r.status == 200 and r.content_type == "text/html"
                assert r.headers["Content-Security-Policy"].startswith("default-src 'none';")
                html = await r.text()

            async def pdf() -> bytes:
                async with http.get(url + "&format=pdf") as r:
                    assert r.status == 200 and r.content_type == "application/pdf"
                    return await r.read()
            body, lag = await max_loop_lag(pdf())
    assert totals_of(html) == expected_totals(records)
    # the fleet rollup: 南区's kiosk missed some mornings and tests (counted by hand)
    days = [d for d in synth.fleet_days(MONTH) if d[1].ward == "南区"]
    up = sum(d[3] for d in days)
    passed = sum(1 for d in days if d[4])
    assert f"{100 * up / sum(d[2] for d in days):.1f} %" in html
    assert f"<td>{len(days)}</td><td>{passed}</td>" in html and passed < len(days)
    # the node's event loop (this test's) kept running while the PDF was printed: about
    # 0.05 s with the child process, 7.7 s when printed on the loop (docs/report.md); a busy
    # 2-core machine has been seen to stall it 0.73 s, so the bound is 2 s
    assert lag < 2.0, f"the event loop stalled {lag:.2f} s during the PDF"
    assert body.startswith(b"%PDF")
    pages = await asyncio.to_thread(check_pdf, body)
    assert pages >= 4


def check_pdf(body: bytes) -> int:
    """A4 pages, Japanese fonts embedded, the Japanese text there; pages as PNG for a look."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS.parent / "report-2026-10.pdf"
    path.write_bytes(body)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    assert re.search(r"Page size:\s+595\.2\d* x 841\.89 pts \(A4\)", info.stdout), info.stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info.stdout).group(1))  # type: ignore[union-attr]
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True,
                           check=True).stdout
    # every glyph came from Noto Sans CJK JP, embedded: no fallback font, no tofu
    names = [line.split()[0] for line in fonts.splitlines()[2:]]
    assert names and all(re.fullmatch(r"[A-Z]{6}\+Noto-Sans-CJK-JP(-Bold)?", n) for n in names)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "月次評価報告" in text and "平等なアクセス" in text and "Erlang C" in text
    for old in SCREENSHOTS.glob("report-page-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", "80", "-png", str(path),
                    str(SCREENSHOTS / "report-page")], check=True, timeout=120)
    assert len(list(SCREENSHOTS.glob("report-page-*.png"))) == pages
    return pages


async def test_who_may_read_the_report_and_bad_requests(redis_server: RedisServer,
                                                         redis: aioredis.Redis) -> None:
    async with running(make_settings(redis_server)) as stack:
        base = stack.nodes[0].base_url + "/api/report"
        admin = await stack.add_staff("ann", "admin")
        interp = await stack.add_interpreter("ivan", ["en"])
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "?month=2026-10") as r:
                assert r.status == 401
            async with http.get(base + "?month=2026-10",
                                headers={"Authorization": "Bearer " + interp}) as r:
                assert r.status == 403
            auth = {"Authorization": "Bearer " + admin}
            for query in ("", "?month=2026-13", "?month=26-10", "?month=2026-10&format=doc"):
                async with http.get(base + query, headers=auth) as r:
                    assert r.status == 400, query
            async with http.get(base + "?month=2027-01", headers=auth) as r:
                assert r.status == 200
                html = await r.text()
    assert totals_of(html) == {"offered": "0", "answered": "0", "abandoned": "0",
                               "failed": "0"}
    assert "データなし / no data" in html


async def test_redis_down_is_a_plain_503(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", persist=False)
    server.start()
    try:
        settings = make_settings(server)
        async with running(settings) as stack:
            token = await stack.add_staff("sue", "supervisor")
            server.stop()
            async with aiohttp.ClientSession() as http, http.get(
                    stack.nodes[0].base_url + "/api/report?month=2026-10",
                    headers={"Authorization": "Bearer " + token}) as r:
                assert r.status == 503
                text = await r.text()
    finally:
        server.stop()
    assert "unavailable" in text and "Traceback" not in text


def run_report(*args: str, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
    """``tsunagu report ARGS`` (its registered command object, as the ``tsunagu`` entry point
    runs it; the shared venv's entry points are those of the main checkout)."""
    code = ("import sys; from signaling.report_command import REPORT; "
            "sys.exit(REPORT.run(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=180, env={**os.environ, **(env or {})})


async def test_the_report_command(redis_server: RedisServer, redis: aioredis.Redis,
                                  tmp_path: Path) -> None:
    records = await synth.write_month(redis, Keys(), MONTH)
    out = tmp_path / "october.html"
    done = await asyncio.to_thread(run_report, "--month", "2026-10", "--out", str(out),
                                   "--redis-url", redis_server.url)
    assert done.returncode == 0, done.stderr
    assert totals_of(out.read_text()) == expected_totals(records)
    pdf = tmp_path / "october.pdf"
    done = await asyncio.to_thread(run_report, "--month", "2026-10", "--out", str(pdf),
                                   env={"REDIS_URL": redis_server.url})
    assert done.returncode == 0, done.stderr
    assert pdf.read_bytes().startswith(b"%PDF")
    unused = f"redis://127.0.0.1:{free_port()}/0"
    for args, says in (
            (["--month", "2026-13", "--out", str(out), "--redis-url", redis_server.url],
             "--month must be YYYY-MM"),
            (["--month", "2026-10", "--out", str(tmp_path / "r.docx"), "--redis-url",
              redis_server.url], "--out must end in .html or .pdf"),
            (["--month", "2026-10", "--out", str(tmp_path / "no" / "r.html"),
              "--redis-url", redis_server.url], "cannot write"),
            (["--month", "2026-10", "--out", str(out), "--redis-url", unused],
             "cannot reach Redis"),
            (["--month", "2026-10", "--out", str(out), "--data-dir", str(tmp_path / "none")],
             "no Redis is running")):
        done = await asyncio.to_thread(run_report, *args, env={"REDIS_URL": ""})
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1, done.stderr
        assert lines[0].startswith("tsunagu report: ") and says in lines[0], lines


def test_the_report_command_is_registered() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    commands = project["project"]["entry-points"]["tsunagu.commands"]
    assert commands["report"] == "signaling.report_command:REPORT"
    assert any(d.startswith("weasyprint") for d in project["project"]["dependencies"])


async def test_the_fleet_rollup_sums_a_months_days(redis: aioredis.Redis) -> None:
    keys = Keys()
    await redis.hset(keys.kiosk("k|1"), mapping={"ward": "北区", "counter": "2"})
    for day in (date(2026, 10, 1), date(2026, 10, 2)):
        await add_availability(redis, keys, day, "k|1", open_s=31_500, up_s=30_000)
        await add_test_result(redis, keys, day, "k|1", passed=day.day == 1)
    await add_availability(redis, keys, date(2026, 11, 2), "k|1", open_s=99, up_s=0)
    (k,) = await load_fleet(redis, keys, MONTH.days())
    assert (k.kiosk, k.ward, k.counter, k.open_s, k.up_s, k.tests, k.passed) == (
        "k|1", "北区", "2", 63_000, 60_000, 2, 1)
    assert k.availability_pct == 95.2 and k.pass_rate_pct == 50.0
    assert await load_fleet(redis, keys, [date(2026, 9, 1)]) == []



async def test_a_pdf_that_takes_too_long_is_stopped() -> None:
    with pytest.raises(PdfError, match="took over"):
        await pdf_of("<p>長い / long</p>", timeout_s=0.05)
    assert (await pdf_of("<p>短い / short</p>")).startswith(b"%PDF")


def test_long_operator_names_stay_on_the_a4_page(tmp_path: Path) -> None:
    """Ward, counter and procedure names are the operators': one long word must wrap, not run
    off the page (pdftotext drops what falls outside it, so every word is checked in the
    page's text block)."""
    wards = ["東京都千代田区役所本庁舎三階総合窓口センター", "Ward-" + "A" * 70 + "-END"]
    procedure = "proc-" + "x" * 90 + "-END"
    records = []
    for n in range(40):
        at = int(datetime(2026, 10, 1 + n % 20, 9 + n % 8, tzinfo=synth.TZ).timestamp() * 1000)
        code = ("jsl", "en", "zh", "vi", "ko", "pt", "es", "tl", "ne")[n % 9]
        records.append(CallRecord(f"c{n}", language=code, ward=wards[n % 2], counter=str(n),
                                  procedure=procedure, enqueued_ms=at, exit_ms=at + 5000,
                                  answered_ms=at + 5000, exit_outcome="answered",
                                  outcome="answered", ended_ms=at + 65_000, talk_ms=60_000,
                                  interpreter="i", rating=5))
    kiosks = [KioskMonth("kiosk-" + "z" * 80 + "-END", 100, 90, 2, 1, wards[1], "窓口12番")]
    evaluation = evaluate(records, MONTH, {c: lang.modality for c, lang in CATALOGUE.items()})
    path = tmp_path / "long.pdf"
    path.write_bytes(to_pdf(render(evaluation, catalogue=CATALOGUE, kiosks=kiosks,
                                   generated="now")))
    words = re.findall(r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)"[^>]*>([^<]*)<',
                       subprocess.run(["pdftotext", "-bbox", str(path), "-"], check=True,
                                      capture_output=True, text=True).stdout)
    right = 595.28 - 14 / 25.4 * 72  # the A4 page less its 14 mm margin, in points
    assert words and max(float(x_max) for _, x_max, _ in words) <= right + 0.5
    assert sum(1 for *_, w in words if w.endswith("-END")) >= 3  # ward, procedure, kiosk
