"""The kiosk's microphone and speaker without a network: buffers, pacing, resampling,
missing devices, and real ALSA devices made of files (the ``file`` plugin on ``null``)."""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from kiosk_client.app import parse_args
from kiosk_client.audio import (
    MIC_PROBLEM,
    OFF,
    RATE,
    SPEAKER_PROBLEM,
    TONE,
    Converter,
    KioskAudio,
    MicrophoneTrack,
    PlayoutGuard,
    RealtimePacer,
    SampleRing,
    Speaker,
    audio_from_args,
    resolve_devices,
)
from kiosk_client.screen import ScreenState, View, render
from kiosk_client.typeface import Typeface
from tsunagu.endpoint.meter import ReceiveStats, Spectrum, mono_samples
from tsunagu.endpoint.tracks import ToneAudioTrack

DEBIAN_ALSA_CONF = Path("/usr/share/alsa/alsa.conf")


@dataclass(frozen=True)
class AlsaFiles:
    """An ALSA configuration whose ``tsunagu_mic`` reads ``mic`` and whose
    ``tsunagu_speaker`` writes ``speaker`` (raw s16le, 48 kHz; mic mono, speaker as opened)."""

    config: Path
    mic: Path
    speaker: Path


def make_alsa_files(directory: Path, mic_hz: float, seconds: float,
                    level: float = 0.3) -> AlsaFiles:
    """Write the mic file (a tone) and the configuration: Debian's, then our two devices.

    ``file`` on a ``null`` slave never waits (nothing paces it in real time): the
    microphone's reader paces itself, the speaker is fed in real time by the call.
    """
    assert DEBIAN_ALSA_CONF.is_file(), "needs Debian's libasound2-data"
    mic, speaker = directory / "mic.raw", directory / "speaker.raw"
    n = np.arange(int(seconds * RATE))
    (np.sin(2 * np.pi * mic_hz * n / RATE) * level * 32767).astype("<i2").tofile(mic)
    config = directory / "asound.conf"
    config.write_text(
        f"<{DEBIAN_ALSA_CONF}>\n"
        "pcm.tsunagu_mic {\n  type file\n  slave.pcm \"null\"\n  file \"/dev/null\"\n"
        f"  infile \"{mic}\"\n  format \"raw\"\n}}\n"
        "pcm.tsunagu_speaker {\n  type file\n  slave.pcm \"null\"\n"
        f"  file \"{speaker}\"\n  format \"raw\"\n}}\n"
    )
    return AlsaFiles(config, mic, speaker)


def read_speaker(path: Path, channels: int = 2) -> np.ndarray:
    """The speaker file as (frames, channels) s16."""
    raw = np.fromfile(path, dtype="<i2") if path.exists() else np.zeros(0, dtype=np.int16)
    return raw[: raw.size // channels * channels].reshape(-1, channels)


def tone(samples: np.ndarray) -> Spectrum:
    """The spectrum of (frames, channels) s16 samples, channels averaged."""
    spectrum = Spectrum()
    spectrum.add((samples.astype(np.float32).mean(axis=1) / 32768).astype(np.float32), RATE)
    return spectrum


def frame_of(samples: np.ndarray, rate: int, layout: str = "mono") -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples.astype(np.int16).reshape(1, -1), format="s16",
                                       layout=layout)
    frame.sample_rate = rate
    frame.pts = 0
    frame.time_base = fractions.Fraction(1, rate)
    return frame


# --- pure parts ---------------------------------------------------------------------------


def test_ring_keeps_only_the_newest_samples() -> None:
    ring = SampleRing(capacity=100, prefill=10)
    ring.push(np.arange(80, dtype=np.int16))
    ring.push(np.arange(80, 160, dtype=np.int16))
    assert len(ring) == 100 and ring.dropped == 60
    out = ring.pop(20)
    assert out is not None and out.tolist() == list(range(60, 80))


