"""The ocireg.registry.promote role with signatures: attachments travel through the stages, and promote_verify_key
gates the promotion on the pinned digest's signatures, against the real distribution registry (2.8: no referrers
API, so cosign 3's bundle is found through the fallback tag ``sha256-<hex>``, and the role keeps that index at each
stage).

Signatures are made by support/cosign.py to cosign's byte layouts (cosign 2's ``.sig`` simple signing, cosign 3's
sigstore bundle referrer); skopeo is the witness of what each stage holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import cosign
from support.client import ClientFactory
from support.images import Image
from support.registry import RegistryServer
from support.skopeo import Skopeo
from test_role_promote import RESULT_TASK, promote, recap_changed, rescued, stage, tag_state, writes

ROLE = "ocireg.registry.promote"
GATE_TASK = f"{ROLE} : Refuse to promote unless enough signatures of the pinned digest verify"
INFO = "ocireg.registry.registry_info"


@pytest.fixture
def connect() -> Iterator[ClientFactory]:
    factory = ClientFactory()
    yield factory
    factory.close()


class Signed:
    """IMAGE in REPO with a cosign 2 ``.sig`` (one simple-signing layer) and a cosign 3 signature bundle referrer
    listed in the fallback index, both made with KEY."""

    def __init__(self, server: RegistryServer, client: Any, repo: str, image: Image, key: cosign.SigningKey) -> None:
        self.image = image
        reference = f"{server.host}/{repo}"
        self.layer = cosign.simple_signature(image.digest, key, docker_reference=reference)
        self.sig = cosign.signature_image(image.digest, [self.layer])
        cosign.push(client, repo, self.sig)
        self.bundle = cosign.sign_bundle(cosign.subject_of(image), key, created="2025-06-01T12:00:00Z")
        cosign.push_referrers(client, repo, image.digest, [self.bundle])


def fallback_entries(witness: Skopeo, repo: str, subject: str) -> list[dict[str, Any]]:
    return json.loads(witness.inspect(f"{repo}:{cosign.referrers_tag(subject)}", raw=True))["manifests"]


def failure_messages(run: Any) -> list[tuple[str, str]]:
    return [(entry["task"], entry["result"].get("msg", "")) for entry in run.results if entry["status"] == "failed"]


def test_a_signed_image_is_promoted_with_its_signatures_and_verifies_at_every_stage(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    connect: ClientFactory,
    playbook: Callable[..., Any],
    unique_repo_factory: Callable[[], str],
) -> None:
    server = registry_open
    sk = skopeo(server)
    dev, staging, prod = unique_repo_factory(), unique_repo_factory(), unique_repo_factory()
    image = image_factory()
    sk.copy(image.oci, f"{dev}:candidate")
    key = cosign.signing_key("ecdsa-p256")
    signed = Signed(server, connect(server, dev), dev, image, key)
    task = promote(
        "promote",
        promote_source=f"{server.host}/{dev}:candidate",
        promote_stages=[
            stage(server, "staging", staging, tags=["latest"], release_tags=["1.0"]),
            stage(server, "prod", prod, tags=["stable"], release_tags=["1.0"]),
        ],
        promote_verify_key=key.public_pem,
    )
    expected_signatures = [(signed.bundle.digest, "fallback_tag", True), (signed.layer.digest, "cosign_tag", True)]

    # Check mode: the gate runs (it only reads), nothing is written.
    mark = server.mark()
    check = playbook([task], check=True)
    assert check.rc == 0, check.output
    assert writes(server, mark) == []
    assert tag_state(sk, staging) == {} and tag_state(sk, prod) == {}
    planned = check.task(RESULT_TASK)["ansible_facts"]["promote_result"]
    assert sorted((s["digest"], s["via"], s["verified"]) for s in planned["signatures"]) == sorted(expected_signatures)

    # The real run, and the key verifies both signatures at prod afterwards.
    verify_at_prod = {
        "name": "verify at prod",
        INFO: {"image": f"{server.host}/{prod}:1.0", "verify_key": key.public_pem},
    }
    real = playbook([task, verify_at_prod])
    assert real.rc == 0, real.output
    result = real.task(RESULT_TASK)["ansible_facts"]["promote_result"]
    assert sorted((s["digest"], s["via"], s["verified"]) for s in result["signatures"]) == sorted(expected_signatures)
    gate = real.task(GATE_TASK)["msg"]
    assert gate.startswith(f"2 of 2 signature(s) of {image.digest} verify: "), gate
    for digest, via, _verified in expected_signatures:
        assert f"{digest} ({via})" in gate
    # The attachments went with the image, stage by stage.
    carried = {(ref["digest"], ref["via"]) for op in result["operations"] for ref in op["referrers"]}
    assert carried == {(signed.bundle.digest, "fallback_tag"), (signed.sig.digest, "cosign_tag")}

    for repo in (staging, prod):
        state = tag_state(sk, repo)
        assert {tag: state[tag] for tag in state if not tag.startswith("sha256-")} == (
            {"latest": image.digest, "1.0": image.digest}
            if repo == staging
            else {"stable": image.digest, "1.0": image.digest}
        )
        # Where cosign looks: the same .sig manifest under the same tag, the bundle by digest, listed in the
        # fallback index exactly as the source lists it.
        assert sk.manifest(f"{repo}:{signed.sig.tag}") == signed.sig.manifest
        assert sk.digest(f"{repo}:{signed.sig.tag}") == signed.sig.digest
        assert sk.manifest(f"{repo}@{signed.bundle.digest}") == signed.bundle.manifest
        assert fallback_entries(sk, repo, image.digest) == [signed.bundle.descriptor()]

    at_prod = real.task("verify at prod")["image"]["signatures"]
    assert sorted((s["digest"], s["via"], s["verified"]) for s in at_prod) == sorted(expected_signatures)

    # Idempotent: nothing to write the second time, signatures and all.
    mark = server.mark()
    again = playbook([task])
    assert again.rc == 0, again.output
    assert recap_changed(again) == 0
    assert again.task(RESULT_TASK)["ansible_facts"]["promote_result"]["changed"] is False
    assert writes(server, mark) == []


def test_the_signature_gate_refuses_unsigned_badly_signed_and_too_few_signatures_changing_nothing(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    connect: ClientFactory,
    playbook: Callable[..., Any],
    unique_repo_factory: Callable[[], str],
    tmp_path: Path,
) -> None:
    server = registry_open
    sk = skopeo(server)
    dev, staging, prod = unique_repo_factory(), unique_repo_factory(), unique_repo_factory()
    unsigned, signed_image = image_factory(), image_factory()
    sk.copy(unsigned.oci, f"{dev}:unsigned")
    sk.copy(signed_image.oci, f"{dev}:signed")
    key, other = cosign.signing_key("ecdsa-p256"), cosign.signing_key("ecdsa-p256", name="someone else")
    client = connect(server, dev)
    # One .sig layer only, signed with KEY.
    layer = cosign.simple_signature(signed_image.digest, key, docker_reference=f"{server.host}/{dev}")
    cosign.push(client, dev, cosign.signature_image(signed_image.digest, [layer]))
    # The stages exist already, so that "nothing changed" is about repositories that have something.
    sk.copy(image_factory().oci, f"{staging}:latest")
    sk.copy(image_factory().oci, f"{prod}:latest")
    stages = [
        stage(server, "staging", staging, tags=["latest"], release_tags=["2.0"]),
        stage(server, "prod", prod, tags=["latest"], release_tags=["2.0"]),
    ]
    # The key as PEM text, and as a file on the host that runs the tasks.
    pem = key.public_pem
    key_path = tmp_path / "cosign.pub"
    key_path.write_text(pem)
    cases = [
        ("unsigned", f"{server.host}/{dev}:unsigned", pem, 1),
        ("wrong key", f"{server.host}/{dev}:signed", other.public_pem, 1),
        ("too few", f"{server.host}/{dev}:signed", str(key_path), 2),
    ]
    # After the refused ones, the signed image with the right key and the default minimum goes through to stages of
    # its own, and says what it checked.
    good_staging, good_prod = unique_repo_factory(), unique_repo_factory()
    good_stages = [
        stage(server, "staging", good_staging, tags=["latest"]),
        stage(server, "prod", good_prod, tags=["2.0"]),
    ]
    good = promote("good", promote_source=cases[2][1], promote_stages=good_stages, promote_verify_key=pem)
    before = {repo: tag_state(sk, repo) for repo in (dev, staging, prod)}
    mark = server.mark()
    run = playbook(
        [
            rescued(
                promote(
                    name,
                    promote_source=source,
                    promote_stages=stages,
                    promote_verify_key=verify_key,
                    promote_verify_min=minimum,
                )
            )
            for name, source, verify_key, minimum in cases
        ]
        + [good]
    )
    assert run.rc == 0, run.output
    refused = failure_messages(run)
    assert [task for task, _message in refused] == [GATE_TASK] * 3, refused
    messages = [message for _task, message in refused]
    assert messages[0] == (
        f"refusing to promote {server.host}/{dev}@{unsigned.digest}: 0 of 0 signature(s) of {unsigned.digest} verify"
        " with promote_verify_key, fewer than promote_verify_min (1); nothing was changed."
        " No signature of that digest was found."
    )
    assert messages[1].startswith(
        f"refusing to promote {server.host}/{dev}@{signed_image.digest}: 0 of 1 signature(s) of"
        f" {signed_image.digest} verify with promote_verify_key, fewer than promote_verify_min (1);"
        f" nothing was changed. Signatures found: {layer.digest} (cosign_tag): "
    )
    assert re.search(r"does not verify with the key", messages[1]), messages[1]
    assert messages[2].startswith(
        f"refusing to promote {server.host}/{dev}@{signed_image.digest}: 1 of 1 signature(s) of"
        f" {signed_image.digest} verify with promote_verify_key, fewer than promote_verify_min (2);"
        f" nothing was changed. Signatures found: {layer.digest} (cosign_tag): verified with the key"
    ), messages[2]
    # Nothing the refused promotions would have touched was written: not a tag, not a manifest, not a blob.
    refused_repos = (dev, staging, prod)
    assert [w for w in writes(server, mark) if any(f"/v2/{repo}/" in w for repo in refused_repos)] == []
    assert {repo: tag_state(sk, repo) for repo in refused_repos} == before

    result = run.task(RESULT_TASK)["ansible_facts"]["promote_result"]
    assert [(s["digest"], s["verified"]) for s in result["signatures"]] == [(layer.digest, True)]
    assert (
        run.task(GATE_TASK)["msg"]
        == f"1 of 1 signature(s) of {signed_image.digest} verify: {layer.digest} (cosign_tag)"
    )
    assert tag_state(sk, good_prod)["2.0"] == signed_image.digest
