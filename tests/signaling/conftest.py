"""Fixtures for routing tests: a Router on the session's real Redis, and a fake clock."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from signaling.routing import Router
from tests.conftest import TEST_SECRET
from tsunagu.settings import SignalingSettings

T0 = 1_800_000_000_000


@pytest.fixture
def settings() -> SignalingSettings:
    return SignalingSettings(secret=TEST_SECRET, offer_timeout_s=20, wrapup_s=15,
                             urgent_boost_s=600, max_wait_s=1800, kiosk_grace_s=20,
                             call_grace_s=30, interp_grace_s=30)


@pytest.fixture
async def router(redis: aioredis.Redis, settings: SignalingSettings) -> Router:
    r = Router(redis, settings)
    await r.configure()
    return r
