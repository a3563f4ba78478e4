"""Relay test fixtures: WebRTC tests must run in a loopback-only network namespace."""

from __future__ import annotations

import fcntl
import socket
import struct
from pathlib import Path

import pytest

from relay.rtc_internals import install_early_frame_release, restrict_ice_addresses

IFF_UP = 0x1
SIOCGIFFLAGS = 0x8913


def non_loopback_interfaces_up() -> list[str]:
    """Interfaces of this network namespace, other than lo, that are up."""
    lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    names = [line.split(":", 1)[0].strip() for line in lines]
    up = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for name in names:
            if name == "lo":
                continue
            request = struct.pack("16sH14x", name.encode()[:15], 0)
            flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
            if flags & IFF_UP:
                up.append(name)
    return up


@pytest.fixture(autouse=True)
def _loopback_only(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("webrtc") is None:
        return
    up = non_loopback_interfaces_up()
    if up:
        pytest.fail(
            f"WebRTC test with non-loopback interfaces up ({', '.join(up)}); run under "
            "`unshare -n sh -c 'ip link set lo up && .venv/bin/python -m pytest tests/relay'`",
            pytrace=False,
        )
    restrict_ice_addresses(["127.0.0.1"])
    install_early_frame_release()
