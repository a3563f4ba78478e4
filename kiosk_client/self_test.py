"""The headless self-test's verdict (``tsunagu kiosk --headless --call LANG``) and the plain
words for what went wrong. Pure: reads the summary the app collected, no I/O.

A self-test passes only when a call was answered, its media connected, and media flowed both
ways: frames of the other side's video decoded here, and the relay's reports on what this
kiosk sent (RTCP receiver reports) seen for its video.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

END_REASONS = {
    "no_interpreter": "nobody who interprets this language is signed in",
    "timeout": "nobody answered within the maximum wait",
    "cancelled": "the call was cancelled",
    "peer_lost": "the connection to the interpreter was lost",
    "failed": "the call failed",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the self-test passed, and one plain line per finding."""

    ok: bool
    lines: list[str]


def verdict(call: dict[str, Any] | None, *, language: str) -> Verdict:
    """Judge one self-test call from the app's summary of it."""
    if call is None:
        return Verdict(False, ["no call was placed"])
    if "answered_after_s" not in call:
        reason = str(call.get("end_reason") or "")
        why = END_REASONS.get(reason, f"the call ended before anyone answered ({reason})"
                              if reason else "nobody answered")
        return Verdict(False, [f"FAILED: the {language} call was not answered: {why}."])
    lines = [f"answered after {call['answered_after_s']:.1f} s"]
    ok = True
    if not call.get("media_connected"):
        ok = False
        lines.append("FAILED: the media connection to the relay did not come up "
                     "(check the firewall between this PC and the relay)")
    received = ((call.get("media") or {}).get("received") or {})
    video_in = (received.get("video") or {}).get("frames", 0)
    audio_in = (received.get("audio") or {}).get("frames", 0)
    if video_in > 0:
        lines.append(f"received the interpreter's video: {video_in} frames, "
                     f"{(received.get('video') or {}).get('fps', 0)} fps")
    else:
        ok = False
        lines.append("FAILED: no video arrived from the interpreter")
    if audio_in == 0:
        lines.append("warning: no sound arrived from the interpreter")
    outbound = call.get("outbound") or {}
    video_out = outbound.get("video") or {}
    if video_out.get("packets_sent", 0) > 0 and video_out.get("acknowledged"):
        rtt = video_out.get("rtt_ms")
        lines.append("the relay received this kiosk's video"
                     + (f" (round trip {rtt:.0f} ms)" if rtt is not None else ""))
    else:
        ok = False
        lines.append("FAILED: the relay did not confirm receiving this kiosk's video "
                     "(camera not sending, or the network drops it)")
    lines.insert(0, "PASSED: the self-test call worked both ways." if ok
                 else "FAILED: the self-test call did not work both ways.")
    return Verdict(ok, lines)


# -- the daily test call (PROTOCOL.md section 14) ----------------------------------------------

TEST_END_REASONS = {
    "no_interpreter": "no answering bot is signed in",
    "timeout": "the answering bot did not answer in time",
    "peer_lost": "the connection to the answering bot was lost",
}


def judge_test_call(m: dict[str, Any]) -> dict[str, Any]:
    """The ``kiosk.test_result`` fields (less ``test_id``) from what a test call measured:
    ``answered`` (bool), ``end_reason``, ``frames_in``/``audio_in`` (decoded here),
    ``fps_in``, ``fps_out``, ``rtt_ms``, ``loss_pct``, ``setup_ms``. ``ok`` when the bot's
    video and sound arrived; the server adds what the bot received."""
    if not m.get("answered"):
        reason = str(m.get("end_reason") or "timeout")
        return {"ok": False, "fps_in": None, "fps_out": None, "rtt_ms": None,
                "loss_pct": None, "setup_ms": None,
                "reason": TEST_END_REASONS.get(reason, f"the test call ended ({reason})")}
    reasons = []
    if not m.get("frames_in"):
        reasons.append("no video from the bot")
    if not m.get("audio_in"):
        reasons.append("no sound from the bot")
    out: dict[str, Any] = {"ok": not reasons}
    for name in ("fps_in", "fps_out", "rtt_ms", "loss_pct", "setup_ms"):
        value = m.get(name)
        out[name] = None if value is None else round(float(value), 1)
    if reasons:
        out["reason"] = "; ".join(reasons)
    return out
