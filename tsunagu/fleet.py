"""The tablet fleet: a kiosk's health report checked, and each kiosk rated green, amber or red
with plain reasons (PROTOCOL.md section 14, docs/fleet.md).

Pure: no I/O, no event loop. ``signaling.fleet`` reads the facts from Redis and hands them in.

- ``green``: online, camera and microphone ``ok``, its last test (if any) passed, its token
  valid for more than 30 days.
- ``red``: offline during its ward's opening hours, camera or microphone ``missing`` or
  ``denied``, or its last test failed.
- ``amber``: anything else (``dark``, ``no_face``, ``unknown``, no report yet, offline
  outside opening hours, token expiring within 30 days). Never having been tested is not
  a reason.

Every reason is one line, Japanese then English: ``カメラが暗すぎます / camera too dark``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

DEVICE_STATES = ("ok", "missing", "denied", "dark", "no_face", "unknown")
CAMERA_STATES = frozenset(DEVICE_STATES)
MICROPHONE_STATES = frozenset(DEVICE_STATES) - {"no_face"}
APP_KINDS = frozenset({"web", "python"})
STATUSES = ("red", "amber", "green")  # worst first: the fleet page's order
TOKEN_WARN_DAYS = 30
DAY_MS = 86_400_000
MAX_TEXT = 200  # version, browser name: longer strings are cut, never refused

RED_DEVICE = frozenset({"missing", "denied"})

_DEVICE_REASONS: dict[tuple[str, str], tuple[str, str]] = {
    ("camera", "missing"): ("カメラが見つかりません", "camera missing"),
    ("camera", "denied"): ("カメラの使用が許可されていません", "camera access denied"),
    ("camera", "dark"): ("カメラが暗すぎます", "camera too dark"),
    ("camera", "no_face"): ("カメラに顔が映っていません", "no face in the camera picture"),
    ("camera", "unknown"): ("カメラの状態がわかりません", "camera state unknown"),
    ("microphone", "missing"): ("マイクが見つかりません", "microphone missing"),
    ("microphone", "denied"): ("マイクの使用が許可されていません", "microphone access denied"),
    ("microphone", "dark"): ("マイクの状態がわかりません", "microphone state unknown"),
    ("microphone", "unknown"): ("マイクの状態がわかりません", "microphone state unknown"),
}

# What a test call's ``reason`` code means, in words (other codes are shown as words too).
_TEST_REASONS: dict[str, tuple[str, str]] = {
    "no_video_from_kiosk": ("タブレットからの映像が届きません", "no video from the tablet"),
    "no_video_from_tablet": ("タブレットからの映像が届きません", "no video from the tablet"),
    "no_video_out": ("タブレットからの映像が届きません", "no video from the tablet"),
    "no_video_in": ("タブレットに映像が届きません", "no video to the tablet"),
    "no_video_to_kiosk": ("タブレットに映像が届きません", "no video to the tablet"),
    "no_video": ("映像が届きません", "no video"),
    "no_audio_from_kiosk": ("タブレットからの音声が届きません", "no sound from the tablet"),
    "no_audio_in": ("タブレットに音声が届きません", "no sound to the tablet"),
    "no_audio": ("音声が届きません", "no sound"),
    "no_answer": ("応答がありません", "the test bot did not answer"),
    "no_bot": ("テスト応答ボットがいません", "no test bot signed in"),
    "timeout": ("時間内に終わりませんでした", "timed out"),
    "media_failed": ("映像・音声がつながりません", "media did not connect"),
    "no_media": ("映像・音声がつながりません", "media did not connect"),
}


# The plain sentences the test-call side writes as ``reason`` (joined with "; "), in Japanese.
_TEST_SENTENCES: dict[str, str] = {
    "no video from the bot": "テスト応答ボットからの映像が届きません",
    "no sound from the bot": "テスト応答ボットからの音声が届きません",
    "no video from the tablet": "タブレットからの映像が届きません",
    "no sound from the tablet": "タブレットからの音声が届きません",
    "no answering bot is signed in": "テスト応答ボットがサインインしていません",
    "the answering bot did not answer in time": "テスト応答ボットが時間内に応答しませんでした",
    "the connection to the answering bot was lost": "テスト応答ボットとの接続が切れました",
    "the answering bot did not say what it received":
        "テスト応答ボットが受信結果を報告しませんでした",
    "the media connection did not come up": "映像・音声の接続ができませんでした",
    "the tablet did not report its test call": "タブレットがテスト結果を報告しませんでした",
    "the last try was never reported": "最後のテストの結果が届きませんでした",
}


class HealthError(ValueError):
    """A ``kiosk.health`` report that breaks section 14 (answered ``bad_request``)."""


def _num(value: Any, name: str, lo: float, hi: float) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise HealthError(f"{name} must be a number from {lo:g} to {hi:g}")
    return value


def _object(value: Any, name: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise HealthError(f"{name} must be an object {{{', '.join(keys)}}}")
    missing = [k for k in keys if value.get(k) is None]
    if missing:
        raise HealthError(f"{name} lacks {', '.join(missing)}")
    return value


def check_health(data: Mapping[str, Any]) -> dict[str, Any]:
    """The report of a ``kiosk.health`` message (its fields without ``type``/``rid``) as it is
    stored: only the fields of section 14, checked; HealthError names the first wrong one."""
    camera, microphone = data.get("camera"), data.get("microphone")
    if not isinstance(camera, str) or camera not in CAMERA_STATES:
        raise HealthError(f"camera must be one of {', '.join(DEVICE_STATES)}")
    if not isinstance(microphone, str) or microphone not in MICROPHONE_STATES:
        raise HealthError("microphone must be one of ok, missing, denied, dark, unknown")
    app = _object(data.get("app"), "app", ("kind", "version"))
    if not isinstance(app["kind"], str) or app["kind"] not in APP_KINDS \
            or not isinstance(app["version"], str):
        raise HealthError('app must be {kind: "web"|"python", version: string}')
    out: dict[str, Any] = {"camera": camera, "microphone": microphone,
                           "app": {"kind": app["kind"], "version": app["version"][:MAX_TEXT]}}
    browser = data.get("browser")
    if browser is not None:
        if isinstance(browser, str):
            out["browser"] = browser[:MAX_TEXT]
        elif isinstance(browser, dict) and all(isinstance(v, str) for v in browser.values()):
            out["browser"] = {str(k)[:40]: v[:MAX_TEXT] for k, v in list(browser.items())[:4]}
        else:
            raise HealthError("browser must be a string or an object of strings")
    screen = data.get("screen")
    if screen is not None:
        s = _object(screen, "screen", ("w", "h"))
        out["screen"] = {"w": _num(s["w"], "screen.w", 0, 100_000),
                         "h": _num(s["h"], "screen.h", 0, 100_000)}
    battery = data.get("battery")
    if battery is not None:
        b = _object(battery, "battery", ("level_pct", "charging"))
        if not isinstance(b["charging"], bool):
            raise HealthError("battery.charging must be true or false")
        out["battery"] = {"level_pct": _num(b["level_pct"], "battery.level_pct", 0, 100),
                          "charging": b["charging"]}
    network = data.get("network")
    if network is not None:
        n = _object(network, "network", ("rtt_ms", "loss_pct"))
        out["network"] = {"rtt_ms": _num(n["rtt_ms"], "network.rtt_ms", 0, 600_000),
                          "loss_pct": _num(n["loss_pct"], "network.loss_pct", 0, 100)}
    return out


@dataclass(frozen=True, slots=True)
class KioskFacts:
    """What the server knows of one kiosk, read from Redis by ``signaling.fleet``."""

    kiosk_id: str
    ward: str
    counter: str
    online: bool
    last_seen_ms: int | None
    health: dict[str, Any] | None  # the latest report, with its ``at_ms``
    last_test: dict[str, Any] | None
    token_exp_ms: int | None  # the newest token's expiry; None if not known
    open_now: bool  # its ward's counters are open now (tsunagu.opening_hours)


def _reason(ja: str, en: str) -> str:
    return f"{ja} / {en}"


def _clock(ms: int, now_ms: int, tz: ZoneInfo) -> str:
    """08:12 today, else 12/01 08:12 (local time)."""
    at, now = datetime.fromtimestamp(ms / 1000, tz), datetime.fromtimestamp(now_ms / 1000, tz)
    return f"{at:%H:%M}" if at.date() == now.date() else f"{at:%m/%d %H:%M}"


def failed_test_words(test: Mapping[str, Any]) -> tuple[str, str]:
    """Why a test call failed, in words (Japanese, English)."""
    code = test.get("reason")
    if isinstance(code, str) and code:
        known = _TEST_REASONS.get(code)
        if known:
            return known
        parts = [p.strip() for p in code.split(";") if p.strip()]
        if parts and all(p in _TEST_SENTENCES for p in parts):
            return "、".join(_TEST_SENTENCES[p] for p in parts), "; ".join(parts)
        return (code.replace("_", " "), code.replace("_", " "))
    if test.get("fps_out") == 0:
        return _TEST_REASONS["no_video_from_kiosk"]
    if test.get("fps_in") == 0:
        return _TEST_REASONS["no_video_in"]
    return ("理由不明", "no reason given")


def rate(f: KioskFacts, now_ms: int, tz: ZoneInfo) -> tuple[str, list[str]]:
    """The kiosk's status and its reasons (red ones first), per section 14."""
    red: list[str] = []
    amber: list[str] = []
    if not f.online:
        if f.last_seen_ms is None:
            text = _reason("一度も接続していません", "never connected")
        elif f.open_now:
            when = _clock(f.last_seen_ms, now_ms, tz)
            text = _reason(f"{when} から接続がありません（開庁時間中）",
                           f"not seen since {when} during opening hours")
        else:
            when = _clock(f.last_seen_ms, now_ms, tz)
            text = _reason(f"オフライン（開庁時間外、最終接続 {when}）",
                           f"offline outside opening hours, last seen {when}")
        (red if f.open_now else amber).append(text)
    health = f.health or {}
    if not health:
        amber.append(_reason("状態の報告がまだありません", "no health report yet"))
    for device in ("camera", "microphone"):
        if not health:
            break
        state = health.get(device)
        if state == "ok":
            continue
        ja, en = _DEVICE_REASONS.get((device, str(state)), _DEVICE_REASONS[(device, "unknown")])
        (red if state in RED_DEVICE else amber).append(_reason(ja, en))
    test = f.last_test
    if test is not None and test.get("ok") is False:
        ja, en = failed_test_words(test)
        red.append(_reason(f"テスト通話に失敗しました: {ja}", f"test call failed: {en}"))
    if f.token_exp_ms is not None:
        left_ms = f.token_exp_ms - now_ms
        if left_ms <= 0:
            amber.append(_reason("端末トークンの期限が切れています: 更新してください",
                                 "token expired: rotate it"))
        elif left_ms <= TOKEN_WARN_DAYS * DAY_MS:
            days = max(1, -(-left_ms // DAY_MS))  # rounded up: "1 day" until it has expired
            amber.append(_reason(f"端末トークンの期限まであと {days} 日です: 更新してください",
                                 f"token expires in {days} day{'s' if days != 1 else ''}: "
                                 "rotate it"))
    if red:
        return "red", red + amber
    if amber:
        return "amber", amber
    return "green", []


def entry(f: KioskFacts, now_ms: int, tz: ZoneInfo) -> dict[str, Any]:
    """One element of ``GET /api/fleet``: exactly the fields of section 14."""
    status, reasons = rate(f, now_ms, tz)
    return {"kiosk_id": f.kiosk_id, "ward": f.ward, "counter": f.counter, "online": f.online,
            "last_seen_ms": f.last_seen_ms, "health": f.health, "status": status,
            "reasons": reasons, "last_test": f.last_test}


def _counter_key(counter: str) -> tuple[int, int | str]:
    return (0, int(counter)) if counter.isdigit() else (1, counter)


def ordered(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Red first, then amber, then green; by ward and counter within each."""
    return sorted(entries, key=lambda e: (STATUSES.index(e["status"]), e["ward"],
                                          _counter_key(e["counter"]), e["kiosk_id"]))


def counts(entries: list[dict[str, Any]]) -> dict[str, int]:
    """Kiosks per status, every status present (for ``tsunagu_kiosks{status=...}``)."""
    out = dict.fromkeys(STATUSES, 0)
    for e in entries:
        out[e["status"]] += 1
    return out
