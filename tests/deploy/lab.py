"""The city lab as the tests see it: what deploy/lab/up printed, and deploy/lab/exec."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "deploy" / "lab"
ADDR = {"dc1": "198.18.1.2", "dc2": "198.18.2.2", "dc3": "198.18.3.2", "edge": "198.18.4.2",
        "turn": "198.18.4.3", "ward": "198.18.5.2", "homegw": "198.18.6.2",
        "strictgw": "198.18.7.2"}


@dataclass
class Lab:
    """What deploy/lab/up printed, and a way to run commands in its namespaces."""

    info: dict[str, Any]
    env: dict[str, str]

    def run(self, ns: str, *cmd: str, input: str | None = None, timeout: float = 30,
            check: bool = True, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        """``deploy/lab/exec NS CMD…``, its output captured as text."""
        result = subprocess.run([str(LAB / "exec"), ns, *cmd], input=input, text=True,
                                capture_output=True, timeout=timeout,
                                env=env if env is not None else clean_env())
        if check and result.returncode != 0:
            raise AssertionError(f"{ns}: {cmd} exited {result.returncode}: {result.stderr}")
        return result

    def sentinel(self, ns: str, *args: str) -> str:
        """A Sentinel command to the Sentinel of ``ns``, from inside ``ns``."""
        return self.run(ns, "redis-cli", "-h", ADDR[ns], "-p", "26379", "--no-auth-warning",
                        "-a", self.env["TSUNAGU_SENTINEL_PASSWORD"], *args).stdout

    def primary(self) -> str:
        """The namespace whose Redis the Sentinels name as the primary (asked of dc3's)."""
        address = self.sentinel("dc3", "sentinel", "get-master-addr-by-name",
                                "tsunagu").split()[0]
        return next(ns for ns, a in ADDR.items() if a == address)

    def pid_listening(self, ns: str, port: int) -> int:
        """The PID of the process listening on TCP ``port`` in ``ns`` (through ``ss -p``)."""
        out = self.run(ns, "ss", "-Htlnp", f"sport = :{port}").stdout
        return int(out.split("pid=")[1].split(",")[0])


def clean_env() -> dict[str, str]:
    """The caller's environment without the test suite's Redis settings (exec then reads the
    lab's own from its env_file)."""
    return {k: v for k, v in os.environ.items()
            if k not in ("REDIS_URL", "TSUNAGU_SECRET", "TSUNAGU_SENTINEL_PASSWORD",
                         "TSUNAGU_ICE_ADDRESSES", "TSUNAGU_ICE_SERVERS")}


def read_env_file(path: Path) -> dict[str, str]:
    """NAME=VALUE lines (values maybe in single quotes), comments skipped."""
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            values[name] = value[1:-1] if value[:1] == "'" == value[-1:] else value
    return values
