"""deploy/lab: the interface outside tools rely on, the networks, the edge, and a Redis
failover that signaling and relays follow by themselves."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.deploy.lab import ADDR, LAB, Lab, clean_env

pytestmark = pytest.mark.timeout(300)
NAMESPACES = ["dc1", "dc2", "dc3", "edge", "ward", "home", "strict"]


def test_up_prints_the_interface(lab: Lab) -> None:
    info = lab.info
    assert info["base_url"] == "https://tsunagu.lab.test"
    assert info["namespaces"] == NAMESPACES
    assert Path(info["ca_file"]).is_absolute() and Path(info["ca_file"]).is_file()
    assert "BEGIN CERTIFICATE" in Path(info["ca_file"]).read_text()
    assert Path(info["env_file"]).is_absolute()
    assert lab.env["REDIS_URL"].startswith("redis+sentinel://")
    assert lab.env["REDIS_URL"].endswith("/tsunagu/0")
    assert len(lab.env["TSUNAGU_SECRET"]) >= 32
    assert info["redis_url"] == ("redis+sentinel://198.18.1.2:26379,198.18.2.2:26379,"
                                 "198.18.3.2:26379/tsunagu/0")
    assert Path(info["env_file"]).stat().st_mode & 0o077 == 0


def test_exec_keeps_streams_environment_directory_and_exit_code(lab: Lab, tmp_path: Path
                                                                 ) -> None:
    env = dict(clean_env(), LAB_TEST_VALUE="kept")
    (tmp_path / "here.txt").write_text("a file of the caller\n")
    result = subprocess.run(
        [str(LAB / "exec"), "ward", "sh", "-c",
         'cat; echo "$LAB_TEST_VALUE"; cat here.txt; getent hosts tsunagu.lab.test; exit 7'],
        input="from stdin\n", capture_output=True, text=True, cwd=tmp_path, env=env,
        timeout=30)
    assert result.returncode == 7
    lines = result.stdout.splitlines()
    assert lines[:3] == ["from stdin", "kept", "a file of the caller"]
    assert lines[3].split() == ["198.18.4.2", "tsunagu.lab.test"]
    # Each namespace has its own address; the machine's real interfaces are not there.
    for ns, address in (("dc1", "198.18.1.2"), ("home", "198.19.6.2"),
                        ("strict", "198.19.7.2")):
        out = lab.run(ns, "ip", "-4", "-o", "addr", "show").stdout
        assert f"inet {address}/24" in out
        assert {line.split()[1] for line in out.splitlines()} == {"lo", "eth0"}


def test_exec_sees_the_lab_processes(lab: Lab) -> None:
    pid = lab.pid_listening("dc1", 8080)
    cmdline = lab.run("dc1", "cat", f"/proc/{pid}/cmdline").stdout.replace("\0", " ")
    assert "tsunagu signaling --host 198.18.1.2" in cmdline
    assert lab.run("dc1", "kill", "-0", str(pid)).returncode == 0


def test_admin_commands_through_exec(lab: Lab) -> None:
    token = lab.run("dc1", "tsunagu", "admin", "add-kiosk", "lab-k1", "--ward", "chuo",
                    "--counter", "1").stdout.strip()
    assert token.count(".") == 2  # a JWT on standard output, nothing else
    assert lab.run("dc2", "tsunagu", "admin", "revoke-kiosk", "lab-k1").returncode == 0


@pytest.mark.parametrize("ns", ["dc1", "dc2", "dc3"])
def test_each_sentinel_answers_in_its_namespace(lab: Lab, ns: str) -> None:
    fields = lab.sentinel(ns, "sentinel", "master", "tsunagu").split()
    state = dict(zip(fields[::2], fields[1::2], strict=True))
    assert state["ip"] == "198.18.1.2" and state["quorum"] == "2"
    assert int(state["down-after-milliseconds"]) <= 5000
    assert state["num-other-sentinels"] == "2" and state["num-slaves"] == "2"
    # Without the password a Sentinel refuses.
    out = lab.run(ns, "redis-cli", "-h", ADDR[ns], "-p", "26379", "ping", check=False)
    assert "NOAUTH" in out.stdout + out.stderr


def _peer_seen_by_dc3(lab: Lab, ns: str) -> str:
    """The source address dc3 sees when ``ns`` connects to it (through NAT, for home)."""
    listener = subprocess.Popen(
        [str(LAB / "exec"), "dc3", "python3", "-c",
         "import socket; s = socket.create_server(('198.18.3.2', 9911)); "
         "c, a = s.accept(); print(a[0], flush=True)"],
        stdout=subprocess.PIPE, text=True, env=clean_env())
    try:
        deadline = time.monotonic() + 10
        while lab.run(ns, "python3", "-c", "import socket; socket.create_connection("
                      "('198.18.3.2', 9911), timeout=1)", check=False).returncode != 0:
            assert time.monotonic() < deadline, "dc3 not reachable"
            time.sleep(0.2)
        out, _ = listener.communicate(timeout=10)
        return out.strip()
    finally:
        listener.kill()


def test_home_goes_out_through_its_nat_router(lab: Lab) -> None:
    assert _peer_seen_by_dc3(lab, "home") == ADDR["homegw"]
    assert _peer_seen_by_dc3(lab, "ward") == ADDR["ward"]
    # Nothing routes to home's own network: it is reachable only through its router's NAT.
    assert lab.run("dc1", "ping", "-c1", "-W1", "198.19.6.2", check=False).returncode != 0


def test_strict_reaches_only_tcp_443_of_edge(lab: Lab) -> None:
    ca = lab.info["ca_file"]
    ok = lab.run("strict", "curl", "-sf", "-m", "5", "--cacert", ca,
                 "https://tsunagu.lab.test/readyz")
    assert json.loads(ok.stdout) == {"ready": True}
    tls = lab.run("strict", "openssl", "s_client", "-connect", "turn.lab.test:443",
                  "-servername", "turn.lab.test", "-CAfile", ca, "-verify_return_error",
                  "-brief", input="")
    assert "Verification: OK" in tls.stderr + tls.stdout
    for url in ("http://tsunagu.lab.test/", "http://198.18.1.2:8081/healthz"):
        assert lab.run("strict", "curl", "-s", "-m", "2", url, check=False).returncode != 0
    assert _stun_answers(lab, "strict") is False  # UDP 3478 is blocked
    assert _stun_answers(lab, "home") is True


STUN_PROBE = """
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.5)
tid = os.urandom(12)
s.sendto(bytes.fromhex("000100002112a442") + tid, ("198.18.4.3", 3478))
try:
    reply = s.recv(1500)
