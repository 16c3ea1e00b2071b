"""Mutual TLS between the services (docs/security.md#mtls-between-the-services): GRPC_TLS_CA,
GRPC_TLS_CERT, GRPC_TLS_KEY.

With all three set (PEM file paths) on a process, every gRPC connection it makes or takes is
mutual TLS: a server asks for a client certificate and refuses a connection without one, or
with one the CA did not sign (the handshake fails: the caller sees UNAVAILABLE); a client checks
the server's certificate against the CA and the name it dials (`order_service` for
`dns:///order_service:50051`; GRPC_TLS_SERVER_NAME overrides that name, for targets that are
addresses). With none set, gRPC is plaintext, as before. Which certificate may call what is
common/authz.py's business.

The files are read once at start: to rotate a certificate, restart the process (replicas one
at a time). Health checks that cannot present a certificate — Kubernetes' native gRPC probe,
compose's healthcheck — use the plaintext health-only port of common/health_port.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings


@dataclass(frozen=True)
class TlsFiles:
    """The PEM bytes of the CA, this process's certificate (chain) and its private key."""

    ca: bytes
    cert: bytes
    key: bytes = b""  # never shown: see __repr__
    server_name: str | None = None

    def __repr__(self) -> str:
        return f"TlsFiles(ca={len(self.ca)} bytes, cert={len(self.cert)} bytes, key=…)"

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key, self.cert)], root_certificates=self.ca, require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )

    def channel_options(self) -> list[tuple[str, Any]]:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []


def _read(variable: str, path: Path, marker: bytes) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{variable}: cannot read {path}: {exc.strerror or exc}") from None
    if marker not in data:
        raise ValueError(f"{variable}: {path} is not a PEM file with a {marker.decode()} block")
    return data


class TlsSettings(BaseSettings):
    """A mixin for every process's settings: the three files, all or none."""

    grpc_tls_ca: Path | None = Field(None, validation_alias="GRPC_TLS_CA")
    grpc_tls_cert: Path | None = Field(None, validation_alias="GRPC_TLS_CERT")
    grpc_tls_key: Path | None = Field(None, validation_alias="GRPC_TLS_KEY")
    grpc_tls_server_name: str | None = Field(None, validation_alias="GRPC_TLS_SERVER_NAME")

    @model_validator(mode="after")
    def _all_or_none(self) -> TlsSettings:
        given = {
            "GRPC_TLS_CA": self.grpc_tls_ca,
            "GRPC_TLS_CERT": self.grpc_tls_cert,
            "GRPC_TLS_KEY": self.grpc_tls_key,
        }
        missing = [name for name, value in given.items() if value is None]
        if 0 < len(missing) < 3:
            raise ValueError(
                f"{', '.join(missing)}: set all three of GRPC_TLS_CA, GRPC_TLS_CERT, GRPC_TLS_KEY, or none"
            )
        if not missing:
            self._tls_files()  # unreadable or not PEM: refused at start, not at the first call
        return self

    def _tls_files(self) -> TlsFiles | None:
        if self.grpc_tls_ca is None or self.grpc_tls_cert is None or self.grpc_tls_key is None:
            return None
        return TlsFiles(
            ca=_read("GRPC_TLS_CA", self.grpc_tls_ca, b"CERTIFICATE"),
            cert=_read("GRPC_TLS_CERT", self.grpc_tls_cert, b"CERTIFICATE"),
            key=_read("GRPC_TLS_KEY", self.grpc_tls_key, b"PRIVATE KEY"),
            server_name=self.grpc_tls_server_name,
        )

    @property
    def grpc_tls(self) -> TlsFiles | None:
        """The files' contents (read now), or None for plaintext gRPC."""
        return self._tls_files()
