"""The rules of the daily test call (PROTOCOL.md section 14, docs/testcall.md): pure, no I/O.

``decide`` says what the scheduler does for one kiosk at one moment of its day: nothing yet,
send ``kiosk.test_due``, skip it for a real call (and try again later), or give up for the
day. ``verdict`` joins what the kiosk measured with what the answering bot received into the
``last_test`` the fleet page shows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    WAIT = "wait"  # nothing to do now (store ``state`` if it changed)
    SEND = "send"  # send kiosk.test_due now
    SKIP_BUSY = "skip_busy"  # the kiosk is in a real call: try again after it
    GIVE_UP = "give_up"  # no more tries today
    LOST = "lost"  # no more tries today, and the last test sent was never reported


@dataclass(frozen=True, slots=True)
class DayState:
    """A kiosk's test on one local day, as the scheduler keeps it (``Keys.test_day``)."""

    tries: int = 0  # tests sent plus skips for a real call
    next_ms: int = 0  # not before this (after a skip)
    sent_ms: int = 0  # a test_due sent and not yet reported (0: none pending)
    test_id: str = ""
    done: bool = False  # reported, or given up

    def to_redis(self) -> dict[str, str]:
        return {"tries": str(self.tries), "next_ms": str(self.next_ms),
                "sent_ms": str(self.sent_ms), "test_id": self.test_id,
                "done": "1" if self.done else "0"}

    @classmethod
    def from_redis(cls, h: dict[str, str]) -> DayState:
        return cls(tries=int(h.get("tries") or 0), next_ms=int(h.get("next_ms") or 0),
                   sent_ms=int(h.get("sent_ms") or 0), test_id=h.get("test_id", ""),
                   done=h.get("done") == "1")


@dataclass(frozen=True, slots=True)
class KioskNow:
    """What matters about the kiosk at this moment."""

    online: bool
    in_real_call: bool = False
    in_test_call: bool = False


@dataclass(frozen=True, slots=True)
class Rules:
    """The deployment's settings for test calls."""

    days: frozenset[int] = frozenset(range(7))  # weekday numbers, 0 = Monday
    retry_s: float = 300.0
    max_tries: int = 3
    result_timeout_s: float = 180.0


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    state: DayState  # the day's state after this decision
    why: str


def parse_hhmm(text: str) -> time:
    """``"08:30"`` as a time of day."""
    hh, _, mm = text.partition(":")
    return time(int(hh), int(mm))


def decide(now: datetime, test_at: time, state: DayState, kiosk: KioskNow,
           rules: Rules, *, new_test_id: str = "", added_ms: int = 0) -> Decision:
    """What to do for one kiosk at ``now`` (an aware local time) on the day ``state`` is of.

    A test is due from ``test_at`` on the days the rules name. A kiosk offline then is tested
    when it comes back the same day; one in a real call is skipped and tried again
    ``retry_s`` later; a test sent and not reported within ``result_timeout_s`` (a resident
    tapped a language, the tablet went away) is tried again. At most ``max_tries`` tries a
    day, counting both tests sent and skips. A kiosk added (``added_ms``) after the day's test
    time is first tested the next day."""
    now_ms = int(now.timestamp() * 1000)
    if state.done:
        return Decision(Action.WAIT, state, "done today")
    if now.weekday() not in rules.days:
        return Decision(Action.WAIT, state, "no test on this weekday")
    if now.time() < test_at:
        return Decision(Action.WAIT, state, "not yet time")
    if added_ms >= datetime.combine(now.date(), test_at, now.tzinfo).timestamp() * 1000:
        return Decision(Action.WAIT, state, "added after today's test time")
    if state.sent_ms:
        if kiosk.in_test_call or now_ms - state.sent_ms < rules.result_timeout_s * 1000:
            return Decision(Action.WAIT, state, "waiting for the result")
        if state.tries >= rules.max_tries:
            return Decision(Action.LOST, replace(state, sent_ms=0, done=True),
                            "the last try was never reported")
        state = replace(state, sent_ms=0)  # lost: try again now (below)
    if now_ms < state.next_ms:
        return Decision(Action.WAIT, state, "retry later")
    if not kiosk.online:
        return Decision(Action.WAIT, state, "offline: tested when it comes back today")
    if kiosk.in_test_call:
        return Decision(Action.WAIT, state, "a test call is running")
    if state.tries >= rules.max_tries:
        return Decision(Action.GIVE_UP, replace(state, done=True), "no tries left today")
    tries = state.tries + 1
    if kiosk.in_real_call:
        if tries >= rules.max_tries:
            return Decision(Action.GIVE_UP, replace(state, tries=tries, done=True),
                            "in a real call at every try")
        return Decision(Action.SKIP_BUSY,
                        replace(state, tries=tries, next_ms=now_ms + int(rules.retry_s * 1000)),
                        "in a real call: retry after it")
    return Decision(Action.SEND, replace(state, tries=tries, sent_ms=now_ms,
                                         test_id=new_test_id), "due")


# -- the verdict -------------------------------------------------------------------------------

NO_BOT_REPORT = "the answering bot did not say what it received"


def verdict(kiosk: dict[str, Any], bot: dict[str, str], *, at_ms: int) -> dict[str, Any]:
    """The ``last_test`` of section 14 from the kiosk's ``kiosk.test_result`` fields and the
    bot's latest ``test.media`` (the ``bot_*`` fields of ``Keys.test_run``; empty if the call
    was never answered). ``ok`` is false if either end received no media."""
    reasons = [r.strip() for r in str(kiosk.get("reason") or "").split(";") if r.strip()]
    ok = bool(kiosk.get("ok"))
    if ok:
        if "bot_video" not in bot:
            ok = False
            reasons.append(NO_BOT_REPORT)
        else:
            if float(bot.get("bot_video") or 0) <= 0:
                ok = False
                reasons.append("no video from the tablet")
            if float(bot.get("bot_audio") or 0) <= 0:
                ok = False
                reasons.append("no sound from the tablet")
    elif "bot_video" in bot and float(bot.get("bot_video") or 0) <= 0:
        reasons.append("no video from the tablet")  # the kiosk failed: add what the bot saw
    if not ok and not reasons:
        reasons.append("the test call failed")
    out: dict[str, Any] = {"at_ms": at_ms, "ok": ok}
    for name in ("fps_in", "fps_out", "rtt_ms", "loss_pct", "setup_ms"):
        value = kiosk.get(name)
        out[name] = round(float(value), 1) if value is not None else None
    if reasons:
        out["reason"] = "; ".join(dict.fromkeys(reasons))
    return out
