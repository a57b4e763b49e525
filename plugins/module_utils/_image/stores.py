# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Opens what ``src`` and ``dest`` name: a registry repository or a local store."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError, RegistryError
from ansible_collections.ocireg.registry.plugins.module_utils._image.interfaces import ImageDestination, ImageSource
from ansible_collections.ocireg.registry.plugins.module_utils._image.registry_store import (
    RegistryDestination,
    RegistrySource,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.location import OCI, OCI_ARCHIVE, StoreLocation
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import Reference
from ansible_collections.ocireg.registry.plugins.module_utils._registry.clients import RegistryClients

# The local stores are imported when used: a registry-to-registry copy then never loads (nor, inside AnsiballZ,
# compiles) them. Ansible still ships them, as it finds imports anywhere in a file.


def open_source(location: Reference | StoreLocation, clients: RegistryClients) -> ImageSource:
    if isinstance(location, Reference):
        return RegistrySource(clients.for_reference(location), location)
    from ansible_collections.ocireg.registry.plugins.module_utils._image import docker_archive, layout

    if location.transport == OCI:
        return layout.open_layout_dir(location.path, location.ref, location.text)
    if location.transport == OCI_ARCHIVE:
        return layout.open_layout_archive(location.path, location.ref, location.text)
    return docker_archive.DockerArchiveSource(location.path, location.archive_reference(), location.text)


def open_destination(location: Reference | StoreLocation, clients: RegistryClients) -> ImageDestination:
    if isinstance(location, Reference):
        return RegistryDestination(clients.for_reference(location), location)
    from ansible_collections.ocireg.registry.plugins.module_utils._image import docker_archive, layout

    reference = location.archive_reference() if location.transport not in (OCI, OCI_ARCHIVE) else None
    if isinstance(reference, int):
        raise InvalidInputError(
            "dest %r: @N only selects an image to read; write docker-archive:FILE:NAME:TAG" % location.text
        )
    writer = {OCI: layout.LayoutDirDestination, OCI_ARCHIVE: layout.LayoutArchiveDestination}.get(location.transport)
    if writer is not None:
        return writer(location.path, location.ref, location.text)
    return docker_archive.DockerArchiveDestination(location.path, reference, location.text)


@contextlib.contextmanager
def local_file_errors() -> Iterator[None]:
    """Turn a failed file operation on a local store (permissions, a full disk, a file where a directory
    should be) into a :class:`RegistryError` naming the path, so it is reported, not a traceback."""
    try:
        yield
    except OSError as err:
        where = " %s" % err.filename if err.filename else ""
        raise RegistryError("Local file operation failed on%s: %s" % (where, err.strerror or err)) from None
