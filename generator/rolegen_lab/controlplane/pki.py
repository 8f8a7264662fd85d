"""Per-lab certificates and keys for one site's control plane, generated fresh (none are committed).

Owns the site's PKI: a CA, the API server's serving certificate (loopback and in-cluster names), client
certificates (the lab's admin in `system:masters`, the controller manager as
`system:kube-controller-manager`) and the ServiceAccount token signing key pair. ECDSA P-256 throughout:
quick to generate, and accepted by kube-apiserver for serving, client auth and token signing (ES256).
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=7)
SERVING_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local")
SERVING_IPS = ("127.0.0.1", "10.0.0.1")  # loopback, and the `kubernetes` Service in 10.0.0.0/24


class Pki:
    """Paths of the PEM files in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca_crt, self.ca_key = directory / "ca.crt", directory / "ca.key"
        self.serving_crt, self.serving_key = directory / "apiserver.crt", directory / "apiserver.key"
        self.admin_crt, self.admin_key = directory / "admin.crt", directory / "admin.key"
        self.kcm_crt, self.kcm_key = directory / "kcm.crt", directory / "kcm.key"
        self.sa_pub, self.sa_key = directory / "sa.pub", directory / "sa.key"


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _cert(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
          issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool = False, server: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                              key_encipherment=False, data_encipherment=False, key_agreement=False,
                              encipher_only=False, decipher_only=False)
        builder = builder.add_extension(usage, critical=True)
    else:
        eku = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    if server:
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVING_NAMES]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVING_IPS]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def generate(directory: Path, site: str) -> Pki:
    """Write a complete PKI for one site into `directory` (created, mode 0700)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    pki = Pki(directory)
    ca_key = _key()
    ca_name = _name(f"rolegen-lab-{site}-ca")
    _write_key(pki.ca_key, ca_key)
    _write_cert(pki.ca_crt, _cert(ca_name, ca_key, ca_name, ca_key, ca=True))
    leaves = (
        (pki.serving_crt, pki.serving_key, _name("kube-apiserver"), True),
        (pki.admin_crt, pki.admin_key, _name("rolegen-lab-admin", "system:masters"), False),
        (pki.kcm_crt, pki.kcm_key, _name("system:kube-controller-manager"), False),
    )
    for crt, key_path, subject, server in leaves:
        key = _key()
        _write_key(key_path, key)
        _write_cert(crt, _cert(subject, key, ca_name, ca_key, server=server))
    sa_key = _key()
    _write_key(pki.sa_key, sa_key)
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return pki


# -- PostgreSQL TLS of a lab pair (what cert-manager would issue from the pair's CA) ---------------------------
def _leaf(names: tuple[str, ...], issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey,
          key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """A certificate for `names` (DNS names and IP addresses) usable as server and client (clientAuth: the
    `client_cert` setting presents it), signed by `issuer`."""
    now = datetime.datetime.now(datetime.UTC)
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    return (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def tls_secrets(ca_name: str, sites: dict[str, tuple[str, ...]]) -> dict[str, dict[str, str]]:
    """One CA (its key is discarded: nothing issues later) and, per site, the `kubernetes.io/tls` Secret data
    cert-manager writes: `tls.crt` naming `sites[site]`, `tls.key`, and the CA as `ca.crt`."""
    ca_key = _key()
    name = _name(ca_name)
    ca = _cert(name, ca_key, name, ca_key, ca=True)
    out: dict[str, dict[str, str]] = {}
    for site, names in sites.items():
        key = _key()
        out[site] = {"tls.crt": _pem(_leaf(names, name, ca_key, key)), "tls.key": _key_pem(key), "ca.crt": _pem(ca)}
    return out
