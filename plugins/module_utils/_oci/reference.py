# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image references: docker's grammar (distribution/reference) and its normalisation rules.

A reference is ``[scheme://][registry/]repository[:tag][@digest]``:

- the first path component is a registry when it contains ``.`` or ``:``, is ``localhost``, or is a
  bracketed IPv6 address; with an explicit ``http://`` or ``https://`` prefix the first component is
  always the registry (so ``http://registry/app`` works for a compose-style host name);
- ``docker.io``, ``index.docker.io`` and ``registry-1.docker.io`` all mean Docker Hub, stored as
  ``docker.io``; one-component Hub names get the ``library/`` namespace;
- without a tag or digest the tag defaults to ``latest``.

Every invalid input raises :class:`InvalidReferenceError` quoting the value and saying what is allowed.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from typing import Callable

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidReferenceError

DEFAULT_REGISTRY = "docker.io"
HUB_API_HOST = "registry-1.docker.io"
HUB_ALIASES = frozenset(("docker.io", "index.docker.io", "registry-1.docker.io"))
OFFICIAL_NAMESPACE = "library"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255
SCHEMES = ("http", "https")

# distribution/reference writes the separator as ``[-]*``; ``-+`` matches the same names without the
# catastrophic backtracking ``[a-z0-9]+(?:[-]*[a-z0-9]+)*`` shows on long invalid input.
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST_ALGORITHM = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*")
# The algorithms registries support (distribution: sha256, sha384, sha512), with their hex lengths.
DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX_LOWER = re.compile(r"[a-f0-9]+")
_DOMAIN_LABEL = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?")
_PORT = re.compile(r"[0-9]+")
_UPPERCASE = re.compile(r"[A-Z]")
_SCHEME_PREFIX = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_REFERENCE_FORM = "[registry/]repository[:tag][@digest]"
_TAG_RULE = "a tag is 1 to 128 characters of letters, digits, '_', '.' and '-', and must not start with '.' or '-'"
_COMPONENT_RULE = (
    "each '/'-separated part of a repository is lowercase letters and digits, optionally joined by "
    "'.', '_', '__' or '-', and starts and ends with a letter or digit"
)
_HOST_RULE = (
    "a registry is a host name (letters, digits, '-' and '.'), an IPv4 address or a bracketed IPv6 address "
    "such as '[::1]', optionally followed by ':port'"
)
_SUPPORTED_ALGORITHMS = "sha256, sha384 and sha512"
_DIGEST_RULE = (
    "a digest is 'algorithm:encoded', e.g. 'sha256:' followed by 64 lowercase hex digits "
    "or 'sha512:' followed by 128 lowercase hex digits"
)
_QUOTE_MAX = 200


def _quote(value: object) -> str:
    """Quote a user value for an error message, shortening huge values so the message stays readable."""
    if isinstance(value, str):
        text = str.__str__(value)  # drop any str subclass (Ansible tags values) so repr stays plain
        if len(text) > _QUOTE_MAX:
            return "%r... (%d characters)" % (text[:_QUOTE_MAX], len(text))
        return repr(text)
    return "%r (%s)" % (value, type(value).__name__)


def _invalid(kind: str, value: object, reason: str, within: str | None = None) -> InvalidReferenceError:
    where = " in %s" % within if within else ""
    return InvalidReferenceError("Invalid %s %s%s: %s." % (kind, _quote(value), where, reason))


def _require_text(kind: str, value: object, example: str) -> str:
    if not isinstance(value, str):
        raise _invalid(kind, value, "expected a string such as %r" % example)
    if not value:
        raise _invalid(kind, value, "the value is empty; expected a string such as %r" % example)
    if any(char.isspace() for char in value):
        raise _invalid(kind, value, "it must not contain whitespace")
    return str.__str__(value)


def validate_tag(tag: object, *, within: str | None = None) -> str:
    """Return ``tag`` when it is a valid tag, else raise :class:`InvalidReferenceError`."""
    if not isinstance(tag, str):
        raise _invalid("tag", tag, "a tag must be a string; " + _TAG_RULE, within)
    if not _TAG.fullmatch(tag):
        reason = _TAG_RULE
        if len(tag) > 128:
            reason += " (this one has %d characters)" % len(tag)
        raise _invalid("tag", tag, reason, within)
    return str.__str__(tag)


def validate_digest(digest: object, *, within: str | None = None) -> str:
    """Return ``digest`` when it is a valid ``algorithm:encoded`` digest, else raise InvalidReferenceError.

    The algorithm is one that registries support (sha256, sha384 or sha512: the OCI image-spec grammar allows
    others, such as md5 or blake3, but no registry accepts them), and the encoded part is lowercase hex of its exact
    length.
    """
    if not isinstance(digest, str):
        raise _invalid("digest", digest, "a digest must be a string; " + _DIGEST_RULE, within)
    algorithm, colon, encoded = digest.partition(":")
    if not colon or not algorithm or not encoded:
        raise _invalid("digest", digest, _DIGEST_RULE, within)
    if not _DIGEST_ALGORITHM.fullmatch(algorithm):
        raise _invalid(
            "digest",
            digest,
            "the algorithm %r must be lowercase letters and digits, optionally joined by '.', '+', '_' or '-'"
            % algorithm,
            within,
        )
    hex_length = DIGEST_HEX_LENGTHS.get(algorithm)
    if hex_length is None:
        raise _invalid(
            "digest",
            digest,
            "the algorithm %r is not supported; registries support %s" % (algorithm, _SUPPORTED_ALGORITHMS),
            within,
        )
    if len(encoded) != hex_length or not _HEX_LOWER.fullmatch(encoded):
        reason = "a %s digest is '%s:' followed by exactly %d lowercase hex digits (0-9, a-f)" % (
            algorithm,
            algorithm,
            hex_length,
        )
        if len(encoded) != hex_length:
            reason += ", not %d characters" % len(encoded)
        raise _invalid("digest", digest, reason, within)
    return str.__str__(digest)


def is_digest(text: object) -> bool:
    """True when ``text`` is a digest on its own (``sha256:...``); such text also parses as a reference."""
    return _is_valid(validate_digest, text)


def is_tag(text: object) -> bool:
    """True when ``text`` is a valid tag."""
    return _is_valid(validate_tag, text)


def _is_valid(validate: Callable[[object], str], text: object) -> bool:
    try:
        validate(text)
    except InvalidReferenceError:
        return False
    return True


def _split_host_port(hostport: str) -> tuple[str, str | None]:
    """Split ``host[:port]`` where host may be ``[v6]``; a bare IPv6 address without brackets is all host."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end != -1 and hostport[end + 1 : end + 2] == ":":
            return hostport[: end + 1], hostport[end + 2 :]
        return hostport, None
    if hostport.count(":") == 1:
        host, _colon, port = hostport.partition(":")
        return host, port
    return hostport, None


def _normalise_host(text: str, *, kind: str = "registry", within: str | None = None) -> str:
    """Validate ``host[:port]`` and return it lowercased, IPv6 compressed, port without leading zeros."""
    if text.startswith("["):
        end = text.find("]")
        if end == -1:
            raise _invalid(kind, text, "the IPv6 address has no closing ']'; " + _HOST_RULE, within)
        address_text, rest = text[1:end], text[end + 1 :]
        try:
            address = ipaddress.IPv6Address(address_text)
        except ValueError:
            raise _invalid(kind, text, "%r is not an IPv6 address; %s" % (address_text, _HOST_RULE), within) from None
        if "%" in address_text:
            raise _invalid(kind, text, "IPv6 zone identifiers ('%') are not supported", within)
        host = "[%s]" % address.compressed
        if rest and not rest.startswith(":"):
            raise _invalid(kind, text, "only ':port' may follow the bracketed IPv6 address", within)
        port = rest[1:] if rest else None
    else:
        if text.count(":") > 1:
            raise _invalid(kind, text, "an IPv6 address must be in brackets, e.g. '[::1]:5000'", within)
        host, colon, port_text = text.partition(":")
        port = port_text if colon else None
        if not host or not all(_DOMAIN_LABEL.fullmatch(label) for label in host.split(".")):
            raise _invalid(kind, text, _HOST_RULE, within)
        host = host.lower()
    if port is not None:
        if not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
            raise _invalid(kind, text, "the port must be a number from 1 to 65535", within)
        host = "%s:%d" % (host, int(port))
    if host in HUB_ALIASES:
        return DEFAULT_REGISTRY
    return host


def parse_registry(text: object) -> tuple[str | None, str]:
    """Parse a registry option (``127.0.0.1:5000``, ``https://ghcr.io``, ``docker.io``) into ``(scheme, host)``.

    ``scheme`` is ``"http"``/``"https"`` when given explicitly, else None. ``host`` is normalised like a
    reference's registry (Docker Hub aliases become ``docker.io``). A single trailing ``/`` is accepted
    because URLs are often pasted with one; any other path is an error.
    """
    value = _require_text("registry", text, "registry.example.com:5000")
    scheme, rest = _split_scheme(value, "registry")
    if rest.endswith("/"):
        rest = rest[:-1]
    if not rest:
        raise _invalid("registry", value, "no host follows the scheme; " + _HOST_RULE)
    if "/" in rest:
        raise _invalid("registry", value, "a registry is host[:port] without a path; give repositories separately")
    return scheme, _normalise_host(rest, within=None if rest == value else "registry %s" % _quote(value))


def api_host_for(registry: str) -> str:
    """The host[:port] that serves the API for a normalised registry: Docker Hub is ``registry-1.docker.io``."""
    return HUB_API_HOST if registry == DEFAULT_REGISTRY else registry


def is_loopback(host: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1`` (with or without port and brackets)."""
    if not isinstance(host, str) or not host:
        return False
    name = _split_host_port(host)[0]
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def base_url_for(host: str, scheme: str | None = None) -> str:
    """``scheme://api-host``: the explicit scheme, else ``http`` for loopback hosts and ``https`` otherwise."""
    if scheme is None:
        scheme = "http" if is_loopback(host) else "https"
    elif scheme not in SCHEMES:
        raise _invalid("scheme", scheme, "use 'http' or 'https'")
    return "%s://%s" % (scheme, api_host_for(host))


def _split_scheme(value: str, kind: str) -> tuple[str | None, str]:
    match = _SCHEME_PREFIX.match(value)
    if not match:
        return None, value
    scheme = match.group(1).lower()
    if scheme not in SCHEMES:
        raise _invalid(kind, value, "only the 'http://' and 'https://' prefixes are allowed")
    return scheme, value[match.end() :]


def _validate_path(path: str, *, kind: str, value: str) -> None:
    if _UPPERCASE.search(path):
        raise _invalid(
            kind,
            value,
            "repository names must be lowercase, and the repository %s has uppercase letters" % _quote(path),
        )
    for component in path.split("/"):
        if not component:
            raise _invalid(
                kind, value, "the repository %s has an empty part (check for '//' or a '/' at an end)" % _quote(path)
            )
        if not _PATH_COMPONENT.fullmatch(component):
            raise _invalid(kind, value, "%s is not a valid repository part; %s" % (_quote(component), _COMPONENT_RULE))


def _normalise_repository(registry: str, path: str, *, kind: str, value: str) -> str:
    _validate_path(path, kind=kind, value=value)
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = "%s/%s" % (OFFICIAL_NAMESPACE, path)
    full_length = len(registry) + 1 + len(path)
    if full_length > NAME_TOTAL_LENGTH_MAX:
        raise _invalid(
            kind,
            value,
            "registry and repository together are %d characters, and at most %d are allowed"
            % (full_length, NAME_TOTAL_LENGTH_MAX),
        )
    return path


@dataclasses.dataclass(frozen=True)
class Reference:
    """A normalised image reference. Immutable; construct with :func:`parse_reference` or directly.

    Direct construction validates and normalises too: ``Reference("index.docker.io", "alpine")`` is
    ``docker.io/library/alpine``.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None
    scheme: str | None = None
    # The text this was parsed from (None when built directly), so that a message can say how it was read. Not part
    # of what the reference is: equal references compare equal however they were written.
    written: str | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        registry = _require_text("registry", self.registry, "registry.example.com:5000")
        registry = _normalise_host(registry)
        repository = _require_text("repository", self.repository, "team/app")
        repository = _normalise_repository(registry, repository, kind="repository", value=repository)
        if self.scheme is not None and self.scheme not in SCHEMES:
            raise _invalid("scheme", self.scheme, "use 'http', 'https' or None")
        object.__setattr__(self, "registry", registry)
        object.__setattr__(self, "repository", repository)
        if self.tag is not None:
            object.__setattr__(self, "tag", validate_tag(self.tag))
        if self.digest is not None:
            object.__setattr__(self, "digest", validate_digest(self.digest))

    @property
    def api_host(self) -> str:
        """Host[:port] serving the registry API (``registry-1.docker.io`` for Docker Hub)."""
        return api_host_for(self.registry)

    @property
    def base_url(self) -> str:
        """``scheme://api_host``: explicit scheme, else ``http`` for loopback hosts, else ``https``."""
        return base_url_for(self.registry, self.scheme)

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return "%s/%s" % (self.registry, self.repository)

    @property
    def canonical(self) -> str:
        """``registry/repository[:tag][@digest]`` (no scheme), e.g. ``docker.io/library/alpine:latest``."""
        return self.name + self._suffix()

    @property
    def familiar(self) -> str:
        """The short form docker prints: ``alpine:latest``, ``user/app:1``; other registries keep the host."""
        if self.registry != DEFAULT_REGISTRY:
            return self.canonical
        path = self.repository
        prefix = OFFICIAL_NAMESPACE + "/"
        if path.startswith(prefix) and "/" not in path[len(prefix) :]:
            path = path[len(prefix) :]
        return path + self._suffix()

    @property
    def official(self) -> bool:
        """True for Docker Hub official images (``library/NAME``)."""
        namespace, _slash, rest = self.repository.partition("/")
        return self.registry == DEFAULT_REGISTRY and namespace == OFFICIAL_NAMESPACE and "/" not in rest

    @property
    def manifest_reference(self) -> str | None:
        """What goes in ``/v2/<name>/manifests/<reference>``: the digest when there is one, else the tag."""
        return self.digest or self.tag

    @property
    def registry_implied(self) -> bool:
        """True when the text named no registry, so that it was read as a Docker Hub image (``1.1.0`` is
        ``docker.io/library/1.1.0:latest``). False when it names ``docker.io`` itself, and for a reference built
        directly."""
        return self.written is not None and self.registry == DEFAULT_REGISTRY and not _names_registry(self.written)

    @property
    def looks_like_bare_tag(self) -> bool:
        """True for an image reference written as one word, such as ``1.1.0`` or ``stable``: read as a Docker Hub
        repository with the tag ``latest``, although it may well have been meant as a tag."""
        return (
            self.registry_implied
            and self.digest is None
            and self.tag == DEFAULT_TAG
            and self.repository == "%s/%s" % (OFFICIAL_NAMESPACE, self.written)
        )

    def docker_hub_reading(self) -> str:
        """How the text was read, when it named no registry ("" otherwise): the first part of :meth:`docker_hub_note`,
        the same whatever the hint."""
        if not self.registry_implied:
            return ""
        return "%s names no registry, so it was read as the Docker Hub image %s" % (
            _quote(self.written),
            self.canonical,
        )

    def docker_hub_note(self, tag_of: str | None = None) -> str:
        """A sentence for an error about this reference when its text named no registry, else "".

        For text that looks like a bare tag it adds how to name a tag: of the repository ``tag_of`` when given
        (``registry_tag``'s source is a tag of its repository more often than an image on Docker Hub), else of any.
        """
        reading = self.docker_hub_reading()
        if not reading:
            return ""
        if self.looks_like_bare_tag:
            repository = tag_of or "REGISTRY/REPOSITORY"
            reading += "; to name a tag of %s, write %s:%s" % (tag_of or "a repository", repository, self.written)
        return reading + "."

    def with_tag(self, tag: str | None) -> Reference:
        """The same repository with ``tag`` (None removes it); a digest is kept, like docker's WithTag."""
        return dataclasses.replace(self, tag=tag)

    def with_digest(self, digest: str | None) -> Reference:
        """The same repository with ``digest`` (None removes it); a tag is kept, like docker's WithDigest."""
        return dataclasses.replace(self, digest=digest)

    def to_dict(self) -> dict:
        """The parts the ``parse_reference`` filter returns (``scheme``: the one the text gave, else None)."""
        return {
            "registry": self.registry,
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "canonical": self.canonical,
            "familiar": self.familiar,
            "official": self.official,
            "scheme": self.scheme,
        }

    def _suffix(self) -> str:
        suffix = ""
        if self.tag is not None:
            suffix += ":" + self.tag
        if self.digest is not None:
            suffix += "@" + self.digest
        return suffix

    def __str__(self) -> str:
        return self.canonical


def _split(text: object, kind: str) -> tuple[str, str | None, str, str, str | None, str | None]:
    """Split ``text`` into (value, scheme, registry, path, tag, digest) with docker's rules; validate all."""
    value = _require_text(kind, text, "registry.example.com/team/app:1.0")
    scheme, rest = _split_scheme(value, kind)
    within = "%s %s" % (kind, _quote(value))

    rest, at, digest = rest.partition("@")
    if at:
        if not digest:
            raise _invalid(kind, value, "'@' must be followed by a digest such as 'sha256:<64 hex digits>'")
        if "@" in digest:
            raise _invalid(kind, value, "only one '@digest' is allowed")
        digest = validate_digest(digest, within=within)
    else:
        digest = None

    if scheme is not None and "/" not in rest:
        raise _invalid(
            kind,
            value,
            "after '%s://' give a registry host and a repository, e.g. '%s://localhost:5000/team/app'"
            % (scheme, scheme),
        )
    if rest.startswith("[") and "/" not in rest:
        raise _invalid(kind, value, "a repository must follow the registry, e.g. '[::1]:5000/team/app'")

    tag: str | None = None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not tag:
            raise _invalid(kind, value, "':' must be followed by a tag; " + _TAG_RULE)
        tag = validate_tag(tag, within=within)
    if not rest:
        raise _invalid(kind, value, "the repository name is missing; expected " + _REFERENCE_FORM)

    first, slash, remainder = rest.partition("/")
    if slash and (scheme is not None or _is_registry_component(first)):
        registry = _normalise_host(first, within=within)
        path = remainder
    else:
        registry = DEFAULT_REGISTRY
        path = rest
    if not path:
        raise _invalid(kind, value, "a repository must follow the registry %s" % _quote(first))
    repository = _normalise_repository(registry, path, kind=kind, value=value)
    return value, scheme, registry, repository, tag, digest


def _names_registry(text: str) -> bool:
    """Whether reference text names its registry, by the rule :func:`_split` reads it with."""
    scheme, rest = _split_scheme(text, "image reference")
    first, slash, _rest = rest.partition("@")[0].partition("/")
    return scheme is not None or bool(slash and _is_registry_component(first))


def _is_registry_component(component: str) -> bool:
    return "." in component or ":" in component or component.lower() == "localhost" or component.startswith("[")


def parse_reference(text: object, *, default_tag: str | None = DEFAULT_TAG) -> Reference:
    """Parse ``[http(s)://][registry/]repository[:tag][@digest]`` into a normalised :class:`Reference`.

    ``default_tag`` applies only when neither tag nor digest is given; pass None to keep the tag None.
    """
    value, scheme, registry, repository, tag, digest = _split(text, "image reference")
    if tag is None and digest is None and default_tag is not None:
        tag = validate_tag(default_tag)
    return Reference(registry, repository, tag, digest, scheme, written=value)


def parse_repository(text: object) -> Reference:
    """Parse ``[http(s)://][registry/]repository`` (no tag, no digest) into a :class:`Reference`."""
    value, scheme, registry, repository, tag, digest = _split(text, "repository")
    if digest is not None:
        raise _invalid("repository", value, "a repository must not include a digest ('@%s')" % digest)
    if tag is not None:
        reason = "a repository must not include a tag (':%s'); give tags separately" % tag
        host = value[: -len(tag) - 1]
        if "/" not in host and tag.isdigit() and ("." in host or host.lower() == "localhost"):
            reason += " (to name a repository on registry %s, add its path: '%s/NAME')" % (_quote(value), value)
        raise _invalid("repository", value, reason)
    return Reference(registry, repository, None, None, scheme, written=value)