except OSError:
    sys.exit(3)
sys.exit(0 if reply[:2] == bytes.fromhex("0101") and reply[8:20] == tid else 4)
"""


def _stun_answers(lab: Lab, ns: str) -> bool:
    """Whether coturn answers a STUN binding request over UDP 3478 from ``ns``."""
    code = lab.run(ns, "python3", "-c", STUN_PROBE, check=False).returncode
    assert code in (0, 3), code
    return code == 0


def test_edge_tls_headers_redirect_metrics_and_login_limit(lab: Lab) -> None:
    ca = lab.info["ca_file"]
    base = ["curl", "-s", "--cacert", ca, "-o", "/dev/null"]
    head = lab.run("ward", "curl", "-sI", "--cacert", ca, "https://tsunagu.lab.test/kiosk")
    assert "strict-transport-security: max-age=31536000" in head.stdout.lower()
    redirect = lab.run("ward", *base, "-w", "%{http_code} %{redirect_url}",
                       "http://tsunagu.lab.test/kiosk?x=1").stdout
    assert redirect == "301 https://tsunagu.lab.test/kiosk?x=1"
    assert lab.run("ward", *base, "-w", "%{http_code}",
                   "https://tsunagu.lab.test/metrics").stdout == "404"
    # The node itself answers /metrics only on loopback or with TSUNAGU_METRICS_TOKEN (unset
    # in the lab): a request from the private network is refused (PROTOCOL.md section 13).
    assert lab.run("dc1", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                   "http://198.18.1.2:8080/metrics").stdout == "401"
    old = lab.run("ward", "openssl", "s_client", "-connect", "tsunagu.lab.test:443",
                  "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", input="", check=False)
    assert old.returncode != 0
    codes = lab.run("ward", "sh", "-c", "for i in $(seq 14); do curl -s -o /dev/null "
                    f"-w '%{{http_code}} ' --cacert {ca} -X POST -H 'Content-Type: "
                    "application/json' -d '{}' https://tsunagu.lab.test/api/login; done"
                    ).stdout.split()
    assert "429" in codes and codes[0] != "429", codes


def test_signaling_and_relays_follow_a_redis_failover(lab: Lab) -> None:
    """Kill the Redis primary (kill -9 in dc1): the Sentinels promote a replica, and both
    signaling nodes and both relays work against it without being restarted."""
    assert lab.primary() == "dc1"
    redis_pid = lab.pid_listening("dc1", 6379)
    killed_ms = time.time() * 1000
    started = time.monotonic()
    lab.run("dc1", "kill", "-9", str(redis_pid))
    marks: dict[str, float] = {}

    def mark(name: str, ok: bool) -> None:
        if ok:  # the time the check passed, measured after it
            marks[name] = round(time.monotonic() - started, 2)

    deadline = started + 60
    while len(marks) < 4:
        assert time.monotonic() < deadline, f"not recovered within 60 s: {marks}"
        if "promoted" not in marks:
            mark("promoted", lab.primary() != "dc1")
        if "signaling" not in marks:
            mark("signaling", all(
                lab.run(dc, "curl", "-sf", "-m", "2", f"http://{ADDR[dc]}:8080/readyz",
                        check=False).returncode == 0 for dc in ("dc1", "dc2")))
        if "write" not in marks:
            mark("write", lab.run("dc2", "tsunagu", "admin", "add-kiosk", "after-failover",
                                  "--ward", "chuo", "--counter", "2",
                                  check=False).returncode == 0)
        if "relays" not in marks and "promoted" in marks:
            primary = lab.primary()
            scores = [lab.run(primary, "redis-cli", "-h", ADDR[primary], "--user", "operator",
                              "--pass", lab.env["TSUNAGU_REDIS_OPERATOR_PASSWORD"],
                              "--no-auth-warning", "zscore", "{tsunagu}:relays", relay,
                              check=False).stdout.strip()
                      for relay in ("relay-dc1", "relay-dc2")]
            mark("relays", all(s and float(s) > killed_ms for s in scores))
        time.sleep(0.25)
    print("failover marks (s after kill -9):", json.dumps(marks))
    assert lab.primary() in ("dc2", "dc3")
    assert marks["write"] < 30 and marks["signaling"] < 30 and marks["relays"] < 30
