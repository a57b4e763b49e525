# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Platforms (``os/architecture[/variant]``): parsing, matching, and choosing the children of an index."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError, NotFoundError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import (
    Descriptor,
    ManifestInfo,
    parse_manifest,
)

_PLATFORM_PART = re.compile(r"[a-z0-9][a-z0-9._-]*")
_ARCHITECTURE_ALIASES = {
    "x86_64": ("amd64", None),
    "x86-64": ("amd64", None),
    "aarch64": ("arm64", None),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
}

# The variant an architecture means when none is written (containerd's normalisation).
_DEFAULT_VARIANTS = {"arm64": "v8", "arm": "v7", "amd64": "v1"}
_PLATFORM_FORM = "expected 'os/architecture[/variant]', e.g. 'linux/amd64' or 'linux/arm64/v8'"


def parse_platform(text: object) -> dict:
    """``"linux/arm64/v8"`` -> ``{"os": "linux", "architecture": "arm64", "variant": "v8"}`` (variant None if absent).

    Lowercases, and maps common aliases (``x86_64`` -> ``amd64``, ``aarch64`` -> ``arm64``, ``armhf`` ->
    ``arm/v7``); raises :class:`InvalidInputError` naming the value otherwise.
    """
    if not isinstance(text, str):
        raise InvalidInputError("Invalid platform %r: %s." % (text, _PLATFORM_FORM))
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(_PLATFORM_PART.fullmatch(part) for part in parts):
        raise InvalidInputError("Invalid platform %r: %s." % (text, _PLATFORM_FORM))
    os_name, architecture = parts[0], parts[1]
    variant = parts[2] if len(parts) == 3 else None
    architecture, alias_variant = _ARCHITECTURE_ALIASES.get(architecture, (architecture, None))
    if variant is None:
        variant = alias_variant
    elif architecture in ("arm", "arm64") and variant.isdigit():
        variant = "v" + variant  # containerd accepts linux/arm64/8 for v8
    return {"os": os_name, "architecture": architecture, "variant": variant}


def format_platform(platform: dict) -> str:
    """``{"os": "linux", "architecture": "arm64", "variant": "v8"}`` -> ``"linux/arm64/v8"``."""
    if not isinstance(platform, dict) or not platform.get("os") or not platform.get("architecture"):
        raise InvalidInputError("Invalid platform %r: it needs 'os' and 'architecture'." % (platform,))
    parts = [platform["os"], platform["architecture"]]
    if platform.get("variant"):
        parts.append(platform["variant"])
    return "/".join(str(part) for part in parts)


def _normalised_platform(platform: object) -> tuple | None:
    """(os, architecture, variant-with-default) for comparison, or None when it is not a usable platform."""
    if isinstance(platform, str):
        platform = parse_platform(platform)
    if not isinstance(platform, dict):
        return None
    os_name = platform.get("os")
    architecture = platform.get("architecture")
    if not isinstance(os_name, str) or not isinstance(architecture, str):
        return None
    os_name, architecture = os_name.lower(), architecture.lower()
    variant = platform.get("variant")
    architecture, alias_variant = _ARCHITECTURE_ALIASES.get(architecture, (architecture, None))
    variant = (variant.lower() if isinstance(variant, str) and variant else None) or alias_variant
    if variant is not None and architecture in ("arm", "arm64") and variant.isdigit():
        variant = "v" + variant
    return os_name, architecture, variant or _DEFAULT_VARIANTS.get(architecture)


def platform_matches(wanted: str | dict, descriptor_platform: dict | None) -> bool:
    """True when a descriptor's platform is ``wanted``: ``linux/arm64`` equals ``linux/arm64/v8``,
    ``linux/amd64`` equals ``linux/amd64/v1``, ``linux/arm`` equals ``linux/arm/v7``.

    OS version and features are not compared.
    """
    wanted_key = _normalised_platform(wanted)
    if wanted_key is None:
        raise InvalidInputError("Invalid platform %r: %s." % (wanted, _PLATFORM_FORM))
    return _normalised_platform(descriptor_platform) == wanted_key


