# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One pooled client per registry for the life of a task, however many references it touches."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import Reference, base_url_for
from ansible_collections.ocireg.registry.plugins.module_utils._registry.api import RegistryClient
from ansible_collections.ocireg.registry.plugins.module_utils._registry.credentials import (
    TASK_OPTIONS,
    TASK_PRIMARY,
    CredentialResolver,
)
from ansible_collections.ocireg.registry.plugins.module_utils._registry.transport import (
    ConnectionOptions,
    Transport,
    environment_ca_bundle,
)


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
                advice = self.resolver.missing_credentials_advice(registry)
                transport = Transport(registry, base_url, credentials, self.options, advice)
                client = self._clients[base_url] = RegistryClient(transport)
            return client

    @property
    def warnings(self) -> list[str]:
        """What the user should hear of, though it did not stop the task (see ``CredentialResolver.warnings``)."""
        return list(self.resolver.warnings)

    @property
    def request_count(self) -> int:
        return sum(client.transport.request_count for client in self._clients.values())

    def close(self) -> None:
        for client in self._clients.values():
            client.transport.close()
        self._clients.clear()


# The options every module and the lookup take to reach a registry: the ``ocireg.registry.connection`` doc fragment.
CONNECTION_OPTIONS = (
    "username",
    "password",
    "credentials",
    "auth_file",
    "validate_certs",
    "ca_path",
    "client_cert",
    "client_key",
    "timeout",
    "retries",
)


def connection_problems(options: Mapping[str, Any]) -> list[str]:
    """What is wrong with the connection options' values and the files they name, each naming option and value.

    A missing TLS file would otherwise surface at the first request, in ``requests``' words, which name neither the
    option nor, for a CA bundle given through the environment, where the path came from.
    """
    problems = []
    timeout, retries = options.get("timeout"), options.get("retries")
    if timeout is None or timeout <= 0:
        problems.append("timeout must be a positive number of seconds, got %s" % timeout)
    if retries is None or retries < 0:
        problems.append("retries must be 0 or more, got %s" % retries)
    if options.get("client_key") and not options.get("client_cert"):
        problems.append("client_key needs client_cert: give the client certificate that goes with the key")
    problems.extend(_tls_file_problems(options))
    return problems


def _tls_file_problems(options: Mapping[str, Any]) -> list[str]:
    problems = []
    # Transport uses ca_path, or else the environment's CA bundle, only when it verifies certificates.
    if options.get("validate_certs", True):
        ca_path, from_environment = options.get("ca_path"), environment_ca_bundle()
        if ca_path:
            where, path = "ca_path", ca_path
        elif from_environment is not None:
            where, path = "the environment variable %s" % from_environment[0], from_environment[1]
        else:
            where, path = "", ""
        if where and not os.path.exists(path):
            problems.append(
                "%s names %s, which does not exist: give the PEM file (or directory) of the CA certificates to trust"
                % (where, path)
            )
    for name, what in (("client_cert", "client certificate"), ("client_key", "private key of the client certificate")):
        path = options.get(name)
        if path and not os.path.isfile(path):
            problem = "does not exist" if not os.path.exists(path) else "is not a file"
            problems.append("%s names %s, which %s: give the PEM file of the %s" % (name, path, problem, what))
    return problems


def clients_for(
    options: Mapping[str, Any],
    primary: Reference | str | None,
    pool_size: int = 16,
    *,
    credentials_source: str = TASK_OPTIONS,
    primary_role: str = TASK_PRIMARY,
) -> RegistryClients:
    """Clients for every registry a task (or a lookup) touches, from the connection options.

    ``primary`` is the main reference, or a bare registry host: ``username`` and ``password`` apply to its registry.
    ``credentials_source`` says where those two came from, ``primary_role`` what ``primary`` is, for messages.
    Raises :class:`InvalidInputError` for bad option values, before any request.
    """
    problems = connection_problems(options)
    if problems:
        raise InvalidInputError("; ".join(problems))
    resolver = CredentialResolver(
        username=options.get("username"),
        password=options.get("password"),
        credentials=options.get("credentials"),
        auth_file=options.get("auth_file"),
        primary_registry=primary.registry if isinstance(primary, Reference) else primary,
        credentials_source=credentials_source,
        primary_role=primary_role,
    )
    connection = ConnectionOptions(
        validate_certs=bool(options.get("validate_certs", True)),
        ca_path=options.get("ca_path"),
        client_cert=options.get("client_cert"),
        client_key=options.get("client_key"),
        timeout=float(options["timeout"]),
        retries=int(options["retries"]),
        pool_size=pool_size,
    )
    return RegistryClients(resolver, connection)
