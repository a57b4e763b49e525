"""registry_repo and attachments (``retention.attachments``, ``retention.orphans``, ``state: absent``) against the real
distribution registry (2.8: no referrers API, so referrers are found in the fallback tag ``sha256-<hex>``), run
through ansible-playbook, with skopeo as the witness.

Signatures are made by support/cosign.py to cosign's byte layouts: cosign 2's ``.sig``/``.att`` images under their
tags, and cosign 3's sigstore bundle referrers (no tag) listed in a fallback index. Each case runs in check mode
(reports exactly what then goes, changes nothing), for real (attachments gone before their image, in the access log),
and again (not changed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support import cosign
from support.client import ClientFactory
from support.images import Image
from support.rawhttp import RawClient
from support.registry import RegistryServer
from support.skopeo import Skopeo
from test_registry_repo import only_delete_checks, outcome, reasons, recent, repo_task, snapshot
from test_registry_tag import assert_ok

Playbook = Callable[..., Any]


@pytest.fixture
def connect() -> Iterator[ClientFactory]:
    factory = ClientFactory()
    yield factory
    factory.close()


class Signed:
    """An image pushed under TAG with cosign 2's ``.sig`` and ``.att`` and a cosign 3 signature bundle in its fallback
    index: every kind of attachment a retention run must take along."""

    def __init__(self, server: RegistryServer, client: Any, raw: RawClient, repo: str, image: Image, tag: str):
        self.image = image
        raw.push_image(image, repo, [tag])
        key = cosign.signing_key("ecdsa-p256")
        reference = f"{server.host}/{repo}"
        self.signature = cosign.signature_image(
            image.digest, [cosign.simple_signature(image.digest, key, docker_reference=reference)]
        )
        cosign.push(client, repo, self.signature)
        self.attestation = cosign.attestation_image(
            image.digest, [cosign.attestation_layer(image.digest, key, docker_reference=reference)]
        )
        cosign.push(client, repo, self.attestation)
        self.bundle = cosign.sign_bundle(cosign.subject_of(image), key, created="2025-06-01T12:00:00Z")
        self.index = cosign.push_referrers(client, repo, image.digest, [self.bundle])

    @property
    def tags(self) -> list[str]:
        """The attachment tags: the fallback index's, the ``.att``'s and the ``.sig``'s, sorted."""
        return sorted([cosign.referrers_tag(self.image.digest), self.signature.tag, self.attestation.tag])

    @property
    def attachments(self) -> list[str]:
        """The digests of the attachments that go before the fallback index (any order among themselves)."""
        return sorted([self.signature.digest, self.attestation.digest, self.bundle.digest])

    @property
    def digests(self) -> list[str]:
        return self.attachments + [self.index.digest, self.image.digest]


def deletes(server: RegistryServer, mark: int, repo: str) -> list[str]:
    """The digests REPO's manifests were deleted by since MARK, in the order the registry answered (202)."""
    prefix = f"/v2/{repo}/manifests/"
    return [
        entry["path"][len(prefix) :]
        for entry in server.requests_since(mark)
        if entry["method"] == "DELETE" and entry["status"] == 202 and entry["path"].startswith(prefix)
    ]


