"""Development certificates for mTLS between the services
(docs/security.md#mtls-between-the-services): a CA of its own and a certificate per identity, made
with `cryptography`.

    python -m common.devcerts DIR [--if-missing]     (`make certs` → data/certs/)

writes into DIR:

    ca.pem                         the CA's certificate (its private key is never written: once
                                   these are made, nobody can sign another certificate with it)
    gateway.pem, gateway-key.pem   one pair per identity; the certificate's common name is the
    order-service.pem, …           identity, and its subject alternative names are the names
    payment-service.pem, …         clients dial it by (compose's service names, localhost,
    shop.pem, shop-key.pem         127.0.0.1). `shop` is one identity for all three processes
                                   of `make run`, where any certificate of the CA may call.

For development and tests only: a production CA lives elsewhere (cert-manager, a vault). Keys
are ECDSA P-256, certificates valid for 825 days; private key files are mode 0600.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 825
# Identity → the names it is reached by (compose's service names with `_`, Kubernetes' with `-`).
IDENTITIES: dict[str, tuple[str, ...]] = {
    "gateway": ("gateway",),
    "order-service": ("order-service", "order_service", "localhost"),
    "payment-service": ("payment-service", "payment_service", "localhost"),
    "shop": ("shop", "localhost"),
}
_LOOPBACK = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
# A CA's key signs certificates and revocation lists, and nothing else (KeyUsage takes every flag).
_CA_USES = ("digital_signature", "key_cert_sign", "crl_sign")
_CA_KEY_USAGE = x509.KeyUsage(**{flag: flag in _CA_USES for flag in inspect.signature(x509.KeyUsage).parameters})
_BOTH_ENDS = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])


@dataclass(frozen=True)
class Issued:
    cert_pem: bytes
    key_pem: bytes


class Authority:
    """A CA in memory: it signs certificates for as long as the object lives."""

    def __init__(self, name: str = "shop development CA") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_CA_KEY_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, identity: str, names: Iterable[str] = ()) -> Issued:
        """A certificate for both ends of a connection (server and client), named `identity`."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        alternative: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys([identity, *names])]
        alternative += [x509.IPAddress(address) for address in _LOOPBACK]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
            .add_extension(_BOTH_ENDS, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return Issued(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, mode)


def write_all(directory: Path, identities: dict[str, tuple[str, ...]] = IDENTITIES) -> list[Path]:
    """A new CA and a certificate for each identity, into `directory`; returns what it wrote."""
    directory.mkdir(parents=True, exist_ok=True)
    authority = Authority()
    written = [directory / "ca.pem"]
    _write(written[0], authority.cert_pem, 0o644)
    for identity, names in identities.items():
        issued = authority.issue(identity, names)
        cert, key = directory / f"{identity}.pem", directory / f"{identity}-key.pem"
        _write(cert, issued.cert_pem, 0o644)
        _write(key, issued.key_pem, 0o600)
        written += [cert, key]
    return written


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m common.devcerts", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--if-missing", action="store_true", help="do nothing when DIR/ca.pem exists already")
    args = parser.parse_args()
    if args.if_missing and (args.directory / "ca.pem").exists():
        print(f"certificates in {args.directory} already; left as they are")
        return
    for path in write_all(args.directory):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
