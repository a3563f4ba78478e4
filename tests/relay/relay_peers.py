"""Test endpoints: aiortc peers with synthetic tracks that count what they decode."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import numpy as np
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from av import VideoFrame

from tsunagu.rtc_internals import rtc_configuration
from tsunagu.tokens import mint_service_token


class MovingVideo(VideoStreamTrack):
    """320x240 frames whose content changes, so the encoder sends real deltas."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        img = np.zeros((240, 320, 3), dtype=np.uint8)
        x = (self.n * 4) % 300
        img[100:140, x:x + 20] = (255, 255, 255)
        self.n += 1
        frame = VideoFrame.from_ndarray(img, format="bgr24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class Peer:
    """One endpoint: sends audio+video, decodes and counts what it receives."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pc = RTCPeerConnection(rtc_configuration([]))
        self.pc.addTrack(AudioStreamTrack())
        self.pc.addTrack(MovingVideo())
        self.frames: dict[str, int] = {"audio": 0, "video": 0}
        self.last_video_at = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self.frames[track.kind] += 1
                if track.kind == "video":
                    self.last_video_at = time.monotonic()
                    assert frame.width == 320
        except Exception:  # MediaStreamError when the track ends
            return

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    def video_sender(self) -> Any:
        return next(s for s in self.pc.getSenders() if s.track and s.track.kind == "video")

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()


RELAY_IDS: dict[str, str] = {}  # control URL -> relay id, filled by the tests' start_relay


def service_headers(url: str, secret: bytes, call_id: str, party: str, method: str
                    ) -> dict[str, str]:
    """A one-time token for one request to the relay at ``url``."""
    token = mint_service_token(secret, relay_id=RELAY_IDS[url], call_id=call_id, party=party,
                               method=method)
    return {"Authorization": f"Bearer {token}"}


async def post_offer(session: aiohttp.ClientSession, url: str, secret: bytes, call_id: str,
                     party: str, sdp: str, modality: str = "sign") -> tuple[int, dict[str, Any]]:
    """POST an offer to the relay's control API; (status, JSON body)."""
    headers = service_headers(url, secret, call_id, party, "POST")
    async with session.post(f"{url}/v1/calls/{call_id}/legs/{party}", headers=headers,
                            json={"sdp": sdp, "language_modality": modality}) as resp:
        return resp.status, await resp.json()


async def connect(session: aiohttp.ClientSession, url: str, secret: bytes, call_id: str,
                  peer: Peer, party: str) -> None:
    """Offer ``peer`` as ``party`` and apply the relay's answer."""
    status, body = await post_offer(session, url, secret, call_id, party, await peer.offer())
    assert status == 200, body
    await peer.accept(body["sdp"])


async def wait_for(predicate: Any, within: float, what: str) -> None:
    """Poll ``predicate`` every 50 ms until true; fail with ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


__all__ = ["Peer", "connect", "post_offer", "wait_for"]
