# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Facts about a registry, a repository or one image: what a ``registry_info`` task gathers.

A registry is its catalog (every page); a repository, its tag list (every page); an image, its details. With
``details``, every tag of every listed repository is described, ``concurrency`` at a time, with one request per tag
and one per distinct config (:mod:`details`). A tag that vanishes while it is read is left out with a warning; one
that cannot be described carries its ``error`` instead of failing the task.

``referrers`` adds each described image's attachments, and ``verify_key`` (with ``image``) the verdicts on its cosign
signatures (:class:`details.AttachmentInspector`, which says what that costs); the tag list that a listing reads
anyway serves the attachments of all its tags. The key is read before any request, and a bad one fails the task.
"""

from __future__ import annotations

import os
from fnmatch import fnmatchcase
from typing import Any, Callable

from ansible_collections.ocireg.registry.plugins.module_utils._concurrency import map_concurrently
from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    DigestMismatchError,
    InvalidInputError,
    NotFoundError,
    RegistryError,
    RegistryResponseError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.platform import (
    format_platform,
    parse_platform,
    platform_names,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import (
    Reference,
    parse_reference,
    parse_registry,
    parse_repository,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.details import (
    DEFAULT_PLATFORM,
    AttachmentInspector,
    ImageInspector,
    ResolvedImage,
    image_details,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.filesystem import validate_paths
from ansible_collections.ocireg.registry.plugins.module_utils._ops.signatures import PublicKey, load_public_key
from ansible_collections.ocireg.registry.plugins.module_utils._registry.api import RegistryClient

MAX_CONCURRENCY = 64
# Errors that make one tag impossible to describe without saying anything about the others.
PER_TAG_ERRORS = (UnsupportedError, RegistryResponseError, DigestMismatchError)
WARNED_TAG_ERRORS = 3
WARNED_DANGLING = 3
MAX_KEY_FILE_BYTES = 64 * 1024  # a PEM public key is a few hundred bytes; RSA-8192 about 1.5 kB

TARGETS = ("registry", "repository", "image")


def validate_options(params: dict[str, Any]) -> list[str]:
    """Every problem with the option values, each naming the option and the value."""
    problems = []
    target = next((name for name in TARGETS if params[name] is not None), None)
    concurrency = params["concurrency"]
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        problems.append("concurrency must be a whole number from 1 to %d, got %d" % (MAX_CONCURRENCY, concurrency))
    if params["max_file_size"] < 0:
        problems.append("max_file_size must be 0 or more bytes, got %d" % params["max_file_size"])
    if params["repositories"] is not None and target != "registry":
        problems.append("repositories filters the repositories of a registry: use it with registry, not %s" % target)
    if params["tags"] is not None and target == "image":
        problems.append("tags filters tag lists: use it with registry or repository, not image")
    if params["paths"] is not None and target != "image":
        problems.append("paths reads files inside one image: use it with image, not %s" % target)
    for option in ("repositories", "tags"):
        for pattern in params[option] or []:
            if not pattern:
                problems.append("%s must hold non-empty fnmatch patterns such as 'team/*', got %r" % (option, pattern))
    if params["paths"] is not None:
        try:
            validate_paths(params["paths"])
        except InvalidInputError as err:
            problems.append(str(err))
    if params["platform"] is not None:
        try:
            parse_platform(params["platform"])
        except InvalidInputError as err:
            problems.append(str(err))
    if params.get("referrers") and target != "image" and not params["details"]:
        problems.append(
            "referrers adds the attachments of each image to its details: use it with image, or with %s and"
            " details=true" % target
        )
    if params.get("verify_key") is not None and target != "image":
        problems.append("verify_key verifies the signatures of one image: use it with image, not %s" % target)
    return problems


def load_verify_key(value: str, option: str = "verify_key") -> PublicKey:
    """The public key that ``option`` gives: its PEM text, or the path of a file that holds it (``~`` expanded).

    Raises :class:`InvalidInputError` naming what is wrong, never quoting the key itself; needs ``cryptography``
    (the caller checks :func:`signatures.cryptography_import_error` first).
    """
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidInputError("%s is empty: give the PEM text of a public key (cosign.pub) or its path." % option)
    if "-----BEGIN" in text or "\n" in text:
        return load_public_key(value, what=option)
    path = os.path.expanduser(text)
    if not os.path.isfile(path):
        raise InvalidInputError(
            "%s is neither the PEM text of a public key (it has no '-----BEGIN PUBLIC KEY-----' line) nor the path of"
            " a file that exists on the host that runs the task." % option
        )
    try:
        with open(path, "rb") as key_file:
            data = key_file.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as err:
        raise InvalidInputError(
            "%s names the file %s, which cannot be read: %s." % (option, path, err.strerror)
        ) from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise InvalidInputError(
            "%s names the file %s, which is larger than %d bytes: not a PEM public key."
            % (option, path, MAX_KEY_FILE_BYTES)
        )
    return load_public_key(data, what="%s (the file %s)" % (option, path))


def matches(name: str, patterns: list[str] | None) -> bool:
    return patterns is None or any(fnmatchcase(name, pattern) for pattern in patterns)


class Inventory:
    """Gathers the facts of one ``registry_info`` task."""

    def __init__(
        self,
        params: dict[str, Any],
        make_clients: Callable[[Reference | str, int], Any],
        warn: Callable[[str], None],
    ):
        """``params``: the task's options; ``make_clients(primary, pool_size)``: the registry clients of a task whose
        main reference (or registry host) is ``primary``; ``warn``: tells the user something, at once."""
        self.params = params
        self.make_clients = make_clients
        self.warn = warn
        self.concurrency = self.params["concurrency"]
        # The platform asked for (None: not asked), and the one an index is described for.
        given = self.params["platform"]
        self.platform_given = format_platform(parse_platform(given)) if given is not None else None
        self.platform = self.platform_given or DEFAULT_PLATFORM
        self.tag_errors: list[str] = []
        self.vanished: list[str] = []
        self.referrers = bool(self.params.get("referrers"))
        # Read before any request: a key that cannot be used fails the task before it has asked anything.
        given_key = self.params.get("verify_key")
        self.key = load_verify_key(given_key) if given_key is not None else None
        self.tag_lists: dict[str, list[str]] = {}  # repository -> every tag, as listed
        self.attachment_inspectors: list[AttachmentInspector] = []

    def run(self) -> dict[str, Any]:
        if self.params["registry"] is not None:
            result = self.list_registry(self.params["registry"])
        elif self.params["repository"] is not None:
            result = self.list_repository(self.params["repository"])
        else:
            result = self.describe_image(self.params["image"])
        self._warn_about_tags()
        self._warn_about_dangling()
        return dict(result, changed=False)

    def _clients(self, primary: Reference | str | None) -> Any:
        return self.make_clients(primary, max(16, self.concurrency))

    # -- registry ---------------------------------------------------------------------------------

    def list_registry(self, text: str) -> dict[str, Any]:
        scheme, host = parse_registry(text)
        # The catalog and every repository live on this one endpoint: one client, for the registry itself.
        clients = self._clients(host)
        client = clients.for_registry(host, scheme)
        try:
            registry = client.ping()
            names = sorted(name for name in self._catalog(client) if matches(name, self.params["repositories"]))
            repositories: list[dict[str, Any]] = [{"name": name} for name in names]
            if self.params["tags"] is not None or self.params["details"]:
                tag_lists = map_concurrently(lambda name: self._tags(client, name), names, self.concurrency)
                for entry, tags in zip(repositories, tag_lists):
                    entry["tags"] = tags if tags is not None else []
                if self.params["details"]:
                    inspector = ImageInspector(client, self.platform_given)
                    attachments = self._attachment_inspector(client, names)
                    work = [(entry, tag) for entry in repositories for tag in entry["tags"]]
                    described = map_concurrently(
                        lambda item: self._describe_tag(inspector, attachments, host, item[0]["name"], item[1]),
                        work,
                        self.concurrency,
                    )
                    for entry in repositories:
                        entry["tags"] = []
                    for (entry, _tag), details in zip(work, described):
                        if details is not None:
                            entry["tags"].append(details)
        finally:
            clients.close()
        return {"registry": registry, "repositories": repositories, "exists": True, "missing": None}

    def _catalog(self, client: RegistryClient) -> list[str]:
        try:
            return client.catalog()
        except RegistryError as err:
            # 404 and 405 both mean "no catalog here", whatever error code the registry puts in the body.
            if not isinstance(err, UnsupportedError) and err.status not in (404, 405):
                raise
            message = str(err).rstrip(".")
            if "catalog" not in message:
                message = (
                    "Registry %s does not offer the catalog API (/v2/_catalog), an extension that many hosted"
                    " registries refuse (%s)" % (client.registry, message)
                )
            raise UnsupportedError(
                "%s. Give a repository instead of a registry to list its tags." % message,
                registry=client.registry,
                status=err.status,
            ) from None

    # -- repository -------------------------------------------------------------------------------

    def _tags(self, client: RegistryClient, repository: str) -> list[str] | None:
        """The matching tags of ``repository``, or None when it does not exist (or no longer does)."""
        try:
            tags = client.list_tags(repository)
        except NotFoundError:
            return None
        self.tag_lists[repository] = list(tags)
        return sorted(tag for tag in tags if matches(tag, self.params["tags"]))

    def _attachment_inspector(self, client: RegistryClient, repositories: list[str]) -> AttachmentInspector | None:
        """With ``referrers``, what finds the attachments in ``client``'s registry, knowing the tag lists read."""
        if not self.referrers:
            return None
        attachments = AttachmentInspector(client)
        for repository in repositories:
            if repository in self.tag_lists:
                attachments.know_tags(repository, self.tag_lists[repository])
        self.attachment_inspectors.append(attachments)
        return attachments

    def list_repository(self, text: str) -> dict[str, Any]:
        reference = parse_repository(text)
        clients = self._clients(reference)
        try:
            client = clients.for_reference(reference)
            registry = client.ping()
            tags = self._tags(client, reference.repository)
            if tags is None:
                return {"registry": registry, "tags": [], "exists": False, "missing": "repository"}
            if not self.params["details"]:
                return {"registry": registry, "tags": tags, "exists": True, "missing": None}
            inspector = ImageInspector(client, self.platform_given)
            attachments = self._attachment_inspector(client, [reference.repository])
            described = map_concurrently(
                lambda tag: self._describe_tag(inspector, attachments, reference.registry, reference.repository, tag),
                tags,
                self.concurrency,
            )
        finally:
            clients.close()
        tags = [entry for entry in described if entry is not None]
        return {"registry": registry, "tags": tags, "exists": True, "missing": None}

    def _describe_tag(
        self,
        inspector: ImageInspector,
        attachments: AttachmentInspector | None,
        host: str,
        repository: str,
        tag: str,
    ) -> dict | None:
        """One tag's details (with ``attachments``, its referrers too); None when it vanished since the tag list was
        read."""
        name = "%s/%s" % (host, repository)
        try:
            resolved = inspector.resolve(repository, tag)
            details = image_details(name, tag, resolved)
            if attachments is not None:
                details.update(attachments.details(repository, resolved.top.digest, referrers=True, signatures=False))
        except NotFoundError:
            self.vanished.append("%s:%s" % (name, tag))
            return None
        except PER_TAG_ERRORS as err:
            self.tag_errors.append("%s:%s: %s" % (name, tag, err))
            return {"name": name, "tag": tag, "error": str(err)}
        return details

    def _warn_about_tags(self) -> None:
        if self.vanished:
            self.warn(
                "%d tag(s) disappeared while their details were read, and are left out: %s"
                % (len(self.vanished), ", ".join(sorted(self.vanished)))
            )
        if self.tag_errors:
            shown = sorted(self.tag_errors)[:WARNED_TAG_ERRORS]
            more = len(self.tag_errors) - len(shown)
            self.warn(
                "%d tag(s) could not be described (see their 'error'): %s%s"
                % (len(self.tag_errors), "; ".join(shown), "; and %d more" % more if more else "")
            )

    def _warn_about_dangling(self) -> None:
        dangling = sorted({entry for inspector in self.attachment_inspectors for entry in inspector.dangling})
        if dangling:
            shown = dangling[:WARNED_DANGLING]
            more = len(dangling) - len(shown)
            self.warn(
                "%d referrer(s) listed by a fallback index (tag sha256-<hex>) could not be read, and are reported as"
                " the index describes them (on distribution, garbage-collect --delete-untagged removes referrers that"
                " only a fallback index names): %s%s"
                % (len(dangling), "; ".join(shown), "; and %d more" % more if more else "")
            )

    # -- image ------------------------------------------------------------------------------------

    def describe_image(self, text: str) -> dict[str, Any]:
        reference = parse_reference(text)
        paths = self.params["paths"]
        clients = self._clients(reference)
        try:
            client = clients.for_reference(reference)
            registry = client.ping()
            inspector = ImageInspector(client, self.platform_given)
            try:
                resolved = inspector.resolve(reference.repository, reference.manifest_reference)
            except NotFoundError as err:
                missing = self._what_is_missing(client, reference, err)
                result: dict[str, Any] = {"registry": registry, "image": None, "exists": False, "missing": missing}
                if paths is not None:
                    result["files"] = {}
                return result
            details = image_details(reference.name, reference.tag, resolved)
            if self.referrers or self.key is not None:
                attachments = AttachmentInspector(client, self.key)
                self.attachment_inspectors.append(attachments)
                details.update(
                    attachments.details(
                        reference.repository,
                        resolved.top.digest,
                        referrers=self.referrers,
                        signatures=self.key is not None,
                    )
                )
            missing = None
            if resolved.platform_matched is False:
                missing = "platform"
                self._warn_about_platform(reference, resolved)
            result = {"registry": registry, "image": details, "exists": True, "missing": missing}
            if paths is not None:
                result["files"] = inspector.read_paths(
                    reference.repository, resolved, paths, self.params["max_file_size"]
                )
                self._warn_about_omitted(result["files"])
        finally:
            clients.close()
        return result

    @staticmethod
    def _what_is_missing(client: RegistryClient, reference: Reference, error: NotFoundError) -> str:
        """``repository``, ``tag`` or ``digest``: what the manifest GET that answered 404 did not find.

        distribution answers MANIFEST_UNKNOWN whether the repository or the tag is missing, so unless the error
        says NAME_UNKNOWN, this costs one tag list, and only for an image that is not there.
        """
        by_reference = "digest" if reference.digest else "tag"
        if "NAME_UNKNOWN" in error.codes:
            return "repository"
        try:
            client.list_tags(reference.repository)
        except NotFoundError:
            return "repository"
        except RegistryError:
            pass  # refused (a token without list rights, say): the reference is what is known to be missing
        return by_reference

    def _warn_about_platform(self, reference: Reference, resolved: ResolvedImage) -> None:
        if resolved.top.is_index:
            self.warn(
                "%s is a multi-platform index without platform %s, so its platform details are empty; it holds: %s"
                % (reference.canonical, self.platform, platform_names(resolved.top))
            )
        else:
            self.warn(
                "%s is a single-platform %s image, not %s (platform): its details are those of %s"
                % (reference.canonical, resolved.own_platform, self.platform, resolved.own_platform)
            )

    def _warn_about_omitted(self, files: dict[str, dict]) -> None:
        omitted = sorted(path for path, entry in files.items() if entry.get("content_omitted"))
        if omitted:
            self.warn(
                "Content left out of %s: bigger than max_file_size (%d bytes)"
                % (", ".join(omitted), self.params["max_file_size"])
            )