def test_ring_primes_before_giving_and_after_running_dry() -> None:
    ring = SampleRing(capacity=1000, prefill=30)
    ring.push(np.ones(20, dtype=np.int16))
    assert ring.pop(10) is None  # not primed: less than 30 held
    ring.push(np.ones(20, dtype=np.int16))
    assert ring.pop(10) is not None and ring.pop(10) is not None and ring.pop(10) is not None
    assert ring.pop(20) is None and ring.underruns == 1  # 10 left: dry, priming again
    ring.push(np.ones(10, dtype=np.int16))
    assert ring.pop(10) is None  # 20 held, prefill is 30
    ring.push(np.ones(10, dtype=np.int16))
    assert ring.pop(10) is not None


def test_pacer_never_holds_back_a_device_with_its_own_clock() -> None:
    pacer = RealtimePacer(RATE)
    now = 100.0
    for _ in range(5000):  # 50 s in 10 ms periods, the device's clock 1e-4 fast
        now += 0.01 / 1.0001
        assert pacer.delay(now, 480) == 0.0
    # a reader that stalled 200 ms then drains the device's backlog: still no wait
    now += 0.2
    assert pacer.delay(now, int(0.21 * RATE)) == 0.0


def test_pacer_holds_a_source_without_a_clock_to_real_time() -> None:
    pacer = RealtimePacer(RATE, burst_s=0.3)
    now, total, slept = 0.0, 0, 0.0
    while total < 5 * RATE:  # a file read as fast as possible: no time passes between reads
        total += 480
        wait = pacer.delay(now, 480)
        now += wait
        slept += wait
    assert 4.6 < now < 4.8  # 5 s of sound took 5 s - the 0.3 s burst (at 1.002x)
    assert slept == pytest.approx(now)


def test_playout_starts_with_a_cushion_and_keeps_the_delay_bounded() -> None:
    guard = PlayoutGuard(rate=RATE, prefill_s=0.04, max_s=0.1)
    now, frame = 10.0, 960
    assert guard.plan(now, frame) == int(0.04 * RATE)  # dry: silence first
    guard.wrote(now, int(0.04 * RATE) + frame)
    for _ in range(100):  # frames arriving on time: no drops, 60 ms held
        now += 0.02
        assert guard.plan(now, frame) == 0
        guard.wrote(now, frame)
        assert guard.held_s(now) == pytest.approx(0.06)
    plans = []
    for _ in range(5):  # a burst of frames after a network stall
        plans.append(guard.plan(now, frame))
        if plans[-1] is not None:
            guard.wrote(now, frame)
    assert plans == [0, 0, None, None, None] and guard.dropped == 3
    assert guard.held_s(now) <= 0.1 + 1e-9
    summary = guard.summary()
    assert summary["buffer_ms_max"] <= 100.0 and summary["dropped_frames"] == 3
    now += 1.0  # silence from the far end: the device ran dry
    assert guard.plan(now, frame) == int(0.04 * RATE) and guard.underruns == 1


def test_playout_trims_a_standing_excess_to_the_cushion() -> None:
    guard = PlayoutGuard(rate=RATE, prefill_s=0.04, max_s=0.1, trim_window_s=1.0)
    now, frame = 10.0, 960
    guard.wrote(now, (guard.plan(now, frame) or 0) + frame)  # the cushion and a frame
    for _ in range(2):  # two more at once as the call starts: 40 ms more than needed
        assert guard.plan(now, frame) == 0
        guard.wrote(now, frame)
    assert guard.held_s(now) == pytest.approx(0.1)
    trimmed_at = []
    for i in range(150):  # 3 s of frames on time
        now += 0.02
        if guard.plan(now, frame) is None:
            trimmed_at.append(i)
        else:
            guard.wrote(now, frame)
    assert guard.trimmed == 2 and guard.dropped == 0 and len(trimmed_at) == 2
    assert guard.held_s(now) == pytest.approx(0.06)  # back to cushion + one frame
    assert guard.underruns == 0


