"""The container image (issue 12, item 7): deploy/container/build makes it with buildah
(--isolation chroot) from a debootstrap base and fetched wheels, offline; compose.yaml runs
Redis, a signaling node and a relay from it (podman-compose, runc), and they answer: the
node reaches its Redis, an account made inside the container signs in, nothing runs as
root. deploy/container/fetch (scripts/bootstrap lab runs it) must have fetched the inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.deploy.lab import REPO
from tsunagu.redis_server import free_port

pytestmark = pytest.mark.timeout(400)
COMPOSE = [str(Path(sys.executable).with_name("podman-compose")), "-p", "tsunagu-test",
           "-f", str(REPO / "deploy" / "container" / "compose.yaml")]
PASSWORD = "container password"


def _get(url: str, within_s: float = 60, data: bytes | None = None) -> dict[str, object]:
    deadline = time.monotonic() + within_s
    while True:
        try:
            req = urllib.request.Request(url, data=data,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=2) as r:
                return dict(json.loads(r.read()))
        except OSError:
            assert time.monotonic() < deadline, f"{url} did not answer in {within_s} s"
            time.sleep(0.5)


def test_image_builds_and_compose_runs_the_service(tmp_path: Path) -> None:
    started = time.monotonic()
    built = subprocess.run([str(REPO / "deploy" / "container" / "build")], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    image = built.stdout.strip().splitlines()[-1]
    assert image.startswith("localhost/tsunagu:"), built.stdout
    print(f"image {image} built in {time.monotonic() - started:.0f} s")

    conf = tmp_path / "containers.conf"
    conf.write_text('[engine]\nruntime = "runc"\n')  # crun 1.8 refuses hybrid cgroups
    port, relay_port, redis_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TSUNAGU_SECRET")}
    env.update(CONTAINERS_CONF=str(conf), TSUNAGU_SECRET="container-test-secret-0123456789abc",
               TSUNAGU_PORT=str(port), TSUNAGU_RELAY_PORT=str(relay_port),
               TSUNAGU_REDIS_PORT=str(redis_port), TSUNAGU_ICE_ADDRESSES="127.0.0.1")
    up = subprocess.run([*COMPOSE, "up", "-d"], env=env, capture_output=True, text=True,
                        timeout=120)
    try:
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        assert _get(f"http://127.0.0.1:{port}/readyz") == {"ready": True}  # Redis reached
        assert _get(f"http://127.0.0.1:{relay_port}/healthz")["ok"] is True
        exec_ = ["podman", "exec", "-i", "tsunagu-test_signaling_1"]
        made = subprocess.run([*exec_, "tsunagu", "admin", "add-user", "kana", "--role",
                               "interpreter", "--languages", "jsl", "--password-stdin"],
                              input=PASSWORD + "\n", env=env, capture_output=True, text=True,
                              timeout=60)
        assert made.returncode == 0, made.stderr
        body = json.dumps({"username": "kana", "password": PASSWORD}).encode()
        assert "token" in _get(f"http://127.0.0.1:{port}/api/login", data=body)
        for service in ("redis", "signaling", "relay"):
            uid = subprocess.run(["podman", "exec", f"tsunagu-test_{service}_1", "id", "-u"],
                                 env=env, capture_output=True, text=True, timeout=30)
            assert uid.stdout.strip() not in ("", "0"), (service, uid.stderr)
    finally:
        down = subprocess.run([*COMPOSE, "down", "-v"], env=env, capture_output=True,
                              text=True, timeout=120)
    assert down.returncode == 0, down.stderr[-2000:]
    left = subprocess.run(["podman", "ps", "-aq", "--filter", "label=io.podman.compose.project"
                           "=tsunagu-test"], env=env, capture_output=True, text=True)
    assert left.stdout.strip() == ""