def select_platform(index_info: ManifestInfo, wanted: str | dict) -> Descriptor:
    """The first child manifest of an index that matches ``wanted``; :class:`NotFoundError` lists the others."""
    if not isinstance(index_info, ManifestInfo) or not index_info.is_index:
        raise InvalidInputError(
            "select_platform needs an image index or manifest list, not %s."
            % getattr(index_info, "media_type", type(index_info).__name__)
        )
    for child in index_info.manifests:
        if child.platform is not None and platform_matches(wanted, child.platform):
            return child
    wanted_text = wanted if isinstance(wanted, str) else format_platform(wanted)
    raise NotFoundError(
        "No manifest for platform %s in the index %s; available platforms: %s."
        % (wanted_text, index_info.digest, platform_names(index_info))
    )


# buildx attestation manifests name the image manifest they describe with this annotation.
REFERENCE_DIGEST_ANNOTATION = "vnd.docker.reference.digest"


def is_attestation(descriptor: Descriptor) -> bool:
    """A buildx attestation manifest in an index: platform ``unknown/unknown``, or naming the image it describes."""
    platform = descriptor.platform or {}
    return "unknown" in (platform.get("os"), platform.get("architecture")) or bool(
        (descriptor.annotations or {}).get(REFERENCE_DIGEST_ANNOTATION)
    )


def platform_names(index: ManifestInfo) -> str:
    """The platforms an index offers, ``linux/amd64, linux/arm64/v8``, for messages; attestations left out."""
    names = [
        format_platform(child.platform)
        for child in index.manifests
        if isinstance(child.platform, dict)
        and isinstance(child.platform.get("os"), str)
        and isinstance(child.platform.get("architecture"), str)
        and not is_attestation(child)
    ]
    return ", ".join(names) if names else "none"


def select_children(index: ManifestInfo, platforms: list[str]) -> list[int]:
    """Positions of the children of ``index`` to keep for ``platforms``, with their attestations."""
    chosen: list[int] = []
    for wanted in platforms:
        found = [
            position
            for position, child in enumerate(index.manifests)
            if child.platform is not None and not is_attestation(child) and platform_matches(wanted, child.platform)
        ]
        if not found:
            raise NotFoundError(
                "The source image has no platform %s; it has %s" % (wanted, platform_names(index)),
            )
        chosen.extend(position for position in found[:1] if position not in chosen)
    kept_digests = {index.manifests[position].digest for position in chosen}
    for position, child in enumerate(index.manifests):
        described = (child.annotations or {}).get(REFERENCE_DIGEST_ANNOTATION)
        if described in kept_digests and position not in chosen:
            chosen.append(position)
    return sorted(chosen)


def subset_index(index: ManifestInfo, positions: list[int]) -> ManifestInfo:
    """A new index holding only the children at ``positions`` (everything else in the document kept)."""
    document = json.loads(index.raw)
    document["manifests"] = [document["manifests"][position] for position in positions]
    raw = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return parse_manifest(raw, index.media_type)


def parse_platforms(platforms: Iterable[Any] | None) -> list[str] | None:
    """Validate platform names (``os/arch[/variant]``); None or empty means every platform."""
    if platforms is None:
        return None
    names: list[str] = []
    for text in platforms:
        parse_platform(text)  # raises InvalidInputError naming the value
        if text not in names:
            names.append(text)
    return names or None


PLATFORMS_FORM = "'all' or a list of platforms such as [linux/amd64, linux/arm64/v8]"


def platforms_option(value: Any) -> list[str] | None:
    """A ``platforms`` option: ``all`` -> None (every platform); else the validated names, repeats dropped."""
    if isinstance(value, str):
        if value.strip().lower() == "all":
            return None
        value = [part.strip() for part in value.split(",")]
    if not isinstance(value, list) or not value:
        raise InvalidInputError("platforms must be %s; got %r" % (PLATFORMS_FORM, value))
    for item in value:
        if not isinstance(item, str) or item.strip().lower() == "all":
            raise InvalidInputError(
                "platforms must be %s; %r is not a platform name in the list %r" % (PLATFORMS_FORM, item, value)
            )
    try:
        return parse_platforms(value)
    except InvalidInputError as err:
        raise InvalidInputError("platforms: %s" % err) from None