def test_converter_resamples_any_input_to_48k_and_keeps_the_pitch() -> None:
    convert = Converter(RATE, channels=2)
    spectrum = Spectrum()
    total = 0
    for i in range(50):  # 16 kHz mono, 20 ms frames, 1 kHz
        n = np.arange(i * 320, (i + 1) * 320)
        out = convert.convert(frame_of(np.sin(2 * np.pi * 1000 * n / 16000) * 8000, 16000))
        stereo = out.reshape(-1, 2)
        assert (stereo[:, 0] == stereo[:, 1]).all()
        total += stereo.shape[0]
        spectrum.add(stereo[:, 0].astype(np.float32) / 32768, RATE)
    assert abs(total - 50 * 960) <= 96  # the resampler's own delay
    assert spectrum.dominant_hz() == pytest.approx(1000, abs=3)
    # a change of input format rebuilds the resampler instead of failing
    out = convert.convert(frame_of(np.zeros(1920), RATE, "stereo"))
    assert out.size == 1920


def test_spectrum_finds_the_tone_and_mono_mixes_packed_stereo() -> None:
    n = np.arange(RATE)
    wave = (np.sin(2 * np.pi * 660 * n / RATE) * 6000).astype(np.int16)
    stereo = np.repeat(wave, 2)
    stats = ReceiveStats("audio")
    for i in range(50):
        frame = frame_of(stereo[i * 1920:(i + 1) * 1920], RATE, "stereo")
        mono = mono_samples(frame)
        assert mono.shape == (960,)
        stats.add(at=i * 0.02, level=0.1)
        stats.spectrum.add(mono, RATE)
    assert stats.summary()["dominant_hz"] == pytest.approx(660, abs=2)
    stats.reset()
    assert stats.summary()["dominant_hz"] is None


def test_device_choice_from_the_command_line() -> None:
    assert resolve_devices(None, None, False, synthetic_source=False) == ("default", "default")
    assert resolve_devices(None, None, False, synthetic_source=True) == (TONE, OFF)
    assert resolve_devices("plughw:1", None, False, synthetic_source=True) == ("plughw:1", OFF)
    assert resolve_devices(None, "hw:0", True, synthetic_source=False) == ("default", OFF)
    args = parse_args(["--server", "http://127.0.0.1:9", "--token-file", "t",
                       "--mic", "usbmic", "--speaker", "usbspk"])
    audio = audio_from_args(args)
    assert audio.mic == "usbmic" and audio.speaker.device == "usbspk"
    args = parse_args(["--server", "http://127.0.0.1:9", "--token-file", "t", "--no-audio-out"])
    assert audio_from_args(args).speaker.device is None


# --- devices ----------------------------------------------------------------------------


@pytest.fixture
def alsa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AlsaFiles:
    files = make_alsa_files(tmp_path, mic_hz=1000.0, seconds=20.0)
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(files.config))
    return files


async def test_a_missing_microphone_sends_silence_and_says_so_plainly(alsa: AlsaFiles) -> None:
    audio = KioskAudio("tsunagu_no_such_mic", OFF)
    await audio.check_async()
    assert audio.mic_problem is not None and audio.notices() == (MIC_PROBLEM,)
    track = audio.make_track()
    assert isinstance(track, MicrophoneTrack)
    started = time.monotonic()
    frames = [await track.recv() for _ in range(25)]  # the call goes on: 20 ms frames
    elapsed = time.monotonic() - started
    track.stop()
    assert 0.4 < elapsed < 1.5
    assert all(not f.to_ndarray().any() for f in frames)
    assert track.problem is not None and "cannot open" in track.problem
    assert not track.ok and track.silent_frames == 25
    assert audio.notices() == (MIC_PROBLEM,)
    summary = audio.summary()
    assert summary["mic"]["ok"] is False and summary["notices"] == [MIC_PROBLEM[1]]
    assert "interpreter cannot hear you" in MIC_PROBLEM[1]
    assert "Sign language" in MIC_PROBLEM[1]