def test_keep_last_deletes_an_old_signed_image_after_its_attachments_and_keeps_the_new_ones_signatures(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    raw_client: Callable[..., RawClient],
    connect: ClientFactory,
    playbook: Playbook,
    unique_repo: str,
) -> None:
    server, repo = registry_open, unique_repo
    sk, raw, client = skopeo(server), raw_client(server), connect(server, repo)
    old = Signed(server, client, raw, repo, image_factory(created="2001-01-01T00:00:00Z", layers=1), "1.0")
    new = Signed(server, client, raw, repo, image_factory(created=recent(), layers=1), "2.0")
    before = snapshot(sk, repo, old.digests + new.digests)
    tasks = [repo_task("retain", server, repository=f"{server.host}/{repo}", retention={"keep_last": 1})]
    expected = {
        "deleted_tags": sorted(["1.0"] + old.tags),
        "kept_tags": sorted(["2.0"] + new.tags),
        "deleted_digests": sorted(old.digests),
    }

    mark = server.mark()
    check = playbook(tasks, check=True, diff=True)
    preview = check.task("retain")
    assert_ok(preview, True)
    assert outcome(preview) == expected
    assert reasons(preview) == {
        "1.0": ("deleted", "keep_last", "digest"),
        "2.0": ("kept", "keep_last", None),
        **{tag: ("deleted", "attachment", "digest") for tag in old.tags},
        **{tag: ("kept", "attachment", None) for tag in new.tags},
    }
    by_tag = {entry["tag"]: entry for entry in preview["tags"]}
    assert by_tag[old.signature.tag]["detail"].startswith(
        "the cosign signature of %s (tag 1.0), which goes: an attachment goes with its subject, before it"
        % old.image.digest
    )
    assert [(r["digest"], r["subject"], r["via"], r["action"], r["reason"]) for r in preview["referrers"]] == [
        (old.bundle.digest, old.image.digest, "fallback_tag", "deleted", "attachment")
    ]
    assert preview["referrers"][0]["artifact_type"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert preview["diff"]["after"] == {"tags": expected["kept_tags"]}
    assert "deleted referrer %s (attachment): " % old.bundle.digest in preview["diff"]["prepared"]
    assert "deleted %s (attachment): " % old.signature.tag in check.stdout  # what --diff prints
    assert only_delete_checks(server.requests_since(mark)) == 1
    assert snapshot(sk, repo, old.digests + new.digests) == before, "check mode wrote to the registry"

    mark = server.mark()
    result = playbook(tasks, diff=True).task("retain")
    assert_ok(result, True)
    assert (outcome(result), result["tags"], result["referrers"]) == (
        outcome(preview),
        preview["tags"],
        preview["referrers"],
    )
    gone = deletes(server, mark, repo)
    # the attachments first, then the fallback index that listed the bundle, then the image: never a signature
    # without its image, even if the run had stopped halfway
    assert sorted(gone[:3]) == old.attachments
    assert gone[3:] == [old.index.digest, old.image.digest]
    tags, present = snapshot(sk, repo, old.digests + new.digests)
    assert sorted(tags) == expected["kept_tags"]
    assert present == {**dict.fromkeys(old.digests, False), **dict.fromkeys(new.digests, True)}

    mark = server.mark()
    again = playbook(tasks).task("retain")
    assert_ok(again, False)
    assert (again["deleted_tags"], again["referrers"]) == ([], [])
    assert deletes(server, mark, repo) == []


def test_orphans_state_absent_and_attachments_ignore(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    raw_client: Callable[..., RawClient],
    connect: ClientFactory,
    playbook: Playbook,
    unique_repo_factory: Callable[[], str],
) -> None:
    server = registry_open
    sk, raw = skopeo(server), raw_client(server)
    orphaned, absent, ignored = unique_repo_factory(), unique_repo_factory(), unique_repo_factory()

    # orphans: an earlier tool deleted an image by digest and left its .sig behind; another image keeps its own
    lost = Signed(server, connect(server, orphaned), raw, orphaned, image_factory(layers=1), "lost")
    kept = Signed(server, connect(server, orphaned), raw, orphaned, image_factory(layers=1), "kept")
    raw.delete_manifest(orphaned, lost.image.digest)
    # state=absent: every image goes, its attachments first
    doomed = Signed(server, connect(server, absent), raw, absent, image_factory(layers=1), "1.0")
    # attachments=ignore: a .sig is a tag like any other; match it alone, and its image stays
    plain = Signed(server, connect(server, ignored), raw, ignored, image_factory(layers=1), "1.0")
    tasks = [
        repo_task("orphans", server, repository=f"{server.host}/{orphaned}", retention={"orphans": True}),
        repo_task("absent", server, repository=f"{server.host}/{absent}", state="absent"),
        repo_task(
            "ignore",
            server,
            repository=f"{server.host}/{ignored}",
            retention={"match": [r"sha256-.*\.sig"], "attachments": "ignore"},
        ),
    ]
    expected = {
        "orphans": {
            "deleted_tags": lost.tags,
            "kept_tags": sorted(["kept"] + kept.tags),
            "deleted_digests": sorted(lost.attachments + [lost.index.digest]),
        },
        "absent": {"deleted_tags": sorted(["1.0"] + doomed.tags), "kept_tags": [], "deleted_digests": doomed.digests},
        "ignore": {
            "deleted_tags": [plain.signature.tag],
            "kept_tags": sorted(["1.0", cosign.referrers_tag(plain.image.digest), plain.attestation.tag]),
            "deleted_digests": [plain.signature.digest],
        },
    }
    expected["absent"]["deleted_digests"] = sorted(doomed.digests)
    witnessed = {
        orphaned: lost.digests + kept.digests,
        absent: doomed.digests,
        ignored: plain.digests,
    }
    before = {repo: snapshot(sk, repo, digests) for repo, digests in witnessed.items()}

    mark = server.mark()
    check = playbook(tasks, check=True, diff=True)
    previews = {name: check.task(name) for name in expected}
    for name, preview in previews.items():
        assert_ok(preview, True)
        assert outcome(preview) == expected[name], name
    assert {tag: reasons(previews["orphans"])[tag] for tag in lost.tags} == dict.fromkeys(
        lost.tags, ("deleted", "orphan", "digest")
    )
    assert reasons(previews["orphans"])["kept"] == ("kept", "no_retention", None)
    assert [(r["digest"], r["reason"]) for r in previews["orphans"]["referrers"]] == [(lost.bundle.digest, "orphan")]
    assert {reason for _action, reason, _by in reasons(previews["absent"]).values()} == {"state=absent"}
    assert [r["digest"] for r in previews["absent"]["referrers"]] == [doomed.bundle.digest]
    assert reasons(previews["ignore"])[plain.signature.tag] == ("deleted", "match", "digest")
    assert previews["ignore"]["referrers"] == []
    assert only_delete_checks(server.requests_since(mark)) == 3
    assert {repo: snapshot(sk, repo, digests) for repo, digests in witnessed.items()} == before

    mark = server.mark()
    real = playbook(tasks)
    for name, preview in previews.items():
        result = real.task(name)
        assert_ok(result, True)
        assert (outcome(result), result["referrers"]) == (outcome(preview), preview["referrers"]), name
    assert sorted(deletes(server, mark, orphaned)[:3]) == lost.attachments
    assert deletes(server, mark, orphaned)[3:] == [lost.index.digest]
    assert sorted(deletes(server, mark, absent)[:3]) == doomed.attachments
    assert deletes(server, mark, absent)[3:] == [doomed.index.digest, doomed.image.digest]
    assert deletes(server, mark, ignored) == [plain.signature.digest]
    tags, present = snapshot(sk, orphaned, witnessed[orphaned])
    assert sorted(tags) == expected["orphans"]["kept_tags"]
    assert present == {**dict.fromkeys(lost.digests, False), **dict.fromkeys(kept.digests, True)}
    assert snapshot(sk, absent, witnessed[absent]) == ({}, dict.fromkeys(doomed.digests, False))
    tags, present = snapshot(sk, ignored, witnessed[ignored])
    assert sorted(tags) == expected["ignore"]["kept_tags"]
    assert present == {digest: digest != plain.signature.digest for digest in plain.digests}

    again = playbook(tasks)
    for name in expected:
        assert_ok(again.task(name), False)
