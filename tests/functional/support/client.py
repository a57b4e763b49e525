"""Build the collection's registry client the way modules do, against a RegistryServer (or a proxy in front of one).

connect = ClientFactory()
client = connect(registry_token, "t/app")              # the server's own user, TLS files from the fixture
client = connect(registry_tls, "t/app", ca_path=None)  # override any connection option
connect.close()
"""

from __future__ import annotations

from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import parse_reference
from ansible_collections.ocireg.registry.plugins.module_utils._registry.api import RegistryClient
from ansible_collections.ocireg.registry.plugins.module_utils._registry.clients import RegistryClients
from ansible_collections.ocireg.registry.plugins.module_utils._registry.credentials import CredentialResolver
from ansible_collections.ocireg.registry.plugins.module_utils._registry.transport import ConnectionOptions

from .registry import RegistryServer

USER_AGENT_PREFIX = "ocireg.registry"
_FROM_SERVER = object()


class ClientFactory:
    """connect(server, repo, **options) -> RegistryClient; keeps every RegistryClients to close them."""

    def __init__(self) -> None:
        self.made: list[RegistryClients] = []

    def __call__(
        self,
        server: RegistryServer,
        repo: str = "t/client",
        *,
        username: Any = _FROM_SERVER,
        password: Any = _FROM_SERVER,
        credentials: dict[str, Any] | None = None,
        auth_file: str | None = None,
        ca_path: Any = _FROM_SERVER,
        client_cert: Any = _FROM_SERVER,
        client_key: Any = _FROM_SERVER,
        **options: Any,
    ) -> RegistryClient:
        """options: the other ConnectionOptions fields (validate_certs, timeout, retries)."""
        reference = parse_reference(f"{server.url}/{repo}:latest")
        resolver = CredentialResolver(
            username=server.username if username is _FROM_SERVER else username,
            password=server.password if password is _FROM_SERVER else password,
            credentials=credentials,
            auth_file=auth_file,
            primary_registry=reference.registry,
            environ={},
        )
        connection = ConnectionOptions(
            ca_path=_path(server.ca_cert) if ca_path is _FROM_SERVER else ca_path,
            client_cert=_path(server.client_cert) if client_cert is _FROM_SERVER else client_cert,
            client_key=_path(server.client_key) if client_key is _FROM_SERVER else client_key,
            **options,
        )
        clients = RegistryClients(resolver, connection)
        self.made.append(clients)
        return clients.for_reference(reference)

    def close(self) -> None:
        for clients in self.made:
            clients.close()
        self.made.clear()


def _path(value: Any) -> str | None:
    return None if value is None else str(value)


def ours(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Access-log entries sent by the collection's client (not by skopeo or the fixtures)."""
    return [entry for entry in entries if entry["user_agent"].startswith(USER_AGENT_PREFIX)]
