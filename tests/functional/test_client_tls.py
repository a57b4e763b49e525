"""TLS and mutual TLS of the shared client against the real registry (https with the test CA, client certs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.client import ClientFactory, ours
from support.images import Image
from support.registry import RegistryServer
from support.skopeo import Skopeo

from ansible_collections.ocireg.registry.plugins.module_utils._errors import TransportError


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


def test_https_to_a_plain_http_registry_fails_fast(
    registry_open: RegistryServer, connect: ClientFactory, unique_repo: str
) -> None:
    client = connect(registry_open.seen_at(registry_open.host, "https"), unique_repo)
    with pytest.raises(TransportError, match="TLS failure talking to registry " + registry_open.host):
        client.ping()
    assert client.transport.retry.retried == 0 and client.transport.request_count == 1


def test_mtls_with_a_client_certificate_in_one_file(
    registry_mtls: RegistryServer, connect: ClientFactory, unique_repo: str, tmp_path: Path
) -> None:
    assert registry_mtls.client_cert is not None and registry_mtls.client_key is not None
    combined = tmp_path / "client.pem"
    combined.write_bytes(registry_mtls.client_cert.read_bytes() + registry_mtls.client_key.read_bytes())
    client = connect(registry_mtls, unique_repo, client_cert=str(combined), client_key=None)
    assert client.ping()["api_version"] == "registry/2.0"