async def test_a_missing_speaker_drops_audio_and_says_so(alsa: AlsaFiles) -> None:
    audio = KioskAudio(OFF, "tsunagu_no_such_speaker")
    audio.start()
    try:
        await audio.check_async()
        tone = ToneAudioTrack(freq=660.0)
        for _ in range(10):
            audio.play(await tone.recv())
        assert audio.speaker.problem is not None and not audio.speaker.ok
        assert audio.notices() == (SPEAKER_PROBLEM,)
    finally:
        await asyncio.to_thread(audio.stop)
    assert audio.speaker.frames_played == 0


def test_the_screen_shows_audio_notices_during_a_call_and_at_home() -> None:
    tf = Typeface.default()
    plain, _ = render(View(state=ScreenState.IN_CALL), tf, (640, 360))
    told, _ = render(View(state=ScreenState.IN_CALL, advice=(MIC_PROBLEM,)), tf, (640, 360))
    assert (plain != told).any()  # the notice is drawn over the video area
    home, _ = render(View(state=ScreenState.HOME, advice=(SPEAKER_PROBLEM,)), tf, (640, 360))
    bare, _ = render(View(state=ScreenState.HOME), tf, (640, 360))
    assert (home != bare).any()


async def test_microphone_and_speaker_on_alsa_file_devices(alsa: AlsaFiles) -> None:
    """A 1 kHz tone in the mic file comes out of the track; a 660 Hz tone fed to the speaker
    lands in the speaker file, with the device delay bounded."""
    mic = MicrophoneTrack("tsunagu_mic")
    speaker = Speaker("tsunagu_speaker")
    speaker.start()
    far_end = ToneAudioTrack(freq=660.0)
    sent = Spectrum()
    try:
        for _ in range(100):  # 2 s
            frame = await mic.recv()
            sent.add(mono_samples(frame), RATE)
            speaker.feed(await far_end.recv())
    finally:
        mic.stop()
        await asyncio.sleep(0.1)
        await asyncio.to_thread(speaker.stop)
    assert mic.ok and mic.silent_frames <= 10, mic.summary()  # of 100: start-up, busy machine
    assert sent.dominant_hz() == pytest.approx(1000, abs=3)
    summary = speaker.summary()
    assert speaker.ok and summary["frames_played"] >= 95, summary
    played = read_speaker(alsa.speaker)
    assert played.shape[0] >= 95 * 960
    assert tone(played).dominant_hz() == pytest.approx(660, abs=3)
    assert math.sqrt(float(np.mean(played.astype(np.float64) ** 2))) / 32768 > 0.05


class _Welcome:
    welcome: dict[str, object] = {"languages": []}


async def test_the_windowed_kiosk_shows_a_missing_microphone_at_home_and_in_a_call(
        alsa: AlsaFiles) -> None:
    from kiosk_client.display import Display, WindowedKiosk
    from kiosk_client.session import KioskSession

    audio = KioskAudio("tsunagu_no_such_mic", OFF)
    await audio.check_async()
    session = KioskSession(_Welcome(), make_tracks=list)  # type: ignore[arg-type]
    display = Display((1280, 720), fullscreen=False, on_input=lambda _: None)
    kiosk = WindowedKiosk(session, display, None, asyncio.Queue())
    kiosk.audio_notices = audio.notices
    kiosk.advice = (("カメラ", "Camera advice"),)
    kiosk.publish()
    assert display.view.advice == (("カメラ", "Camera advice"), MIC_PROBLEM)
    session.state = ScreenState.IN_CALL
    kiosk.publish()
    assert display.view.advice == (MIC_PROBLEM,)  # camera advice is for the home screen
