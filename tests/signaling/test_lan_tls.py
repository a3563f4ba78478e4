"""A LAN trial without a proxy (issue 12, item 5): ``tsunagu admin make-lan-cert`` makes a
local CA (kept) and a server certificate; a real ``tsunagu up --tls-cert --tls-key`` serves
HTTPS and WSS with it; a Python client trusting the CA signs in over ``wss://``, one that
does not is refused; Chromium trusting the CA through an NSS database (no certificate error
ignored) loads /kiosk as a secure context, with the camera API."""

from __future__ import annotations

import signal
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from playwright.sync_api import sync_playwright

from signaling import lan_cert
from tests.signaling.test_cli import CLI, admin, env_without_secret
from tsunagu.client import SignalingClient, login, trusting
from tsunagu.redis_server import free_port

NAME = "tsunagu-lan.test"
HOSTS = (NAME, "127.0.0.1")
PASSWORD = "a-long-password"


def make_lan_cert(out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "admin", "make-lan-cert", "--host", *HOSTS, "--out", str(out)],
                          capture_output=True, text=True, timeout=60)


def test_make_lan_cert_keeps_its_ca_and_says_how_to_install_it(tmp_path: Path) -> None:
    out = tmp_path / "tls"
    first = make_lan_cert(out)
    assert first.returncode == 0, first.stderr
    ca_before = (out / "ca.crt").read_bytes()
    cert_before = (out / "server.crt").read_bytes()
    for key in ("ca.key", "server.key"):
        assert (out / key).stat().st_mode & 0o777 == 0o600
    words = first.stdout
    for what in ("iPad", "Android", "Windows", "Certificate Trust Settings",
                 "Trusted Root Certification Authorities", f"https://{NAME}:8080/kiosk",
                 "--tls-cert", "(new)"):
        assert what in words, what
    again = make_lan_cert(out)
    assert again.returncode == 0, again.stderr
    assert "kept from before" in again.stdout
    assert (out / "ca.crt").read_bytes() == ca_before  # tablets that trust it keep trusting
    assert (out / "server.crt").read_bytes() != cert_before
    cert = x509.load_pem_x509_certificate((out / "server.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [NAME]
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    ca = x509.load_pem_x509_certificate(ca_before)
    cert.verify_directly_issued_by(ca)
    ctx = lan_cert.server_context(out / "server.crt", out / "server.key")
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


@dataclass
class Up:
    port: int
    data: Path
    ca: Path

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def _wait_ok(url: str, proc: subprocess.Popen[bytes], log_path: Path,
             ctx: ssl.SSLContext | None) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log_path.read_text()[-3000:]
        try:
            with urllib.request.urlopen(url, timeout=1, context=ctx) as r:
                if r.status == 200:
                    return
        except OSError:
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.3)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """``tsunagu up --host 0.0.0.0 --tls-cert --tls-key`` (as for a LAN trial) with a
    certificate from make-lan-cert."""
    tmp = tmp_path_factory.mktemp("lan")
    tls, data = tmp / "tls", tmp / "var"
    assert make_lan_cert(tls).returncode == 0
    port, relay_port = free_port(), free_port()
    log_path = tmp / "up.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([*CLI, "up", "--host", "0.0.0.0", "--data-dir", str(data),
                                 "--port", str(port), "--relay-port", str(relay_port),
                                 "--tls-cert", str(tls / "server.crt"),
                                 "--tls-key", str(tls / "server.key")],
                                stdout=log, stderr=log, env=env_without_secret())
    ctx = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    try:
        _wait_ok(f"https://127.0.0.1:{port}/readyz", proc, log_path, ctx)
        assert f"tsunagu is up at https://0.0.0.0:{port}." in log_path.read_text()
        # the relay's control API: loopback, plain HTTP
        _wait_ok(f"http://127.0.0.1:{relay_port}/healthz", proc, log_path, None)
        # admin commands use the Redis that `up` runs for the data directory
        done = admin(data, "add-user", "alice", "--role", "interpreter", "--languages", "jsl",
                     "--password-stdin", stdin=PASSWORD + "\n")
        assert done.returncode == 0, done.stderr
        yield Up(port, data, tls / "ca.crt")
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    assert code == 0, log_path.read_text()[-3000:]


async def test_python_clients_sign_in_over_wss_trusting_the_ca(up: Up) -> None:
    trust = trusting(str(up.ca))
    token = await login(up.base, "alice", PASSWORD, ssl=trust)
    interp = SignalingClient(f"wss://127.0.0.1:{up.port}/ws", token, reconnect=False, ssl=trust)
    kiosk_token = admin(up.data, "add-kiosk", "k-lan", "--ward", "北区", "--counter", "1")
    assert kiosk_token.returncode == 0, kiosk_token.stderr
    kiosk = SignalingClient(f"wss://127.0.0.1:{up.port}/ws", kiosk_token.stdout.strip(),
                            reconnect=False, ssl=trust)
    try:
        assert (await interp.connect())["type"] == "welcome"
        assert (await kiosk.connect())["type"] == "welcome"
    finally:
        await interp.close()
        await kiosk.close()
    stranger = SignalingClient(f"wss://127.0.0.1:{up.port}/ws", token, reconnect=False,
                               ssl=ssl.create_default_context())  # the system CAs only
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await stranger.connect()
    await stranger.close()


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_chromium_trusting_the_ca_gets_the_camera_api(up: Up, tmp_path: Path) -> None:
    nssdb = tmp_path / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "tsunagu-lan",
                    "-i", str(up.ca)], check=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
            args=["--no-sandbox", "--use-fake-ui-for-media-stream",
                  "--use-fake-device-for-media-stream", "--disable-background-networking",
                  "--disable-gpu", f"--host-resolver-rules=MAP {NAME} 127.0.0.1"])
        try:
            page = browser.new_page()
            response = page.goto(f"https://{NAME}:{up.port}/kiosk")
            assert response is not None and response.ok
            secure = page.evaluate("() => [window.isSecureContext,"
                                   " typeof navigator.mediaDevices?.getUserMedia]")
            assert secure == [True, "function"]
        finally:
            browser.close()


def test_half_a_tls_pair_is_refused(tmp_path: Path) -> None:
    result = subprocess.run([*CLI, "up", "--data-dir", str(tmp_path), "--tls-cert",
                             str(tmp_path / "x.crt")], capture_output=True, text=True,
                            timeout=60, env=env_without_secret())
    assert result.returncode == 2
    assert "--tls-cert and --tls-key go together" in result.stderr
