"""The ocireg.registry.audit role and attachments, against the real distribution registry (2.8: no referrers API):
unsigned images where signatures are required, orphaned attachment tags, signature counts in the JSON report, the
HTML page and the Markdown, and what reading the attachments costs.

Signatures are made by support/cosign.py to cosign's byte layouts (cosign 2's ``.sig``, cosign 3's sigstore bundle
referrer in the fallback index ``sha256-<hex>``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import cosign
from support.client import ClientFactory, ours
from support.images import Image
from support.registry import RegistryServer
from support.skopeo import Skopeo
from test_role_audit import audit, parse_dom

ROLE = "ocireg.registry.audit"
NOW = "2025-01-31T00:00:00Z"
REPORT_TASK = f"{ROLE} : Build the report"


@pytest.fixture
def connect() -> Iterator[ClientFactory]:
    factory = ClientFactory()
    yield factory
    factory.close()


@pytest.fixture
def seeded(
    registry_factory: Callable[..., RegistryServer],
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    connect: ClientFactory,
) -> tuple[RegistryServer, dict[str, Any]]:
    """A fresh registry. prod/app: 1.0 signed (.sig with two signatures), 2.0 signed (a cosign 3 bundle only), 3.0
    unsigned, and the .sig of an image whose tag and manifest were deleted. dev/app: 1.0 unsigned."""
    server = registry_factory("open")
    sk = skopeo(server)
    key = cosign.signing_key("ecdsa-p256")
    images = {name: image_factory(created="2025-01-30T00:00:00Z") for name in ("one", "two", "three", "gone", "dev")}
    for name, tag in (("one", "1.0"), ("two", "2.0"), ("three", "3.0"), ("gone", "gone")):
        sk.copy(images[name].oci, f"prod/app:{tag}")
    sk.copy(images["dev"].oci, "dev/app:1.0")
    client = connect(server, "prod/app")
    reference = f"{server.host}/prod/app"

    def sig_of(image: Image, signatures: int) -> cosign.Artifact:
        layers = [
            cosign.simple_signature(image.digest, key, docker_reference=reference, optional={"n": str(n)})
            for n in range(signatures)
        ]
        sig = cosign.signature_image(image.digest, layers)
        cosign.push(client, "prod/app", sig)
        return sig

    sigs = {"one": sig_of(images["one"], 2), "gone": sig_of(images["gone"], 1)}
    bundle = cosign.sign_bundle(cosign.subject_of(images["two"]), key, created="2025-06-01T12:00:00Z")
    cosign.push_referrers(client, "prod/app", images["two"].digest, [bundle])
    # The subject goes away, its signature stays: an orphan.
    sk.delete("prod/app:gone")
    return server, {"images": images, "sigs": sigs, "bundle": bundle}


def test_unsigned_images_orphans_and_signature_counts_in_every_format(
    seeded: tuple[RegistryServer, dict[str, Any]], playbook: Callable[..., Any], tmp_path: Path
) -> None:
    server, seed = seeded
    images, sigs = seed["images"], seed["sigs"]
    out = tmp_path / "report"
    role_vars = {
        "audit_registry": server.host,
        "audit_output_dir": str(out),
        "audit_formats": ["json", "html", "markdown"],
        "audit_now": NOW,
        "audit_required_labels": [],
        "audit_require_latest": False,
        "audit_signed_repositories": ["prod/*"],
    }
    run = playbook([audit("audit", **role_vars)])
    assert run.rc == 0, run.output
    assert (
        "; 3 attachment tag(s), 2 signed and 2 unsigned image(s); report: "
        in run.task(f"{ROLE} : Sum up the findings")["msg"]
    )

    # -- JSON --
    report = json.loads((out / "registry-audit.json").read_text())
    findings = [(f["severity"], f["kind"], f["repository"], f["tags"], f["digest"]) for f in report["findings"]]
    orphan_tag = cosign.cosign_tag(images["gone"].digest, ".sig")
    assert findings == [
        ("error", "unsigned", "prod/app", ["3.0"], images["three"].digest),
        ("warning", "orphaned_attachment", "prod/app", [orphan_tag], sigs["gone"].digest),
    ]
    messages = [f["message"] for f in report["findings"]]
    assert messages[0] == (
        f"prod/app:3.0 is not signed: no cosign signature or sigstore bundle names {images['three'].digest}"
        " (signed_repositories: prod/*)"
    )
    assert messages[1].startswith(f"prod/app:{orphan_tag} is a cosign signature of {images['gone'].digest}, which")
    repos = {repo["name"]: repo for repo in report["repositories"]}
    counts = {(name, tag["tag"]): tag["signatures"] for name, repo in repos.items() for tag in repo["tags"]}
    assert counts == {("dev/app", "1.0"): 0, ("prod/app", "1.0"): 2, ("prod/app", "2.0"): 1, ("prod/app", "3.0"): 0}
    # The attachment tags are attachments, not images, listed with their subject.
    attachments = repos["prod/app"]["attachments"]
    assert [(a["tag"], a["kind"], a["subject_tags"], a["orphaned"]) for a in attachments] == sorted(
        [
            (cosign.referrers_tag(images["two"].digest), "referrers-index", ["2.0"], False),
            (cosign.cosign_tag(images["one"].digest, ".sig"), "cosign-signature", ["1.0"], False),
            (orphan_tag, "cosign-signature", [], True),
        ]
    )
    assert (repos["prod/app"]["images"], repos["prod/app"]["signed_images"], repos["dev/app"]["signed_images"]) == (
        3,
        2,
        0,
    )
    summary = report["summary"]
    totals = (summary["tags"], summary["attachments"], summary["signed_images"], summary["unsigned_images"])
    assert totals == (4, 3, 2, 2)

    # -- HTML --
    dom = parse_dom((out / "registry-audit.html").read_text())
    assert dom.by_id("summary-attachments").text() == "3"
    assert (dom.by_id("summary-signed").text(), dom.by_id("summary-unsigned").text()) == ("2", "2")
    tag_rows = dom.by_id("tags").iter("table")
    shown = {}
    for table in tag_rows:
        if "attachments" in table.attrs.get("class", ""):
            continue
        for row in table.rows():
            shown[row[1], row[0]] = row[7]
    digests = {images[name].digest[:19]: count for name, count in (("one", "2"), ("two", "1"), ("three", "0"))}
    assert {key: value for key, value in shown.items() if key[0] in digests} == {
        (images["one"].digest[:19], "1.0"): "2",
        (images["two"].digest[:19], "2.0"): "1",
        (images["three"].digest[:19], "3.0"): "0",
    }
    attachment_rows = [row for table in dom.iter("table", class_="attachments") for row in table.rows()]
    assert sorted((row[1], row[3], row[5]) for row in attachment_rows) == [
        ("cosign-signature", "", "orphaned"),
        ("cosign-signature", "1.0", "attached"),
        ("referrers-index", "2.0", "attached"),
    ]
    repo_rows = {row[0]: row for row in dom.by_id("repositories").rows()}
    assert (repo_rows["prod/app"][7], repo_rows["prod/app"][8]) == ("2 of 3", "3")

    # -- Markdown --
    markdown = (out / "registry-audit.md").read_text()
    section = markdown.split("## Signatures", 1)[1].split("\n## ", 1)[0]
    rows = [
        [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| `")
    ]
    assert sorted((row[0], row[1], row[2], row[3]) for row in rows) == sorted(
        [
            ("dev/app", "1.0", images["dev"].digest, "0"),
            ("prod/app", "1.0", images["one"].digest, "2"),
            ("prod/app", "2.0", images["two"].digest, "1"),
            ("prod/app", "3.0", images["three"].digest, "0"),
        ]
    )
    assert "4 attachment tag(s)" not in markdown and "3 attachment tag(s); 2 signed and 2 unsigned image(s)" in markdown
    for message in messages:
        assert message in markdown
    orphan_row = r"\| `prod/app` \| `%s` \| cosign-signature \| .* \| orphaned \|" % re.escape(orphan_tag)
    assert re.search(orphan_row, markdown)


def test_attachments_are_read_only_when_asked_and_cost_little_on_distribution(
    seeded: tuple[RegistryServer, dict[str, Any]], playbook: Callable[..., Any], tmp_path: Path
) -> None:
    server, seed = seeded
    base = {"audit_registry": server.host, "audit_now": NOW, "audit_formats": ["json"]}

    def requests(**role_vars: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        mark = server.mark()
        run = playbook([audit("audit", audit_output_dir=str(tmp_path / "out"), **base, **role_vars)], check=True)
        assert run.rc == 0, run.output
        return ours(server.requests_since(mark)), run.task(REPORT_TASK)["ansible_facts"]["audit_report"]

    plain, plain_report = requests()
    asked, asked_report = requests(audit_referrers=True)
    # Nothing asks: no referrers are read, the counts are unknown, and orphans are still found (from the tag list).
    assert not [entry for entry in plain if "/referrers/" in entry["path"]]
    assert plain_report["summary"]["signed_images"] is None
    assert [f["kind"] for f in plain_report["findings"] if f["kind"] == "orphaned_attachment"] == [
        "orphaned_attachment"
    ]
    assert not [f for f in plain_report["findings"] if f["kind"] == "unsigned"]

    # Asked, the referrers API is probed once (distribution answers 404; which digest is asked depends on which
    # thread gets there first), and each attachment that exists costs one request: the fallback index of 2.0 (GET)
    # and the .sig of 1.0 (HEAD). The orphan's .sig is no subject's, so it is not asked for. The tag lists are read
    # anyway.
    def calls(entries: list[dict[str, Any]]) -> Counter:
        return Counter(
            (e["method"], re.sub(r"/v2/.*/referrers/.*", "referrers", e["path"]), e["status"]) for e in entries
        )

    images = seed["images"]
    assert calls(asked) - calls(plain) == Counter(
        {
            ("GET", "referrers", 404): 1,
            ("GET", "/v2/prod/app/manifests/%s" % cosign.referrers_tag(images["two"].digest), 200): 1,
            ("HEAD", "/v2/prod/app/manifests/%s" % cosign.cosign_tag(images["one"].digest, ".sig"), 200): 1,
        }
    )
    assert calls(plain) - calls(asked) == Counter()
    assert asked_report["summary"]["signed_images"] == 2
