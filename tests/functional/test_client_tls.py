"""TLS and mutual TLS of the shared client against the real registry (https with the test CA, client certs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.client import ClientFactory, ours
from support.images import Image
from support.registry import RegistryServer
from support.skopeo import Skopeo

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    InvalidInputError,
    PermanentTransportError,
    RegistryResponseError,
    TransportError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import parse_reference
from ansible_collections.ocireg.registry.plugins.module_utils._registry.clients import CONNECTION_OPTIONS, clients_for


@pytest.fixture
def connect() -> Iterator[ClientFactory]:
    factory = ClientFactory()
    yield factory
    factory.close()


@pytest.fixture(params=["tls", "mtls"])
def https_registry(request: pytest.FixtureRequest) -> RegistryServer:
    return request.getfixturevalue(f"registry_{request.param}")


def test_https_with_the_registry_ca(
    https_registry: RegistryServer,
    connect: ClientFactory,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
) -> None:
    image = image_factory()
    skopeo(https_registry).copy(image.oci, f"{unique_repo}:v1")
    client = connect(https_registry, unique_repo)
    mark = https_registry.mark()

    assert client.ping()["url"] == https_registry.url
    assert client.get_manifest(unique_repo, "v1").digest == image.digest

    assert [(e["path"], e["status"]) for e in ours(https_registry.requests_since(mark))] == [
        ("/v2/", 200),
        (f"/v2/{unique_repo}/manifests/v1", 200),
    ]


def test_https_without_the_ca_fails_fast_and_says_how_to_fix_it(
    https_registry: RegistryServer, connect: ClientFactory, unique_repo: str
) -> None:
    client = connect(https_registry, unique_repo, ca_path=None)

    with pytest.raises(TransportError) as caught:
        client.list_tags(unique_repo)

    message = str(caught.value)
    assert "TLS" in message and "ca_path" in message and https_registry.host in message
    assert "certificate verify failed" in message
    # An untrusted certificate is not a transient failure: no retries with backoff (default retries=5).
    assert client.transport.retry.retried == 0 and client.transport.request_count == 1


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_validate_certs_false_skips_verification(
    https_registry: RegistryServer, connect: ClientFactory, unique_repo: str
) -> None:
    client = connect(https_registry, unique_repo, ca_path=None, validate_certs=False)
    assert client.ping()["api_version"] == "registry/2.0"


def test_mtls_without_a_client_certificate_fails_clearly(
    registry_mtls: RegistryServer, connect: ClientFactory, unique_repo: str
) -> None:
    client = connect(registry_mtls, unique_repo, client_cert=None, client_key=None)

    with pytest.raises(TransportError) as caught:
        client.list_tags(unique_repo)

    message = str(caught.value)
    assert registry_mtls.host in message and "client_cert" in message and "ca_path" not in message
    assert client.transport.retry.retried == 0 and client.transport.request_count == 1  # not retried either


def test_https_to_a_plain_http_registry_says_to_use_http(
    registry_htpasswd: RegistryServer, connect: ClientFactory, unique_repo: str
) -> None:
    host = registry_htpasswd.host
    client = connect(registry_htpasswd.seen_at(host, "https"), unique_repo)
    mark = registry_htpasswd.mark()

    with pytest.raises(PermanentTransportError) as caught:
        client.ping()

    message = str(caught.value)
    assert message.startswith("TLS failure talking to registry %s" % host) and "WRONG_VERSION_NUMBER" in message
    assert f"The registry answers plain HTTP: use http://{host}/... in the reference, not https://{host}/..." in message
    assert "ca_path" not in message and "validate_certs" not in message  # neither would help
    # Not retried: the TLS attempt, then the one plain-HTTP request that showed what the port speaks. It goes
    # without credentials (401), and it is all the registry's handler saw: the TLS attempt never got that far.
    assert client.transport.retry.retried == 0 and client.transport.request_count == 2
    sent = [(e["method"], e["path"], e["status"]) for e in ours(registry_htpasswd.requests_since(mark))]
    assert sent == [("GET", "/v2/", 401)]


def test_plain_http_to_a_tls_registry_says_to_use_https(
    registry_tls: RegistryServer, connect: ClientFactory, unique_repo: str
) -> None:
    # What a reference to a loopback host without a scheme does: loopback hosts are reached over plain HTTP.
    client = connect(registry_tls.seen_at(registry_tls.host, "http"), unique_repo)

    # A GET's answer says so in its body; a HEAD's has none, and the client reads it with a GET.
    for call in (client.ping, lambda: client.list_tags(unique_repo), lambda: client.head_manifest(unique_repo, "v1")):
        with pytest.raises(RegistryResponseError) as caught:
            call()
        message = str(caught.value)
        assert ": HTTP 400: the registry serves HTTPS on this port and was asked over plain HTTP" in message
        assert f"use https://{registry_tls.host}/... in the reference" in message
        assert caught.value.status == 400


@pytest.mark.parametrize("option", ["ca_path", "client_cert", "client_key"])
def test_a_missing_tls_file_is_named_with_its_option_before_any_request(
    option: str, registry_mtls: RegistryServer, unique_repo: str, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such.pem"
    options = {name: None for name in CONNECTION_OPTIONS}
    options.update(validate_certs=True, timeout=10.0, retries=0)
    options.update(ca_path=str(registry_mtls.ca_cert), client_cert=str(registry_mtls.client_cert))
    options.update(client_key=str(registry_mtls.client_key))
    options[option] = str(missing)
    reference = parse_reference(f"{registry_mtls.url}/{unique_repo}:v1")
    mark = registry_mtls.mark()

    # clients_for serves the modules (through _common) and the lookup alike.
    with pytest.raises(InvalidInputError) as caught:
        clients_for(options, reference)

    assert str(caught.value).startswith(f"{option} names {missing}, which does not exist: give the PEM file")
    assert registry_mtls.requests_since(mark) == []
    options[option] = str(tmp_path)  # a directory: a CA directory is fine, a certificate or key directory is not
    if option == "ca_path":
        clients_for(options, reference).close()
    else:
        with pytest.raises(InvalidInputError, match=f"^{option} names {tmp_path}, which is not a file"):
            clients_for(options, reference)


def test_mtls_with_a_client_certificate_in_one_file(
    registry_mtls: RegistryServer, connect: ClientFactory, unique_repo: str, tmp_path: Path
) -> None:
    assert registry_mtls.client_cert is not None and registry_mtls.client_key is not None
    combined = tmp_path / "client.pem"
    combined.write_bytes(registry_mtls.client_cert.read_bytes() + registry_mtls.client_key.read_bytes())
    client = connect(registry_mtls, unique_repo, client_cert=str(combined), client_key=None)
    assert client.ping()["api_version"] == "registry/2.0"
