# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit_report filter and attachments: attachment tags listed with their subject, signature counts, ``unsigned``
images in the repositories that must be signed, and ``orphaned_attachment`` tags."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ocireg.registry.plugins.filter import audit_report as plugin

NOW = "2025-01-31T00:00:00Z"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PREDICATE = "dev.sigstore.bundle.predicateType"


def digest(char: str) -> str:
    return "sha256:" + char * 64


def tag_of(char: str, suffix: str = "") -> str:
    return "sha256-" + char * 64 + suffix


def details(tag, image, *, layers=(("1", 1000),), referrers=None, platforms=None, created="2025-01-30T00:00:00Z"):
    entry = {
        "name": "registry.example.com/x",
        "tag": tag,
        "digest": digest(image),
        "media_type": "application/vnd.oci.image.manifest.v1+json",
        "size": sum(size for _d, size in layers) + 100,
        "created": created,
        "labels": {},
        "layers": [{"digest": digest(d), "size": size} for d, size in layers],
        "platforms": platforms or [],
    }
    if referrers is not None:
        entry["referrers"] = referrers
    return entry


def referrer(subject, attachment, artifact_type, via="fallback_tag", annotations=None):
    return {
        "subject": digest(subject),
        "digest": digest(attachment),
        "artifact_type": artifact_type,
        "annotations": annotations,
        "via": via,
        "tag": None,
    }


def report(repositories, **options):
    options.setdefault("now", NOW)
    options.setdefault("required_labels", [])
    options.setdefault("require_latest", False)
    return plugin.audit_report(repositories, **options)


def kinds(result):
    return [(f["severity"], f["kind"], f["repository"], f["tags"]) for f in result["findings"]]


def signed_repository(name="team/app"):
    """1.0 on image a: a .sig with two signatures, a signature bundle, an attestation bundle, and a countersignature
    of the bundle (whose subject is the bundle, not a). 2.0 on image b: only an attestation. 3.0 on image c: nothing.
    Plus a .sig whose subject is gone, and a fallback index on a."""
    a_referrers = [
        referrer("a", "5", BUNDLE, annotations={PREDICATE: "https://sigstore.dev/cosign/sign/v1"}),
        referrer("a", "6", BUNDLE, annotations={PREDICATE: "https://slsa.dev/provenance/v1"}),
        referrer("a", "s", "cosign-signature", via="cosign_tag"),
        referrer("5", "7", BUNDLE),
    ]
    return {
        "name": name,
        "tags": [
            details("1.0", "a", referrers=a_referrers, created="2020-01-01T00:00:00Z"),
            details("2.0", "b", referrers=[referrer("b", "9", "cosign-attestation", via="cosign_tag")]),
            details("3.0", "c", referrers=[]),
            details(tag_of("a", ".sig"), "s", layers=(("x", 300), ("y", 300)), referrers=[], created=None),
            details(tag_of("b", ".att"), "9", layers=(("z", 300),), referrers=[], created="2000-01-01T00:00:00Z"),
            details(tag_of("a"), "f", layers=(), referrers=[], created=None),
            details(tag_of("d", ".sig"), "g", layers=(("w", 300),), referrers=[], created=None),
        ],
    }


