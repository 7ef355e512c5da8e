"""HTTPS: the server's SSL context, and a self-signed certificate for the device's names.

``facegate cert`` writes a self-signed pair (ECDSA P-256, the key mode 0600) whose subject alternative
names are the device's host name, ``<host>.local`` (mDNS), ``localhost``, the loopback addresses and
whatever names and addresses are given. Clients trust it by pinning the certificate file (curl
--cacert, Home Assistant's verify_ssl with the file in its trust store); a certificate from a real CA
needs no change here: point tls.cert_file / tls.key_file at it.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import socket
import ssl
from collections.abc import Iterable
from pathlib import Path

from daemon.config import Config
from daemon.errors import ConfigError
from daemon.ops.private_files import check_private, write_private
from daemon.services.tokens import is_loopback

log = logging.getLogger(__name__)


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context from PEM files; ConfigError for a missing, open or unusable pair."""
    for path in (cert_file, key_file):
        if not path.is_file():
            raise ConfigError(f"TLS file {path} does not exist (make a pair with 'facegate cert')")
    check_private(key_file)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"cannot use the TLS pair {cert_file} / {key_file}: {exc}") from exc
    return context


def device_names() -> list[str]:
    host = socket.gethostname().split(".")[0] or "facegate"
    return [host, f"{host}.local", "localhost"]


def make_self_signed(
    cert_file: Path,
    key_file: Path,
    names: Iterable[str],
    addresses: Iterable[str],
    days: int,
) -> list[str]:
    """Write a self-signed certificate and its key; the subject alternative names it holds."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    dns = list(dict.fromkeys([*device_names(), *names]))
    try:
        ips = list(dict.fromkeys(ipaddress.ip_address(a) for a in ["127.0.0.1", "::1", *addresses]))
    except ValueError as exc:
        raise ConfigError(f"not an IP address: {exc}") from None
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0])])
    now = datetime.datetime.now(datetime.UTC)
    san = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ip) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(key_file, key_pem.decode("ascii"))
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return dns + [str(ip) for ip in ips]


def listener_tls(config: Config) -> ssl.SSLContext | None:
    """The listener's SSL context, or None for plain HTTP: warned about (or refused, with
    tls.plain_http: refuse) on a non-loopback address."""
    if config.tls.cert_file:
        return server_context(Path(config.tls.cert_file), Path(config.tls.key_file))
    host = config.server.host
    if not is_loopback(host):
        message = (
            f"plain HTTP on {host}: tokens and faces cross the network unencrypted; set tls.cert_file "
            "and tls.key_file ('facegate cert' makes a self-signed pair)"
        )
        if config.tls.plain_http == "refuse":
            raise ConfigError(f"refusing to start: {message} (tls.plain_http is 'refuse')")
        log.warning("!!! INSECURE: %s !!!", message)
    return None
