"""TLS and mutual TLS (``grpc+tls://``) with a throwaway CA made here by ``cryptography``:
servers on 127.0.0.1 port 0 with a certificate for 127.0.0.1 and localhost, plain pyarrow
clients and ``zcollection_client.connect``."""

from __future__ import annotations

import datetime
import ipaddress
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.flight as flight
import pytest
import zcollection as zc
import zcollection_client as zcc
from zcollection_server import ServerSettings
from zcollection_server.auth import hash_password, parse_auth_config
from zcollection_server.settings import SettingsError

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

#: Seconds before a call to a server that refuses the TLS handshake gives up.
TIMEOUT = 10.0


@dataclass
class Pem:
    """A certificate and its private key, as PEM bytes and as files."""

    cert: bytes
    key: bytes
    cert_file: Path
    key_file: Path
    certificate: Any
    private_key: Any


def _name(common_name: str) -> Any:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    folder: Path,
    label: str,
    common_name: str,
    issuer: Pem | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> Pem:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.certificate.subject if issuer else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
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
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
    signer = issuer.private_key if issuer else key
    certificate = builder.sign(signer, hashes.SHA256())
    cert = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_file, key_file = folder / f"{label}.crt", folder / f"{label}.key"
    cert_file.write_bytes(cert)
    key_file.write_bytes(key_pem)
    return Pem(cert, key_pem, cert_file, key_file, certificate, key)


