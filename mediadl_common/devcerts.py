"""Development certificates: `python -m mediadl_common.devcerts --out deploy/tls` writes a CA and server and
client certificates signed by it (the TLS variant of docker-compose uses them; the tests make theirs here too).

For production use certificates from your own PKI; these are for trying TLS and mTLS out, and they expire
after 30 days (leaves after 7 unless `--days`).
"""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, written as PEM files."""

    cert_file: Path
    key_file: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Issued:
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Issued(cert_file, key_file)


class CertificateAuthority:
    """A certificate authority in `directory`; `ca_file` is what clients (or mTLS servers) trust."""

    def __init__(self, directory: Path, name: str = "mediadl development CA", days: int = 30) -> None:
        self.directory = directory
        self._key = _key()
        now = datetime.now(UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca_file = _write(directory, "ca", self._cert, self._key).cert_file

    def issue(
        self, stem: str, *, server: bool = True, expired: bool = False, hosts: tuple[str, ...] = (), days: int = 7
    ) -> Issued:
        """A leaf for 127.0.0.1, localhost and `hosts` (server) or a client; `expired` ended yesterday."""
        key = _key()
        now = datetime.now(UTC)
        start, end = (
            (now - timedelta(days=10), now - timedelta(days=1))
            if expired
            else (now - timedelta(hours=1), now + timedelta(days=days))
        )
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(stem))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            names: list[x509.GeneralName] = [
                *(x509.DNSName(host) for host in ("localhost", *hosts)),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return _write(self.directory, stem, builder.sign(self._key, hashes.SHA256()), key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mediadl_common.devcerts", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("deploy/tls"), help="directory (default deploy/tls)")
    parser.add_argument("--days", type=int, default=7, help="validity of the leaf certificates (default 7)")
    parser.add_argument("--host", action="append", default=["auth", "download"], help="extra server name (repeatable)")
    args = parser.parse_args(argv)
    ca = CertificateAuthority(args.out, days=max(30, args.days))
    hosts = tuple(args.host)
    for stem in ("auth", "download"):
        ca.issue(stem, hosts=hosts, days=args.days)
    ca.issue("client", server=False, days=args.days)
    for key_file in args.out.glob("*.key"):
        key_file.chmod(0o600)
    print(f"wrote ca.pem, auth.pem/.key, download.pem/.key and client.pem/.key into {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
