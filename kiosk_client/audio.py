"""The kiosk's microphone and speaker: ALSA devices through PyAV, each served by its own thread.

The event loop never waits on a sound device. A capture thread reads the
microphone (``av.open(device, format="alsa")``), converts to 48 kHz mono s16
and keeps at most ``MIC_MAX_S`` of it in a ``SampleRing``; the
``MicrophoneTrack`` hands aiortc one 20 ms frame every 20 ms from that ring,
and silence when the ring is empty or the microphone is missing, so a call
never stops for a broken microphone (sign language needs only video).

Received audio goes the other way: ``Speaker.feed`` (called on the loop for
each decoded frame) only appends to a short queue; the speaker thread
resamples (``av.AudioResampler``) and writes s16 to an ALSA output
(``av.open(device, "w", format="alsa")``). ``PlayoutGuard`` keeps a model of
how much audio the device still holds and drops frames that would push it
over ``SPEAKER_MAX_S``: late audio is thrown away, never queued up.

PyAV's wheel carries its own libasound, built to look for its configuration
under ``/tmp/vendor``; ``prepare_alsa`` points it at the system's
(``/usr/share/alsa``, from Debian's ``libasound2-data``) unless the
environment already says where. It cannot load the system's ALSA plugin
modules (PulseAudio, PipeWire: built against the system's libasound), so on
a desktop whose ``default`` is a sound server, name a hardware device
(``plughw:CARD,DEV``) instead.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fractions
import logging
import os
import threading
import time
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from tsunagu.endpoint.meter import percentile
from tsunagu.settings import DEVICE_OFF, MIC_TONE, KioskSettings

log = logging.getLogger(__name__)

RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms, what aiortc's Opus encoder takes
MIC_PREFILL_S = 0.04  # start (and restart after running dry) with this much captured
MIC_MAX_S = 0.12  # never hold more; the oldest goes
SPEAKER_PREFILL_S = 0.04  # silence put in front after the device ran dry, against crackle
SPEAKER_MAX_S = 0.1  # audio the device may hold; frames that would exceed it are dropped
REOPEN_S = (5.0, 300.0)  # a failed speaker is tried again after 5 s, doubling up to 5 min
TONE, OFF = MIC_TONE, DEVICE_OFF  # --mic tone / none, --speaker none

Samples = npt.NDArray[np.int16]

MIC_PROBLEM = ("マイクが使えません。声は通訳者に届きません。手話とチャットは使えます。",
               "The microphone is not working: the interpreter cannot hear you. "
               "Sign language and chat still work.")
SPEAKER_PROBLEM = ("スピーカーが使えません。通訳者の声は聞こえません。映像とチャットは使えます。",
                   "The speaker is not working: you cannot hear the interpreter. "
                   "Video and chat still work.")


def prepare_alsa() -> None:
    """Let PyAV's bundled libasound find the system's ALSA configuration.

    Call it from the main thread before any device thread starts (it sets an
    environment variable once).
    """
    if "ALSA_CONFIG_DIR" not in os.environ and os.path.isfile("/usr/share/alsa/alsa.conf"):
        os.environ["ALSA_CONFIG_DIR"] = "/usr/share/alsa"


def resolve_devices(mic: str | None, speaker: str | None, no_audio_out: bool,
                    synthetic_source: bool) -> tuple[str, str]:
    """The (microphone, speaker) to use from the command line.

    ``--source synthetic`` is for self-tests and headless runs: it keeps the
    synthetic tone and no speaker unless a device is named explicitly.
    """
    mic = mic or (TONE if synthetic_source else "default")
    speaker = OFF if no_audio_out else speaker or (OFF if synthetic_source else "default")
    return mic, speaker


def device_error(exc: BaseException) -> str:
    """A short, loggable description of why a device failed (no paths beyond the device)."""
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200]


# --- pure parts ---------------------------------------------------------------------------


class SampleRing:
    """Mono s16 samples between a producer thread and a consumer, bounded: the oldest go.

    ``pop`` waits for ``prefill`` samples after starting or running dry, so a
    producer that delivers exactly in real time does not alternate between
    a frame of sound and a frame of silence.
    """

    def __init__(self, capacity: int, prefill: int) -> None:
        self.capacity = capacity
        self.prefill = prefill
        self.dropped = 0  # samples thrown away because the ring was full
        self.underruns = 0  # pops that found too little
        self._buf = np.zeros(0, dtype=np.int16)
        self._priming = True
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return int(self._buf.size)

    def push(self, samples: Samples) -> None:
        """Append samples; keep only the newest ``capacity``."""
        with self._lock:
            buf = np.concatenate((self._buf, samples)) if self._buf.size else samples.copy()
            if buf.size > self.capacity:
                self.dropped += buf.size - self.capacity
                buf = buf[buf.size - self.capacity:]
            self._buf = buf

    def pop(self, count: int) -> Samples | None:
        """The oldest ``count`` samples, or None (and priming again) if there are too few."""
        with self._lock:
            if self._priming and self._buf.size < max(self.prefill, count):
                return None
            if self._buf.size < count:
                self.underruns += 1
                self._priming = True
                return None
            self._priming = False
            out, self._buf = self._buf[:count], self._buf[count:]
            return out

    def clear(self) -> None:
        """Forget everything held."""
        with self._lock:
            self._buf = np.zeros(0, dtype=np.int16)
            self._priming = True


class RealtimePacer:
    """Hold back a source that delivers faster than real time (a token bucket).

    A real microphone delivers at its own clock, within a fraction of a
    per mille of ``rate``, so it is never held back: the bucket refills at
    ``rate * (1 + tolerance)`` and holds ``burst_s`` of credit, enough for the
    backlog after a stalled reader. A source that never waits (ALSA's ``file``
    plugin on a ``null`` slave, a plain file) is held to about real time after
    its first ``burst_s``.
    """

    def __init__(self, rate: int, burst_s: float = 0.3, tolerance: float = 0.002) -> None:
        self.refill = rate * (1 + tolerance)
        self.capacity = burst_s * rate
        self.throttled_s = 0.0
        self._tokens = self.capacity
        self._at: float | None = None

    def delay(self, now: float, samples: int) -> float:
        """Seconds to sleep after ``samples`` more arrived at ``now``."""
        if self._at is not None:
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.refill)
        self._at = now
        self._tokens -= samples
        if self._tokens >= 0:
            return 0.0
        wait = -self._tokens / self.refill
        self.throttled_s += wait
        return wait


class PlayoutGuard:
    """A model of how much audio the playback device holds, to bound the speaker's delay.

    The device plays ``rate`` samples per second from the first write after
    it ran dry. Before writing a frame: if the device is dry (start, or an
    underrun), put ``prefill_s`` of silence first; if the frame would leave
    more than ``max_s`` queued, drop it. A standing excess (a burst at the
    start of a call stays queued for ever, as frames then arrive as fast as
    they play) is trimmed: when the device held at least a frame more than
    ``prefill_s`` all through the last ``trim_window_s``, one frame is dropped.
    """

    def __init__(self, rate: int = RATE, prefill_s: float = SPEAKER_PREFILL_S,
                 max_s: float = SPEAKER_MAX_S, trim_window_s: float = 1.0) -> None:
        self.rate = rate
        self.prefill_s = prefill_s
        self.max_s = max_s
        self.trim_window_s = trim_window_s
        self.written = 0  # samples since the device last started
        self.dropped = 0  # frames that would have gone over max_s
        self.trimmed = 0  # frames dropped to cut a standing excess
        self.underruns = 0
        self.latencies_ms: list[float] = []
        self._anchor: float | None = None
        self._low: float | None = None  # the least held before a write, this window
        self._since = 0.0

    def held_s(self, now: float) -> float:
        """Seconds of audio the device still has to play at ``now``."""
        if self._anchor is None:
            return 0.0
        return max(0.0, self.written / self.rate - (now - self._anchor))

    def plan(self, now: float, samples: int) -> int | None:
        """Before writing ``samples``: None to drop them, else how much silence goes first."""
        held = self.held_s(now)
        if held <= 0.0:
            if self._anchor is not None:
                self.underruns += 1
            self._anchor, self.written = now, 0
            self._low, self._since = None, now
            return int(self.prefill_s * self.rate)
        frame_s = samples / self.rate
        if held + frame_s > self.max_s + 1e-6:
            self.dropped += 1
            return None
        self._low = held if self._low is None else min(self._low, held)
        if now - self._since >= self.trim_window_s:
            excess = self._low - self.prefill_s
            self._low, self._since = None, now
            if excess >= frame_s - 1e-6:
                self.trimmed += 1
                return None
        return 0

    def wrote(self, now: float, samples: int) -> None:
        """``samples`` went to the device at ``now``; record the delay the last one will have."""
        self.written += samples
        self.latencies_ms = [*self.latencies_ms[-2999:], self.held_s(now) * 1000]

    def summary(self) -> dict[str, Any]:
        """Drops, underruns and the modelled device delay (ms) after each write."""
        p50 = percentile(self.latencies_ms, 50)
        p95 = percentile(self.latencies_ms, 95)
        return {"dropped_frames": self.dropped, "trimmed_frames": self.trimmed,
                "underruns": self.underruns,
                "buffer_ms_p50": None if p50 is None else round(p50, 1),
                "buffer_ms_p95": None if p95 is None else round(p95, 1),
                "buffer_ms_max": round(max(self.latencies_ms), 1) if self.latencies_ms else None}


class Converter:
    """Any decoded audio frame to s16 interleaved samples at ``rate`` with ``channels``.

    One ``av.AudioResampler``, rebuilt when the input's format, layout or rate changes.
    """

    def __init__(self, rate: int = RATE, channels: int = 1) -> None:
        self.rate = rate
        self.channels = channels
        self._layout = "mono" if channels == 1 else "stereo"
        self._resampler: Any = None
        self._input: tuple[str, str, int] | None = None

    def convert(self, frame: av.AudioFrame) -> Samples:
        """Interleaved s16 samples (``channels`` per instant) for ``frame``."""
        key = (frame.format.name, frame.layout.name, int(frame.sample_rate))
        if self._resampler is None or key != self._input:
            self._resampler = av.AudioResampler(format="s16", layout=self._layout,
                                                rate=self.rate)
            self._input = key
        parts = [np.asarray(out.to_ndarray(), dtype=np.int16).reshape(-1)
                 for out in self._resampler.resample(frame)]
        if not parts:
            return np.zeros(0, dtype=np.int16)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def s16_frame(samples: Samples, channels: int, pts: int, rate: int = RATE) -> av.AudioFrame:
    """An av s16 frame of interleaved ``samples``."""
    layout = "mono" if channels == 1 else "stereo"
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, dtype=np.int16)
                                       .reshape(1, -1), format="s16", layout=layout)
    frame.sample_rate = rate
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, rate)
    return frame


# --- the microphone ---------------------------------------------------------------------


def open_capture(device: str) -> Any:
    """Open an ALSA capture device (48 kHz; mono, else stereo)."""
    error: Exception | None = None
    for channels in ("1", "2"):
        try:
            return av.open(device, format="alsa",
                           options={"sample_rate": str(RATE), "channels": channels})
        except (av.FFmpegError, OSError, ValueError) as exc:
            error = exc
    assert error is not None
    raise error


class MicrophoneTrack(MediaStreamTrack):
    """An audio track from an ALSA capture device, 20 ms frames; silence if there is none.

    ``device=None`` sends silence without opening anything (``--mic none``).
    ``problem`` says why the microphone gives nothing (None while it works).
    """

    kind = "audio"

    def __init__(self, device: str | None) -> None:
        super().__init__()
        self.device = device
        self.frames_sent = 0
        self.silent_frames = 0  # frames sent as silence (no microphone, or it ran dry)
        self.samples_captured = 0
        self.problem: str | None = None
        self.opened = threading.Event()  # set once the device opened or failed
        self.ring = SampleRing(int(MIC_MAX_S * RATE), int(MIC_PREFILL_S * RATE))
        self.pacer = RealtimePacer(RATE)
        prepare_alsa()
        self._start: float | None = None
        self._quit = threading.Event()
        self._thread: threading.Thread | None = None
        if device is None:
            self.opened.set()
        else:
            self._thread = threading.Thread(target=self._capture, name="microphone",
                                            daemon=True)
            self._thread.start()

    @property
    def ok(self) -> bool:
        """Whether sound from a device is being sent (False for ``none`` and failures)."""
        return self.device is not None and self.problem is None and self.opened.is_set()

    def _fail(self, why: str) -> None:
        if self.problem is None:
            log.warning("microphone %s: %s; sending silence", self.device, why)
        self.problem = why
        self.opened.set()

    def _capture(self) -> None:
        assert self.device is not None
        try:
            container = open_capture(self.device)
        except Exception as exc:
            self._fail(f"cannot open: {device_error(exc)}")
            return
        try:
            self._read(container)
        except Exception as exc:
            if not self._quit.is_set():
                self._fail(f"stopped: {device_error(exc)}")
        finally:
            with contextlib.suppress(Exception):
                container.close()

    def _read(self, container: Any) -> None:
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        raw = ctx.name == "pcm_s16le" and int(ctx.sample_rate) == RATE and ctx.channels == 1
        log.info("microphone %s: %s %d Hz, %d channel(s)", self.device, ctx.name,
                 ctx.sample_rate, ctx.channels)
        self.opened.set()
        convert = Converter(RATE, 1)
        pending = bytearray()  # s16 mono, batched: ALSA periods can be a few samples long
        packets = container.demux(stream)
        while not self._quit.is_set():
            try:
                packet = next(packets)
            except StopIteration:
                raise EOFError("the device stopped giving sound") from None
            if not packet.size:
                continue
            if raw:
                pending += packet
            else:
                for frame in packet.decode():
                    pending += convert.convert(frame).tobytes()
            if len(pending) < FRAME_SAMPLES:  # 10 ms (2 bytes a sample)
                continue
            samples = np.frombuffer(pending, dtype="<i2").astype(np.int16)
            pending.clear()
            self.ring.push(samples)
            self.samples_captured += samples.size
            delay = self.pacer.delay(time.monotonic(), samples.size)
            if delay > 0:
                self._quit.wait(delay)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self.frames_sent * FRAME_SAMPLES / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -1.0:  # the loop was suspended: restart the clock, don't burst
            self._start = time.monotonic() - self.frames_sent * FRAME_SAMPLES / RATE
        samples = self.ring.pop(FRAME_SAMPLES)
        if samples is None:
            samples = np.zeros(FRAME_SAMPLES, dtype=np.int16)
            self.silent_frames += 1
        frame = s16_frame(samples, 1, self.frames_sent * FRAME_SAMPLES)
        self.frames_sent += 1
        return frame

    def stop(self) -> None:
        """End the track; the capture thread closes the device after its current read."""
        super().stop()
        self._quit.set()

    def summary(self) -> dict[str, Any]:
        """JSON-ready state of the microphone for this call."""
        return {"device": self.device, "ok": self.ok, "problem": self.problem,
                "frames_sent": self.frames_sent, "silent_frames": self.silent_frames,
                "captured_s": round(self.samples_captured / RATE, 2),
                "dropped_s": round(self.ring.dropped / RATE, 2),
                "throttled_s": round(self.pacer.throttled_s, 2)}


def probe_microphone(device: str, timeout_s: float = 2.0) -> str | None:
    """Open ``device``, read a little, close it (blocking: run it in a thread). None if fine."""
    try:
        container = open_capture(device)
    except Exception as exc:
        return f"cannot open: {device_error(exc)}"
    result: list[str | None] = []

    def read() -> None:
        try:
            next(container.demux(container.streams.audio[0]))
            result.append(None)
        except Exception as exc:
            result.append(f"gives no sound: {device_error(exc)}")

    reader = threading.Thread(target=read, name="microphone-probe", daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not result:
        # Closing the container under a blocked read is not safe in PyAV, so the reader is
        # left to the device; a device this slow is reported, and each call opens its own.
        return "gives no sound (timed out)"
    with contextlib.suppress(Exception):
        container.close()
    return result[0]


# --- the speaker ------------------------------------------------------------------------


def open_playback(device: str) -> tuple[Any, Any, int]:
    """Open an ALSA playback device for s16 at 48 kHz, stereo else mono.

    Returns (container, stream, channels).
    """
    error: Exception | None = None
    for channels, layout in ((2, "stereo"), (1, "mono")):
        container = av.open(device, "w", format="alsa")
        try:
            stream = container.add_stream("pcm_s16le", rate=RATE, layout=layout)
            container.start_encoding()  # opens the PCM and sets its parameters
            return container, stream, channels
        except Exception as exc:
            error = exc
            with contextlib.suppress(Exception):
                container.close()
    assert error is not None
    raise error


class Speaker:
    """Plays received audio on an ALSA device from its own thread, with a bounded delay.

    ``device=None`` (``--speaker none``) plays nothing. A device that cannot
    be opened (or fails) is tried again (``REOPEN_S``, and at once by ``retry``,
    e.g. when a call starts); meanwhile frames are dropped and ``problem`` says why.
    """

    def __init__(self, device: str | None, queue_frames: int = 8) -> None:
        self.device = device
        self.channels = 2  # as opened: stereo, or mono where the device has only that
        self.problem: str | None = None
        self.frames_in = 0
        self.frames_played = 0
        self.queue_dropped = 0  # frames the thread did not take in time
        self.guard = PlayoutGuard()
        self.opened = threading.Event()  # set once the first open succeeded or failed
        self._queue: collections.deque[av.AudioFrame] = collections.deque(maxlen=queue_frames)
        self._cond = threading.Condition()
        self._quit = threading.Event()
        self._retry = threading.Event()
        self._thread: threading.Thread | None = None
        prepare_alsa()
        if device is None:
            self.opened.set()

    def retry(self) -> None:
        """If the device failed, try it again now rather than at the next scheduled time."""
        self._retry.set()

    @property
    def ok(self) -> bool:
        """Whether the speaker plays (False for ``none`` and failures)."""
        return self.device is not None and self.problem is None and self.opened.is_set()

    def start(self) -> None:
        """Start the playback thread (it opens the device)."""
        if self.device is not None and self._thread is None:
            self._thread = threading.Thread(target=self._play, name="speaker", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop playing and close the device."""
        self._quit.set()
        with self._cond:
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def feed(self, frame: av.AudioFrame) -> None:
        """One received frame (event loop side: never blocks)."""
        if self.device is None or self._thread is None:
            return
        self.frames_in += 1
        with self._cond:
            if len(self._queue) == self._queue.maxlen:
                self.queue_dropped += 1
            self._queue.append(frame)
            self._cond.notify()

    def _take(self, timeout: float) -> av.AudioFrame | None:
        with self._cond:
            if not self._queue and not self._quit.is_set():
                self._cond.wait(timeout)
            return self._queue.popleft() if self._queue else None

    def _fail(self, why: str) -> None:
        if self.problem != why:
            log.warning("speaker %s: %s", self.device, why)
        self.problem = why
        self.opened.set()

    def _play(self) -> None:
        assert self.device is not None
        out: tuple[Any, Any] | None = None
        next_try, backoff = 0.0, REOPEN_S[0]
        convert = Converter(RATE, self.channels)
        pts = 0
        while not self._quit.is_set():
            if out is None and (time.monotonic() >= next_try or self._retry.is_set()):
                self._retry.clear()
                try:
                    container, stream, self.channels = open_playback(self.device)
                    out, convert = (container, stream), Converter(RATE, self.channels)
                    if self.problem is not None:
                        log.warning("speaker %s: works again", self.device)
                    self.problem = None
                    self.guard = PlayoutGuard()
                    backoff = REOPEN_S[0]
                    self.opened.set()
                except Exception as exc:
                    self._fail(f"cannot open: {device_error(exc)}")
                    next_try = time.monotonic() + backoff
                    backoff = min(backoff * 2, REOPEN_S[1])
            frame = self._take(0.25)
            if frame is None or out is None:
                continue
            try:
                pts = self._write(out, convert, frame, pts)
            except Exception as exc:
                self._fail(f"stopped: {device_error(exc)}")
                with contextlib.suppress(Exception):
                    out[0].close()
                out, next_try = None, time.monotonic() + REOPEN_S[0]
        if out is not None:
            with contextlib.suppress(Exception):
                out[0].close()

    def _write(self, out: tuple[Any, Any], convert: Converter, frame: av.AudioFrame,
               pts: int) -> int:
        container, stream = out
        samples = convert.convert(frame)
        count = samples.size // self.channels
        if count == 0:
            return pts
        now = time.monotonic()
        silence = self.guard.plan(now, count)
        if silence is None:
            return pts
        chunks = [np.zeros(silence * self.channels, dtype=np.int16)] if silence else []
        for chunk in [*chunks, samples]:
            for packet in stream.encode(s16_frame(chunk, self.channels, pts)):
                container.mux(packet)
            pts += chunk.size // self.channels
        self.guard.wrote(time.monotonic(), silence + count)
        self.frames_played += 1
        return pts

    def summary(self) -> dict[str, Any]:
        """JSON-ready state of the speaker."""
        return {"device": self.device, "ok": self.ok, "problem": self.problem,
                "frames_in": self.frames_in, "frames_played": self.frames_played,
                "queue_dropped": self.queue_dropped, **self.guard.summary()}