@dataclass
class Pki:
    ca: Pem
    server: Pem
    client: Pem
    other_ca: Pem
    other_client: Pem


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server certificate (127.0.0.1, localhost) and a client certificate it signed;
    another CA and a client certificate signed by it."""
    folder = tmp_path_factory.mktemp("pki")
    ca = _issue(folder, "ca", "zcollection test CA", None, ca=True)
    other = _issue(folder, "other-ca", "another CA", None, ca=True)
    return Pki(
        ca=ca,
        server=_issue(folder, "server", "zcollection test server", ca, server=True),
        client=_issue(folder, "client", "alice", ca),
        other_ca=other,
        other_client=_issue(folder, "other-client", "mallory", other),
    )


@pytest.fixture(scope="module")
def tls_root(tmp_path_factory: pytest.TempPathFactory, h: Any) -> Path:
    root = tmp_path_factory.mktemp("tls-root")
    h.make_alti(str(root / "alti"), months=1)
    return root


def _tls_server(start_server: Callable[..., Any], root: Path, pki: Pki, **kwargs: Any) -> Any:
    return start_server(
        root, tls_cert=str(pki.server.cert_file), tls_key=str(pki.server.key_file), **kwargs
    )


def _options() -> flight.FlightCallOptions:
    return flight.FlightCallOptions(timeout=TIMEOUT)


def _list(client: flight.FlightClient) -> list[str]:
    return sorted(i.descriptor.path[0].decode() for i in client.list_flights(b"", _options()))


def _refused(call: Callable[[], Any]) -> None:
    with pytest.raises((flight.FlightUnavailableError, flight.FlightTimedOutError)):
        call()


def test_tls_with_a_server_certificate(
    h: Any, start_server: Callable[..., Any], tls_root: Path, pki: Pki
) -> None:
    running = _tls_server(start_server, tls_root, pki)
    port = running.server.port
    assert running.server.settings.location.startswith("grpc+tls://")
    for host in ("127.0.0.1", "localhost"):
        client = flight.FlightClient(f"grpc+tls://{host}:{port}", tls_root_certs=pki.ca.cert)
        assert _list(client) == ["alti"]
        info = client.get_flight_info(flight.FlightDescriptor.for_path("alti"), _options())
        rows = sum(client.do_get(e.ticket, _options()).read_all().num_rows for e in info.endpoints)
        assert rows == 31 * 4 + 1  # the partitions and the immutable row
        client.close()
    # a client trusting another CA, or speaking plaintext, gets nothing
    _refused(
        lambda: _list(
            flight.FlightClient(f"grpc+tls://127.0.0.1:{port}", tls_root_certs=pki.other_ca.cert)
        )
    )
    _refused(lambda: _list(flight.FlightClient(f"grpc://127.0.0.1:{port}")))
    # the certificate names 127.0.0.1 and localhost, nothing else
    _refused(
        lambda: _list(
            flight.FlightClient(
                f"grpc+tls://127.0.0.1:{port}",
                tls_root_certs=pki.ca.cert,
                override_hostname="elsewhere.example",
            )
        )
    )


def test_the_python_client_over_tls(
    h: Any, start_server: Callable[..., Any], tls_root: Path, pki: Pki
) -> None:
    running = _tls_server(start_server, tls_root, pki)
    url = f"grpc+tls://localhost:{running.server.port}"
    expected = zc.open_collection(str(tls_root / "alti")).query()
    options = zcc.ClientOptions(retries=1, timeout=TIMEOUT)
    with zcc.connect(url, tls_root_certs=pki.ca.cert, options=options) as connection:
        assert connection.list_collections() == ["alti"]
        h.assert_same_bits(expected, connection.open_collection("alti").query())
    with (
        zcc.connect(url, tls_root_certs=pki.other_ca.cert, options=options) as connection,
        pytest.raises(zc.StoreError),
    ):
        connection.list_collections()


def test_mutual_tls(h: Any, start_server: Callable[..., Any], tls_root: Path, pki: Pki) -> None:
    running = _tls_server(start_server, tls_root, pki, tls_client_ca=str(pki.ca.cert_file))
    location = f"grpc+tls://127.0.0.1:{running.server.port}"
    # a client certificate signed by the CA is accepted
    client = flight.FlightClient(
        location, tls_root_certs=pki.ca.cert, cert_chain=pki.client.cert, private_key=pki.client.key
    )
    assert _list(client) == ["alti"]
    info = h.action(client, "server_info", as_json=False)
    assert list(info.auth) == ["mtls"]
    client.close()
    # none, or one signed by another CA, is refused
    _refused(lambda: _list(flight.FlightClient(location, tls_root_certs=pki.ca.cert)))
    _refused(
        lambda: _list(
            flight.FlightClient(
                location,
                tls_root_certs=pki.ca.cert,
                cert_chain=pki.other_client.cert,
                private_key=pki.other_client.key,
            )
        )
    )
    # the Python client, with and without its certificate
    options = zcc.ClientOptions(retries=1, timeout=TIMEOUT)
    url = f"grpc+tls://localhost:{running.server.port}"
    with zcc.connect(
        url,
        tls_root_certs=pki.ca.cert,
        cert_chain=pki.client.cert,
        private_key=pki.client.key,
        options=options,
    ) as connection:
        assert connection.list_collections() == ["alti"]
        assert connection.open_collection("alti").query() is not None
    for kwargs in (
        {},
        {"cert_chain": pki.other_client.cert, "private_key": pki.other_client.key},
    ):
        with (
            zcc.connect(url, tls_root_certs=pki.ca.cert, options=options, **kwargs) as connection,
            pytest.raises(zc.StoreError),
        ):
            connection.list_collections()


def test_mutual_tls_and_credentials(
    h: Any, start_server: Callable[..., Any], tls_root: Path, pki: Pki
) -> None:
    table = tomllib.loads(
        "[auth.users.alice]\n"
        f'password = "{hash_password("pw", n=2**10)}"\n'
        'permissions = { "*" = "read" }\n'
    )
    running = _tls_server(
        start_server,
        tls_root,
        pki,
        tls_client_ca=str(pki.ca.cert_file),
        auth=parse_auth_config(table["auth"]),
    )
    url = f"grpc+tls://127.0.0.1:{running.server.port}"
    tls = {"tls_root_certs": pki.ca.cert, "cert_chain": pki.client.cert}
    options = zcc.ClientOptions(retries=1, timeout=TIMEOUT)
    with zcc.connect(
        url,
        username="alice",
        password="pw",
        private_key=pki.client.key,
        options=options,
        **tls,
    ) as connection:
        assert connection.list_collections() == ["alti"]
        assert connection.server_info()["protocol"]
    with (
        zcc.connect(url, private_key=pki.client.key, options=options, **tls) as connection,
        pytest.raises(flight.FlightUnauthenticatedError),
    ):
        connection.list_collections()


def test_tls_settings(tmp_path: Path, pki: Pki) -> None:
    """Checked before anything binds: a non-loopback address is accepted with mutual TLS (the
    clients prove who they are), refused with TLS alone."""
    cert, key, ca = str(pki.server.cert_file), str(pki.server.key_file), str(pki.ca.cert_file)
    root = str(tmp_path)
    ServerSettings(
        host="0.0.0.0", root=root, tls_cert=cert, tls_key=key, tls_client_ca=ca
    ).validate()
    with pytest.raises(SettingsError, match="--allow-insecure"):
        ServerSettings(host="0.0.0.0", root=root, tls_cert=cert, tls_key=key).validate()
    with pytest.raises(SettingsError, match="both"):
        ServerSettings(root=root, tls_cert=cert).validate()
    with pytest.raises(SettingsError, match="needs tls_cert"):
        ServerSettings(root=root, tls_client_ca=ca).validate()
    with pytest.raises(SettingsError, match="no such file"):
        ServerSettings(root=root, tls_cert=cert, tls_key=str(tmp_path / "missing.key")).validate()
    config = tmp_path / "server.toml"
    config.write_text(
        f'[server]\nroot = "{root}"\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
        f'tls_client_ca = "{ca}"\n'
    )
    from zcollection_server.settings import load_config

    settings = load_config(config).validate()
    assert settings.location.startswith("grpc+tls://")
    assert settings.tls_options()["verify_client"] is True