def test_attachment_tags_are_listed_with_their_subject_and_are_no_images():
    result = report([signed_repository()], stale_after="90d", required_labels=["org.opencontainers.image.source"])
    repository = result["repositories"][0]
    assert [tag["tag"] for tag in repository["tags"]] == ["1.0", "2.0", "3.0"]
    assert [
        (a["tag"], a["kind"], a["subject"], a["subject_tags"], a["orphaned"]) for a in repository["attachments"]
    ] == [
        (tag_of("a"), "referrers-index", digest("a"), ["1.0"], False),
        (tag_of("a", ".sig"), "cosign-signature", digest("a"), ["1.0"], False),
        (tag_of("b", ".att"), "cosign-attestation", digest("b"), ["2.0"], False),
        (tag_of("d", ".sig"), "cosign-signature", digest("d"), [], True),
    ]
    assert repository["images"] == 3
    assert (result["summary"]["tags"], result["summary"]["attachments"], result["summary"]["images"]) == (3, 4, 3)
    # Stale and missing labels only for the images; the old .att is no stale image.
    flagged = {(f["kind"], tuple(f["tags"])) for f in result["findings"]}
    assert ("stale", ("1.0",)) in flagged
    assert all(not tag.startswith("sha256-") for kind, tags in flagged if kind != "orphaned_attachment" for tag in tags)
    # Their blobs are stored in the repository, so they count in its size (shared layer 1 once).
    assert repository["size"] == 1000 + 3 * 100 + (300 + 300 + 100) + (300 + 100) + 100 + (300 + 100)


def test_signatures_are_counted_per_image():
    repository = report([signed_repository()])["repositories"][0]
    counts = {tag["tag"]: tag["signatures"] for tag in repository["tags"]}
    # a: two in the .sig (one per layer, as cosign tree counts them), one signature bundle; the attestation bundle
    # and the countersignature (of the bundle, not of a) do not count. b: an attestation is no signature.
    assert counts == {"1.0": 3, "2.0": 0, "3.0": 0}
    assert repository["signed_images"] == 1


def test_a_sig_whose_image_was_not_described_counts_once():
    tags = [details("1.0", "a", referrers=[referrer("a", "s", "cosign-signature", via="cosign_tag")])]
    assert report([{"name": "r", "tags": tags}])["repositories"][0]["tags"][0]["signatures"] == 1


def test_without_referrers_the_counts_are_unknown():
    result = report([{"name": "team/app", "tags": [details("1.0", "a")]}])
    assert result["repositories"][0]["tags"][0]["signatures"] is None
    assert result["repositories"][0]["signed_images"] is None
    assert (result["summary"]["signed_images"], result["summary"]["unsigned_images"]) == (None, None)


def test_unsigned_images_are_findings_only_in_the_repositories_that_must_be_signed():
    repositories = [signed_repository("prod/app"), signed_repository("prod/team/tool"), signed_repository("dev/app")]
    result = report(repositories, signed_repositories=["prod/*"], orphaned_attachments=False)
    unsigned = [f for f in result["findings"] if f["kind"] == "unsigned"]
    # Shell-style patterns, as audit_repositories: * matches / too.
    assert [(f["severity"], f["repository"], f["tags"], f["digest"]) for f in unsigned] == [
        ("error", "prod/app", ["2.0"], digest("b")),
        ("error", "prod/app", ["3.0"], digest("c")),
        ("error", "prod/team/tool", ["2.0"], digest("b")),
        ("error", "prod/team/tool", ["3.0"], digest("c")),
    ]
    assert unsigned[0]["message"] == (
        "prod/app:2.0 is not signed: no cosign signature or sigstore bundle names %s (signed_repositories: prod/*)"
        % digest("b")
    )
    assert (result["summary"]["signed_images"], result["summary"]["unsigned_images"]) == (3, 6)
    assert result["summary"]["kinds"] == {"unsigned": 4, "stale": 3}
    assert result["settings"]["signed_repositories"] == ["prod/*"]


def test_an_image_is_signed_by_a_sig_alone_or_a_bundle_alone():
    for found in (
        [referrer("a", "s", "cosign-signature", via="cosign_tag")],
        [referrer("a", "5", BUNDLE, via="api")],
        [referrer("a", "5", "application/vnd.dev.sigstore.bundle+json;version=0.2")],
    ):
        result = report(
            [{"name": "prod/app", "tags": [details("1.0", "a", referrers=found)]}], signed_repositories=["*"]
        )
        assert [f for f in result["findings"] if f["kind"] == "unsigned"] == [], found


