"""A throwaway certificate authority for the functional tests (server, client and token signing certs)."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("127.0.0.1", "::1", "localhost")


@dataclass
class IssuedCert:
    """A certificate with its private key, written as PEM files."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    cert_path: Path
    key_path: Path

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ocireg.registry tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_pair(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
) -> IssuedCert:
    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return IssuedCert(cert=cert, key=key, cert_path=cert_path, key_path=key_path)


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


class CertificateAuthority:
    """A self-signed CA that writes its cert to DIRECTORY/ca.crt and issues leaf certs next to it."""

    def __init__(self, directory: Path, common_name: str = "ocireg test CA") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        self.ca = _write_pair(self.directory, "ca", cert, key)

    @property
    def cert_path(self) -> Path:
        return self.ca.cert_path

    def _issue(
        self,
        stem: str,
        common_name: str,
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
        extensions: Sequence[tuple[x509.ExtensionType, bool]],
    ) -> IssuedCert:
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.ca.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca.key.public_key()),
                critical=False,
            )
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return _write_pair(self.directory, stem, builder.sign(self.ca.key, hashes.SHA256()), key)

    def issue_server(self, stem: str = "server", hosts: Sequence[str] = DEFAULT_HOSTS) -> IssuedCert:
        """A TLS server cert; IP addresses go in as IP SANs (Go ignores the CN)."""
        return self._issue(
            stem,
            hosts[0],
            ec.generate_private_key(ec.SECP256R1()),
            [(_san(hosts), False), (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)],
        )

    def issue_client(self, stem: str = "client", common_name: str = "ocireg test client") -> IssuedCert:
        """A TLS client cert for mutual TLS."""
        return self._issue(
            stem,
            common_name,
            ec.generate_private_key(ec.SECP256R1()),
            [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)],
        )

    def issue_signing(self, stem: str = "token-signer", common_name: str = "ocireg test token issuer") -> IssuedCert:
        """An RSA cert for signing RS256 registry tokens."""
        return self._issue(stem, common_name, rsa.generate_private_key(public_exponent=65537, key_size=2048), [])
