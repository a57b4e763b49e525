# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One pooled client per registry for the life of a task, however many references it touches."""

from __future__ import annotations

import threading
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import Reference, base_url_for
from ansible_collections.ocireg.registry.plugins.module_utils._registry.api import RegistryClient
from ansible_collections.ocireg.registry.plugins.module_utils._registry.credentials import CredentialResolver
from ansible_collections.ocireg.registry.plugins.module_utils._registry.transport import ConnectionOptions, Transport


class RegistryClients:
    """Hands out a :class:`RegistryClient` per registry endpoint, sharing its session and tokens."""

    def __init__(self, resolver: CredentialResolver, options: ConnectionOptions):
        self.resolver = resolver
        self.options = options
        self._clients: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()

    def for_reference(self, reference: Reference) -> RegistryClient:
        return self._client(reference.registry, reference.base_url, reference.repository)

    def for_registry(self, registry: str, scheme: str | None = None) -> RegistryClient:
        """The client for a bare registry host (catalog listings), with the scheme rules of references."""
        return self._client(registry, base_url_for(registry, scheme), None)

    def _client(self, registry: str, base_url: str, repository: str | None) -> RegistryClient:
        with self._lock:
            client = self._clients.get(base_url)
            if client is None:
                credentials = self.resolver.for_registry(registry, repository)
                transport = Transport(registry, base_url, credentials, self.options)
                client = self._clients[base_url] = RegistryClient(transport)
            return client

    @property
    def request_count(self) -> int:
        return sum(client.transport.request_count for client in self._clients.values())

    def close(self) -> None:
        for client in self._clients.values():
            client.transport.close()
        self._clients.clear()


def connection_options(params: dict[str, Any], pool_size: int = 16) -> ConnectionOptions:
    return ConnectionOptions(
        validate_certs=params["validate_certs"],
        ca_path=params["ca_path"],
        client_cert=params["client_cert"],
        client_key=params["client_key"],
        timeout=params["timeout"],
        retries=params["retries"],
        pool_size=pool_size,
    )