def test_signed_repositories_without_referrers_fail_saying_what_to_do():
    with pytest.raises(
        AnsibleFilterError,
        match=r"signed_repositories names prod/app, but the attachments of prod/app:1"
        r".0 were not read: run registry_info with referrers: true",
    ):
        report([{"name": "prod/app", "tags": [details("1.0", "a")]}], signed_repositories=["prod/*"])
    # A repository that need not be signed is fine without them.
    assert (
        report([{"name": "dev/app", "tags": [details("1.0", "a")]}], signed_repositories=["prod/*"])["findings"] == []
    )


def test_orphaned_attachments():
    result = report([signed_repository()])
    orphans = [f for f in result["findings"] if f["kind"] == "orphaned_attachment"]
    assert [(f["severity"], f["tags"], f["digest"]) for f in orphans] == [
        ("warning", [tag_of("d", ".sig")], digest("g"))
    ]
    assert orphans[0]["message"] == (
        "team/app:%s is a cosign signature of %s, which is not in team/app (no tag points at it or at an index"
        " holding it): delete it, for example with registry_repo's retention orphans: true"
        % (tag_of("d", ".sig"), digest("d"))
    )


def test_a_subject_may_be_a_child_of_an_index_or_another_attachment():
    child = {"os": "linux", "architecture": "arm64", "variant": None, "digest": digest("e"), "size": 400}
    tags = [
        details("1.0", "a", platforms=[child]),
        details(tag_of("e", ".att"), "9"),  # of the index's child
        details(tag_of("9", ".sig"), "8"),  # of the attestation
        details(tag_of("5", ".sig"), "4"),  # of a referrer listed for 1.0 (read with referrers)
    ]
    tags[0]["referrers"] = [referrer("a", "5", BUNDLE)]
    result = report([{"name": "team/app", "tags": tags}])
    assert [f for f in result["findings"] if f["kind"] == "orphaned_attachment"] == []
    # Sorted by tag: the .sig of the referrer, the .sig of the attestation, the attestation.
    assert [a["subject_tags"] for a in result["repositories"][0]["attachments"]] == [[], [tag_of("e", ".att")], []]


def test_orphans_are_not_judged_when_a_tag_could_not_be_described_or_when_turned_off():
    unreadable = signed_repository()
    unreadable["tags"].append({"name": "registry.example.com/x", "tag": "old", "error": "schema 1"})
    assert [f for f in report([unreadable])["findings"] if f["kind"] == "orphaned_attachment"] == []
    turned_off = report([signed_repository()], orphaned_attachments=False)
    assert [f for f in turned_off["findings"] if f["kind"] == "orphaned_attachment"] == []
    assert turned_off["settings"]["orphaned_attachments"] is False


def test_a_repository_of_attachments_only_is_empty_of_images():
    result = report([{"name": "team/gone", "tags": [details(tag_of("d", ".sig"), "g")]}])
    assert kinds(result) == [
        ("warning", "orphaned_attachment", "team/gone", [tag_of("d", ".sig")]),
        ("info", "empty_repository", "team/gone", []),
    ]
    assert result["findings"][1]["message"] == "team/gone has no tags besides 1 attachment tag(s)"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"signed_repositories": "prod/*"}, r"signed_repositories must be a list of repository name patterns"),
        ({"signed_repositories": ["prod/*", ""]}, r"signed_repositories: every pattern must be a non-empty string"),
        ({"orphaned_attachments": "yes"}, r"orphaned_attachments must be true or false, got 'yes'"),
    ],
)
def test_bad_attachment_settings_fail_in_both_filters(options, message):
    with pytest.raises(AnsibleFilterError, match=message):
        report([], **options)
    with pytest.raises(AnsibleFilterError, match=message):
        plugin.audit_settings(options)


def test_audit_settings_records_the_attachment_settings():
    checked = plugin.audit_settings({"signed_repositories": ["prod/*"], "orphaned_attachments": False})
    assert (checked["signed_repositories"], checked["orphaned_attachments"]) == (["prod/*"], False)
    assert plugin.audit_settings({})["signed_repositories"] == []
