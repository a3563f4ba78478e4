"""deploy/'s production files: the template renderer, nginx -t, systemd-analyze on the units,
and a sample environment file that no unit can start with."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from tsunagu.settings import ConfigError, load_secret

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def _render_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_render", DEPLOY / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _render_module().render


def test_render_fills_and_repeats_each_lines() -> None:
    template = "a @X@ b\n  server @NODES_EACH@ max_fails=1;\nend @X@@X@\n"
    out = render(template, {"X": "1", "NODES_EACH": "h1:1 h2:2"})
    assert out == "a 1 b\n  server h1:1 max_fails=1;\n  server h2:2 max_fails=1;\nend 11\n"


def test_render_refuses_missing_values_and_leaves_other_at_signs() -> None:
    with pytest.raises(KeyError, match="B"):
        render("@A@ @B@\n", {"A": "1"})
    assert render("user@host $var ${VAR} @lowercase@\n", {}) == \
        "user@host $var ${VAR} @lowercase@\n"


def _placeholders(path: Path) -> set[str]:
    return set(re.findall(r"@([A-Z][A-Z0-9_]*)@", path.read_text()))


def _tls_pair(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=tsunagu.lab.test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def test_nginx_accepts_the_rendered_config(tmp_path: Path) -> None:
    cert, key = _tls_pair(tmp_path)
    site = render((DEPLOY / "nginx/tsunagu.conf").read_text(), {
        "SERVER_NAME": "tsunagu.lab.test", "PUBLIC_ADDRESS": "127.0.0.1",
        "SIGNALING_NODES_EACH": "127.0.0.1:8080 127.0.0.1:8090",
        "TLS_CERT": str(cert), "TLS_KEY": str(key)})
    (tmp_path / "tsunagu.conf").write_text(site)
    main = render((DEPLOY / "lab/nginx-main.conf").read_text(), {"STATE_DIR": str(tmp_path)})
    (tmp_path / "nginx.conf").write_text(main)
    result = subprocess.run(["nginx", "-t", "-c", str(tmp_path / "nginx.conf"),
                             "-p", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    for needed in ("ssl_protocols TLSv1.2 TLSv1.3;", "Strict-Transport-Security",
                   "return 301 https://", "limit_req zone=tsunagu_login",
                   "limit_conn tsunagu_ws", "location = /metrics {\n        return 404;",
                   "proxy_set_header X-Forwarded-For $remote_addr;"):
        assert needed in site, needed
    assert "$proxy_add_x_forwarded_for" not in site  # never append what a client sent


def test_nginx_refuses_a_broken_config(tmp_path: Path) -> None:
    """The check above can fail: the same wrapper with a bad directive is refused."""
    (tmp_path / "tsunagu.conf").write_text("server { listen 127.0.0.1:443 sslx; }\n")
    main = render((DEPLOY / "lab/nginx-main.conf").read_text(), {"STATE_DIR": str(tmp_path)})
    (tmp_path / "nginx.conf").write_text(main)
    result = subprocess.run(["nginx", "-t", "-c", str(tmp_path / "nginx.conf"),
                             "-p", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode != 0


def _units(tmp: Path) -> list[Path]:
    """The units as instances, their /opt/tsunagu pointing at this checkout's virtualenv."""
    out = []
    for unit, port in (("tsunagu-signaling@.service", 8080), ("tsunagu-relay@.service", 8081)):
        text = (DEPLOY / "systemd" / unit).read_text().replace("/opt/tsunagu", str(REPO))
        path = tmp / unit.replace("@.", f"@{port}.")
        path.write_text(text)
        out.append(path)
    return out


def test_systemd_units_verify_cleanly_and_are_hardened(tmp_path: Path) -> None:
    assert (REPO / ".venv/bin/tsunagu").exists(), "scripts/bootstrap makes .venv"
    units = _units(tmp_path)
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, units)],
                            capture_output=True, text=True, cwd=tmp_path)
    # verify exits 0 even when it ignores a bad setting; it then says so on stderr.
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    for unit in units:
        text = unit.read_text()
        for setting in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                        "PrivateTmp=yes", "CapabilityBoundingSet=\n", "UMask=0077",
                        "User=tsunagu"):
            assert setting in text, (unit.name, setting)
        exposure = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                                   "--no-pager", str(unit)], capture_output=True, text=True,
                                  cwd=tmp_path)
        level = re.search(r"Overall exposure level for \S+: ([\d.]+)", exposure.stdout)
        assert level and float(level.group(1)) <= 2.5, exposure.stdout[-300:]
    assert "--public-url" in units[1].read_text()


def test_systemd_verify_reports_a_bad_setting(tmp_path: Path) -> None:
    unit = _units(tmp_path)[0]
    unit.write_text(unit.read_text().replace("NoNewPrivileges=yes", "NoNewPrivileges=maybe"))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert "NoNewPrivileges" in result.stderr or "boolean" in result.stderr


def test_sample_env_has_no_usable_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {}
    for line in (DEPLOY / "tsunagu.env").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value.strip("'")
    assert values["TSUNAGU_SECRET"] == "" and values["TSUNAGU_TURN_SECRET"] == ""
    assert values["TSUNAGU_SENTINEL_PASSWORD"] == ""
    assert "CHANGE-ME" in values["REDIS_URL"]
    assert values["REDIS_URL"].startswith("redis+sentinel://")
    monkeypatch.setenv("TSUNAGU_SECRET", values["TSUNAGU_SECRET"])
    with pytest.raises(ConfigError):
        load_secret(None, create=False)  # what `tsunagu signaling` and `relay` do at start


def test_every_template_placeholder_is_documented_or_filled_by_the_lab() -> None:
    up = (DEPLOY / "lab/up").read_text()
    for template in ("nginx/tsunagu.conf", "coturn/turnserver.conf", "redis/redis.conf",
                     "redis/sentinel.conf", "lab/nginx-main.conf"):
        for name in _placeholders(DEPLOY / template):
            assert f"{name}=" in up, (template, name)


def test_tools_present() -> None:
    """`scripts/bootstrap lab` installs these; the lab tests need every one."""
    for tool in ("nginx", "turnserver", "redis-sentinel", "iptables", "certutil",
                 "systemd-analyze", "openssl", "curl"):
        assert shutil.which(tool), f"{tool} missing: run scripts/bootstrap lab"
