# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where images live: a registry reference or a local store, as skopeo names them.

- ``oci:DIR[:REF]``: an OCI image layout directory; REF is the ``org.opencontainers.image.ref.name``.
- ``oci-archive:FILE[:REF]``: a tar of an OCI image layout.
- ``docker-archive:FILE[:REF]``: the ``docker save`` format; REF is ``NAME:TAG`` (or ``@N`` to read the
  Nth image).
- anything else (optionally prefixed ``docker://``) is a registry reference.

Like skopeo, the path ends at the first ``:``, so it cannot contain one.

Text that starts with another transport is refused, listing the supported ones, before it can be read as an image on
Docker Hub: skopeo's other transports (``containers-storage:IMAGE``, ``dir:PATH``...) whatever follows them, as skopeo
reads them, and any other ``word:`` followed by something with a ``/`` or ``:`` in it that is not ``PORT/`` (so
``foo:/srv/x`` is refused, and ``app:1.0``, ``localhost:5000/app`` or ``app:bad!`` are read, or refused, as references).
"""

from __future__ import annotations

import dataclasses
import os
import re

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError, InvalidReferenceError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import (
    Reference,
    is_tag,
    parse_reference,
)

OCI = "oci"
OCI_ARCHIVE = "oci-archive"
DOCKER_ARCHIVE = "docker-archive"
STORE_TRANSPORTS = (OCI, OCI_ARCHIVE, DOCKER_ARCHIVE)
DOCKER_TRANSPORT_PREFIX = "docker://"

# Other skopeo transports, named so that a user who tries one learns it is not supported.
OTHER_TRANSPORTS = ("dir", "containers-storage", "docker-daemon", "ostree", "sif", "tarball")
# What a transport's name looks like: lowercase words joined by '-', as skopeo's are. No '.', so no host name matches.
_TRANSPORT_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_PORT_AND_PATH = re.compile(r"[0-9]+/")

# The OCI image-spec grammar for org.opencontainers.image.ref.name.
_OCI_REF_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_OCI_REF = re.compile(r"%s(?:/%s)*" % (_OCI_REF_COMPONENT, _OCI_REF_COMPONENT))
_ARCHIVE_INDEX = re.compile(r"@([0-9]+)")
_FORMS = (
    "a registry reference ([registry/]repository[:tag][@digest]), oci:DIR[:REF], oci-archive:FILE[:REF]"
    " or docker-archive:FILE[:REF]"
)
_SUPPORTED_TRANSPORTS = (
    "The supported transports are docker:// (or no prefix) for a registry reference"
    " ([registry/]repository[:tag][@digest]), oci:DIR[:REF], oci-archive:FILE[:REF] and docker-archive:FILE[:REF]."
)


@dataclasses.dataclass(frozen=True)
class StoreLocation:
    """A local image store: ``transport`` is oci, oci-archive or docker-archive."""

    transport: str
    path: str
    ref: str | None = None

    @property
    def text(self) -> str:
        return "%s:%s%s" % (self.transport, self.path, ":" + self.ref if self.ref is not None else "")

    def archive_reference(self) -> Reference | int | None:
        """docker-archive REF as a Reference (``NAME:TAG``) or a position (``@N``)."""
        if self.ref is None:
            return None
        match = _ARCHIVE_INDEX.fullmatch(self.ref)
        if match:
            return int(match.group(1))
        return parse_reference(self.ref)


def parse_location(text: object, option: str = "src", default_tag: str | None = "latest") -> Reference | StoreLocation:
    """Parse ``src``/``dest``: a :class:`StoreLocation` for local stores, else a registry :class:`Reference`.

    ``default_tag`` applies to registry references without tag or digest (None keeps them untagged).
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("%s must be %s; got %r" % (option, _FORMS, text))
    if text.startswith(DOCKER_TRANSPORT_PREFIX):
        return _registry(text[len(DOCKER_TRANSPORT_PREFIX) :], option, default_tag)
    transport, colon, rest = text.partition(":")
    if colon and transport in STORE_TRANSPORTS:
        return _store(transport, rest, option, text)
    if colon and (transport in OTHER_TRANSPORTS or _looks_like_a_transport(transport, rest)):
        raise InvalidInputError(_unsupported_transport(option, text, transport))
    return _registry(text, option, default_tag)


def _looks_like_a_transport(word: str, rest: str) -> bool:
    """``word:rest`` reads as a transport and what it names, not as ``repository:tag`` nor ``host:port/path``."""
    if not _TRANSPORT_NAME.fullmatch(word) or word == "localhost" or not rest or rest.startswith("//"):
        return False  # "//": a scheme, which the reference parser judges
    tag = rest.partition("@")[0]
    if is_tag(tag) or _PORT_AND_PATH.match(rest):
        return False
    return "/" in tag or ":" in tag  # else a tag, if a malformed one: the reference parser says what is wrong


def _unsupported_transport(option: str, text: str, transport: str) -> str:
    if transport in OTHER_TRANSPORTS:
        message = "%s %r uses skopeo's %s: transport, which this collection does not support. %s" % (
            option,
            text,
            transport,
            _SUPPORTED_TRANSPORTS,
        )
        try:
            parse_reference(text)
        except InvalidReferenceError:
            return message
        return message + " To name the Docker Hub image %s, write docker://%s." % (text, text)
    return "%s %r starts with %r, which is not a transport this collection knows. %s" % (
        option,
        text,
        transport + ":",
        _SUPPORTED_TRANSPORTS,
    )


def _registry(text: str, option: str, default_tag: str | None) -> Reference:
    try:
        return parse_reference(text, default_tag=default_tag)
    except InvalidReferenceError as err:
        raise InvalidReferenceError("%s: %s Expected %s." % (option, err, _FORMS)) from None


def _store(transport: str, rest: str, option: str, text: str) -> StoreLocation:
    path, colon, ref = rest.partition(":")
    kind = "directory" if transport == OCI else "file"
    if not path:
        raise InvalidInputError("%s %r names no %s: write %s:PATH[:REF]" % (option, text, kind, transport))
    if colon and not ref:
        raise InvalidInputError("%s %r ends with ':' and no REF: drop the ':' or add a name" % (option, text))
    location = StoreLocation(transport, os.path.abspath(os.path.expanduser(path)), ref if colon else None)
    if location.ref is None:
        return location
    if transport == DOCKER_ARCHIVE:
        if _ARCHIVE_INDEX.fullmatch(location.ref) is None:
            try:
                reference = parse_reference(location.ref)
            except InvalidReferenceError as err:
                raise InvalidInputError(
                    "%s %r: the docker-archive REF must be NAME:TAG (or @N to read the Nth image). %s"
                    % (option, text, err)
                ) from None
            if reference.digest is not None:
                raise InvalidInputError("%s %r: a docker-archive REF is NAME:TAG, without a digest" % (option, text))
    elif not _OCI_REF.fullmatch(location.ref):
        raise InvalidInputError(
            "%s %r: the REF %r is not a valid OCI reference name (letters and digits, joined by '-', '.', '_', ':',"
            " '@', '+', '--' or '/')" % (option, text, location.ref)
        )
    return location
