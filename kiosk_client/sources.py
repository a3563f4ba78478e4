"""The kiosk's media sources: fresh camera and microphone tracks for each call."""

from __future__ import annotations

from collections.abc import Callable

from aiortc.mediastreams import MediaStreamTrack

from kiosk_client.audio import KioskAudio
from kiosk_client.camera import Camera
from tsunagu.endpoint.tracks import SourceVideoTrack, SyntheticVideoTrack, ToneAudioTrack


def make_tracks_factory(camera: Camera | None, fps: float, audio: KioskAudio | None = None,
                        ) -> Callable[[], list[MediaStreamTrack]]:
    """A function making fresh (audio, video) tracks for each call (audio: the microphone)."""
    def make() -> list[MediaStreamTrack]:
        video: MediaStreamTrack
        if camera is None:
            video = SyntheticVideoTrack(fps=fps)
        else:
            video = SourceVideoTrack(camera, fps=fps)
        return [ToneAudioTrack() if audio is None else audio.make_track(), video]
    return make
