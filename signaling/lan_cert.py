"""HTTPS for a LAN trial without a proxy: a local CA and a server certificate, and the
server's TLS context.

A tablet's browser gives a page the camera only in a secure context (HTTPS, or
``localhost``), so a trial on a ward office's own network needs HTTPS even without nginx in
front. ``tsunagu admin make-lan-cert --host NAME…`` makes a CA once (kept and reused, so a
tablet that trusts it keeps trusting it) and a server certificate for the given names and
addresses; ``tsunagu up --tls-cert --tls-key`` serves with them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

CA_DAYS = 3650
SERVER_DAYS = 825  # Apple devices refuse a TLS server certificate valid for longer
CA_NAME = "tsunagu LAN trial CA"


@dataclass(frozen=True, slots=True)
class LanCert:
    """The files ``make`` wrote (and whether the CA was made now or reused)."""

    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path
    ca_reused: bool


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """The signaling server's TLS context: TLS 1.2 or newer, the given chain and key."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def san_entry(host: str) -> x509.GeneralName:
    """An IP address SAN for an address, a DNS name SAN otherwise."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host.lower())


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write a file created with ``mode`` (a key is never readable by others, even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _ca(out: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey, bool]:
    """The CA in ``out`` if there is one, else a new one written there."""
    cert_path, key_path = out / "ca.crt", out / "ca.key"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path} is not the EC key this command makes")
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), key, True
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key, False


def make(hosts: Sequence[str], out: Path) -> LanCert:
    """Make (or reuse) the CA in ``out`` and a new server certificate for ``hosts``."""
    if not hosts:
        raise ValueError("at least one --host is needed")
    out.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key, reused = _ca(out)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName([san_entry(h) for h in hosts]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False,
                                         False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = LanCert(out / "ca.crt", out / "ca.key", out / "server.crt", out / "server.key",
                    reused)
    _write(files.key, _key_pem(key), 0o600)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    log.info("server certificate for %s, signed by the %s CA", ", ".join(hosts),
             "existing" if reused else "new")
    return files


def instructions(files: LanCert, hosts: Sequence[str], port: int = 8080) -> str:
    """What to do next, in plain words: start the server, trust the CA on each device."""
    url = f"https://{hosts[0]}:{port}"
    ca = files.ca_cert
    made = "kept from before (devices that trust it need nothing new)" if files.ca_reused \
        else "new"
    return f"""\
Certificates written to {ca.parent}:
  {ca.name:<12} the local CA ({made}): install this one on every tablet and PC
  {files.ca_key.name:<12} the CA's key: keep it on this machine only, never copy it
  {files.cert.name:<12} the server certificate for {", ".join(hosts)}
  {files.key.name:<12} the server's key

Start the service with HTTPS (tablets allow the camera only over HTTPS):
  tsunagu up --host 0.0.0.0 --tls-cert {files.cert} --tls-key {files.key}

Then, on each device, install {ca.name} as a trusted certificate authority once. Copy the
file to the device (e-mail, a USB stick, a file share):

iPad:
  1. Open the file (from Mail or Files). It says "Profile Downloaded".
  2. Settings > General > VPN & Device Management > "{CA_NAME}" > Install.
  3. Settings > General > About > Certificate Trust Settings: turn on full trust for
     "{CA_NAME}". Without this step Safari still refuses the site.

Android tablet:
  Settings > Security (or Security & privacy) > More security settings > Encryption &
  credentials > Install a certificate > CA certificate > Install anyway > choose the file.
  (The names differ a little between makers; search Settings for "CA certificate".)
  Chrome then trusts the site.

Windows PC (interpreters' and supervisors' browsers):
  Double-click the file > Install Certificate > Local Machine > "Place all certificates in
  the following store" > Browse > Trusted Root Certification Authorities > Finish
  (or, as administrator: certutil -addstore -f Root {ca.name}).
  Edge and Chrome use it at once; restart them if they were open.

Then the tablets open {url}/kiosk (with their device token), interpreters
{url}/console and supervisors {url}/supervisor. Always use a name or address listed
above ({", ".join(hosts)}); any other one gives a certificate warning.
"""