# --- what the kiosk uses ------------------------------------------------------------------


class KioskAudio:
    """The kiosk's microphone choice and its speaker, and what to tell people about them."""

    def __init__(self, mic: str, speaker: str) -> None:
        self.mic = mic
        self.speaker = Speaker(None if speaker == OFF else speaker)
        self.mic_problem: str | None = None
        self.track: MicrophoneTrack | None = None  # the current call's microphone

    def start(self) -> None:
        """Open the speaker (in its thread)."""
        self.speaker.start()

    def stop(self) -> None:
        """Close the speaker (blocking: run it in a thread). The session stops the tracks."""
        self.speaker.stop()

    def check(self) -> None:
        """Try the microphone and wait briefly for the speaker (blocking: run in a thread)."""
        if self.mic not in (TONE, OFF):
            self.mic_problem = probe_microphone(self.mic)
            if self.mic_problem is not None:
                log.warning("microphone %s: %s", self.mic, self.mic_problem)
        self.speaker.opened.wait(2.0)

    async def check_async(self) -> None:
        """``check`` in a worker thread."""
        await asyncio.to_thread(self.check)

    def make_track(self) -> MediaStreamTrack:
        """A fresh audio track for one call: the microphone, the tone or silence."""
        self.speaker.retry()  # a speaker plugged in since it failed works from this call on
        if self.mic == TONE:
            from tsunagu.endpoint.tracks import ToneAudioTrack

            return ToneAudioTrack()
        self.track = MicrophoneTrack(None if self.mic == OFF else self.mic)
        return self.track

    def play(self, frame: av.AudioFrame) -> None:
        """A received audio frame, for the speaker."""
        self.speaker.feed(frame)

    def notices(self) -> tuple[tuple[str, str], ...]:
        """Plain (Japanese, English) lines about a microphone or speaker that does not work."""
        out = []
        mic_problem = self.track.problem if self.track is not None else self.mic_problem
        if mic_problem is not None:
            out.append(MIC_PROBLEM)
        if self.speaker.problem is not None:
            out.append(SPEAKER_PROBLEM)
        return tuple(out)

    def summary(self) -> dict[str, Any]:
        """Devices, problems and counters, for the headless summary (no message text)."""
        mic: dict[str, Any] = {"device": self.mic}
        if self.track is not None:
            mic.update(self.track.summary())
        elif self.mic not in (TONE, OFF):
            mic.update(ok=self.mic_problem is None, problem=self.mic_problem)
        return {"mic": mic, "speaker": self.speaker.summary(),
                "notices": [en for _, en in self.notices()]}


def audio_from_args(args: KioskSettings) -> KioskAudio:
    """The kiosk's audio devices from its parsed command line."""
    mic, speaker = resolve_devices(args.mic, args.speaker, args.no_audio_out,
                                   args.source == "synthetic")
    return KioskAudio(mic, speaker)


async def audio_check(audio: KioskAudio) -> dict[str, Any]:
    """Try the devices (in a worker thread) and describe them."""
    await asyncio.to_thread(audio.check)
    return audio.summary()
