"""Receive statistics: fps, latency percentiles, skipped frames, audio level."""

from __future__ import annotations

from tsunagu.endpoint.meter import ReceiveStats, percentile


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def test_video_summary_counts_fps_latency_and_gaps() -> None:
    stats = ReceiveStats("video")
    for i in range(31):  # 31 frames over one second, counter 3 lost
        if i == 3:
            continue
        stats.add(at=100.0 + i / 30, latency_ms=10.0 + i, counter=i)
    summary = stats.summary()
    assert summary["frames"] == 30
    assert 28.0 < summary["fps"] < 30.0
    assert summary["skipped"] == 1
    assert summary["stamped"] == 30
    assert summary["latency_ms_p50"] == 25.0
    assert summary["latency_ms_p95"] == 39.0


def test_unstamped_frames_count_but_add_no_latency() -> None:
    stats = ReceiveStats("video")
    stats.add(at=1.0)
    stats.add(at=2.0)
    assert stats.summary()["frames"] == 2
    assert stats.summary()["latency_ms_p50"] is None


def test_audio_summary_has_mean_level() -> None:
    stats = ReceiveStats("audio")
    for i in range(50):
        stats.add(at=i * 0.02, level=0.1)
    summary = stats.summary()
    assert summary["mean_level"] == 0.1
    assert 49.0 < summary["fps"] < 51.0


def test_reset_forgets_the_warm_up() -> None:
    stats = ReceiveStats("video")
    stats.add(at=1.0, latency_ms=500.0, counter=1)
    stats.reset()
    stats.add(at=2.0, latency_ms=10.0, counter=5)
    assert stats.summary()["frames"] == 1 and stats.summary()["latency_ms_p95"] == 10.0
    assert stats.summary()["skipped"] == 0
