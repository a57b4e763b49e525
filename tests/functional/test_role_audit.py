"""The ocireg.registry.audit role: a seeded registry -> JSON report, Markdown, and an HTML page checked in Chromium.

The HTML page is opened in headless Chromium (Debian package `chromium`): the DOM Chromium renders must show the
repositories, tags, sizes, ages and findings, and a screenshot of it must be a real picture.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from support.images import Image
from support.registry import RegistryServer
from support.skopeo import Skopeo

ROLE = "ocireg.registry.audit"
OPTIONS_CHECK_TASK = f"{ROLE} : Check the role's options before the first request"
SETTINGS_CHECK_TASK = f"{ROLE} : Check the report settings before the first request"
NOW = "2025-01-31T00:00:00Z"
OCI = "org.opencontainers.image."
CHROMIUM = "chromium"
PLATFORMS = ["linux/amd64", "linux/arm64"]
RULES = [
    {"name": "tools are small", "repository": "team/tool", "max_size": "10kB", "severity": "error"},
    {"name": "releases are versioned", "repository": "team/.*", "tag": "[0-9.]+", "required_labels": [OCI + "version"]},
]


def audit(name: str, **role_vars: Any) -> dict[str, Any]:
    return {"name": name, "ansible.builtin.include_role": {"name": ROLE}, "vars": role_vars}


def rescued(task: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "expect failure: " + task["name"],
        "block": [task],
        "rescue": [{"name": "caught: " + task["name"], "ansible.builtin.debug": {"msg": "failed as expected"}}],
    }


def failures(run: Any) -> list[str]:
    return [entry["result"].get("msg", "") for entry in run.results if entry["status"] == "failed"]


def failed_tasks(run: Any) -> list[tuple[str, str]]:
    """(task, message) of every failed task; a loop's message is those of its failed items, joined by ' | '."""
    found = []
    for entry in run.results:
        if entry["status"] == "failed":
            result = entry["result"]
            items = [item.get("msg", "") for item in result.get("results", []) if item.get("failed")]
            found.append((entry["task"], " | ".join(items) or result.get("msg", "")))
    return found


def pull_size(image: Image) -> int:
    """What registry_info reports as size: the manifest(s), the config and the layers (of linux/amd64)."""
    platform = image.platforms["linux/amd64"]
    size = platform.size + platform.config.size + sum(layer.size for layer in platform.layers)
    return size + (image.size if image.is_index else 0)


def human(size: int) -> str:
    """How the pages and the findings write a size: 1024s (the test images stay under 1 MiB), small ones in bytes."""
    assert size < 1024**2
    return f"{size} bytes" if size < 1024 else f"{size / 1024:.1f} KiB"


# -- a small DOM, from what Chromium serialises --------------------------------------------------------------------

VOID = {"meta", "br", "img", "link", "input", "hr", "col", "source", "wbr", "area", "base", "embed", "track"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    def text(self) -> str:
        parts = [child if isinstance(child, str) else child.text() for child in self.children]
        return re.sub(r"\s+", " ", " ".join(parts)).strip()

    def iter(self, tag: str | None = None, **attrs: str) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if (tag is None or child.tag == tag) and all(
                    value in child.attrs.get(key.rstrip("_"), "").split() or child.attrs.get(key.rstrip("_")) == value
                    for key, value in attrs.items()
                ):
                    found.append(child)
                found.extend(child.iter(tag, **attrs))
        return found

    def by_id(self, ident: str) -> Node:
        matches = [node for node in self.iter() if node.attrs.get("id") == ident]
        assert len(matches) == 1, f"#{ident}: {len(matches)} elements"
        return matches[0]

    def rows(self) -> list[list[str]]:
        return [[cell.text() for cell in row.iter("td")] for row in self.iter("tr") if row.iter("td")]


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {key: value or "" for key, value in attrs}, self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Node(tag, {key: value or "" for key, value in attrs}, self.current))

    def handle_endtag(self, tag: str) -> None:
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse_dom(html: str) -> Node:
    builder = TreeBuilder()
    builder.feed(html)
    return builder.root


# -- Chromium ------------------------------------------------------------------------------------------------------


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(CHROMIUM)
    if binary is None:
        pytest.fail(
            "chromium not found on PATH: the audit page is checked in headless Chromium. Install it: "
            "apt-get install chromium",
            pytrace=False,
        )
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def png_facts(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the first 200 kB of pixel data) of a PNG file."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    idat, offset = b"", 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        if kind == b"IDAT":
            idat += data[offset + 8 : offset + 8 + length]
        offset += 12 + length
    pixels = zlib.decompress(idat)
    return width, height, len(set(pixels[: 200 * 1024]))


# -- the test ------------------------------------------------------------------------------------------------------


@pytest.fixture
def seeded(
    registry_factory: Callable[..., RegistryServer],
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
) -> tuple[RegistryServer, dict[str, Image]]:
    """A fresh registry: team/app (1.0 old; 1.1 = latest new), team/tool (multi-platform 2.0), legacy/thing (0.1)."""
    server = registry_factory("open")
    sk = skopeo(server)
    full = {OCI + "source": "https://git.example.com/app", OCI + "revision": "0123abc"}
    images = {
        "old": image_factory(created="2024-06-01T00:00:00Z", labels={**full, OCI + "version": "1.0"}),
        "new": image_factory(created="2025-01-30T00:00:00Z", labels=full),
        "tool": image_factory(created="2025-01-20T00:00:00Z", platforms=PLATFORMS, layer_size=16 * 1024),
        # Small enough (under 1 KiB) that the pages write its size in whole bytes.
        "legacy": image_factory(created="2023-01-01T00:00:00Z", layers=1, layer_size=16),
    }
    sk.copy(images["old"].oci, "team/app:1.0")
    sk.copy(images["new"].oci, "team/app:1.1")
    sk.copy(images["new"].oci, "team/app:latest")
    sk.copy(images["tool"].oci, "team/tool:2.0")
    sk.copy(images["legacy"].oci, "legacy/thing:0.1")
    return server, images


def test_audit_report_json_markdown_and_html_in_chromium(
    seeded: tuple[RegistryServer, dict[str, Image]], playbook: Callable[..., Any], tmp_path: Path
) -> None:
    server, images = seeded
    out = tmp_path / "report"
    role_vars = {
        "audit_registry": server.host,
        "audit_output_dir": str(out),
        "audit_formats": ["json", "html", "markdown"],
        "audit_title": "Audit of the <test> registry",
        "audit_now": NOW,
        "audit_rules": RULES,
    }
    run = playbook([audit("audit", **role_vars), audit("audit again", **role_vars)])
    assert run.rc == 0, run.output
    # Same registry, same time: the second run writes nothing new.
    assert run.task(f"{ROLE} : Write the JSON report")["changed"] is False
    assert run.task(f"{ROLE} : Write the HTML page")["changed"] is False

    # -- JSON --
    report = json.loads((out / "registry-audit.json").read_text())
    assert (out / "registry-audit.json").stat().st_mode & 0o777 == 0o644
    assert report["generated_at"] == NOW
    assert report["registry"]["url"] == server.url
    sizes = {name: pull_size(image) for name, image in images.items()}
    assert report["summary"] == {
        "repositories": 3,
        "tags": 5,
        "attachments": 0,
        "images": 4,
        "signed_images": None,  # not read: no repository must be signed, audit_referrers is off
        "unsigned_images": None,
        "size": sum(sizes.values()),
        "size_human": human(sum(sizes.values())),
        "findings": {"error": 1, "warning": 6, "info": 2},
        "kinds": {"rule": 3, "missing_labels": 2, "stale": 2, "missing_latest": 2},
    }
    repos = {repo["name"]: repo for repo in report["repositories"]}
    assert list(repos) == ["legacy/thing", "team/app", "team/tool"]
    assert repos["team/app"]["size"] == sizes["old"] + sizes["new"]
    assert (repos["team/app"]["images"], repos["team/app"]["has_latest"]) == (2, True)
    assert repos["team/tool"]["has_latest"] is False
    tags = {(repo["name"], tag["tag"]): tag for repo in report["repositories"] for tag in repo["tags"]}
    assert {key: (tag["digest"], tag["size"], tag["age_days"], tag["stale"]) for key, tag in tags.items()} == {
        ("legacy/thing", "0.1"): (images["legacy"].digest, sizes["legacy"], 761.0, True),
        ("team/app", "1.0"): (images["old"].digest, sizes["old"], 244.0, True),
        ("team/app", "1.1"): (images["new"].digest, sizes["new"], 1.0, False),
        ("team/app", "latest"): (images["new"].digest, sizes["new"], 1.0, False),
        ("team/tool", "2.0"): (images["tool"].digest, sizes["tool"], 11.0, False),
    }
    assert tags[("team/tool", "2.0")]["platforms"] == PLATFORMS
    findings = [(f["severity"], f["kind"], f["rule"], f["repository"], f["tags"]) for f in report["findings"]]
    assert findings == [
        ("error", "rule", "tools are small", "team/tool", ["2.0"]),
        ("warning", "missing_labels", None, "legacy/thing", ["0.1"]),
        ("warning", "stale", None, "legacy/thing", ["0.1"]),
        ("warning", "rule", "releases are versioned", "team/app", ["1.1"]),
        ("warning", "stale", None, "team/app", ["1.0"]),
        ("warning", "missing_labels", None, "team/tool", ["2.0"]),
        ("warning", "rule", "releases are versioned", "team/tool", ["2.0"]),
        ("info", "missing_latest", None, "legacy/thing", []),
        ("info", "missing_latest", None, "team/tool", []),
    ]
    messages = [f["message"] for f in report["findings"]]
    assert messages[2] == "legacy/thing:0.1 is stale: built 761 days ago (2023-01-01T00:00:00Z), more than 90d"
    assert messages[0] == (
        f"team/tool:2.0 breaks rule 'tools are small': {sizes['tool']} bytes ({human(sizes['tool'])}), "
        "more than 10000 bytes (9.8 KiB)"
    )
    # Sizes for people: one unit system, the findings' (KiB in 1024s), and small sizes in whole bytes.
    assert sizes["legacy"] < 1024 < sizes["tool"]
    assert {name: repo["size_human"] for name, repo in repos.items()} == {
        name: human(repo["size"]) for name, repo in repos.items()
    }
    assert {key: tag["size_human"] for key, tag in tags.items()} == {
        key: human(tag["size"]) for key, tag in tags.items()
    }
    summed_up = run.task(f"{ROLE} : Sum up the findings")["msg"]
    assert summed_up.startswith(f"3 repositories, 5 tags, {human(sum(sizes.values()))}; findings: 1 error(s)")

    # -- Markdown --
    markdown = (out / "registry-audit.md").read_text()
    assert "# Audit of the <test> registry" in markdown
    for message in messages:
        assert message.replace("|", "\\|") in markdown
    assert f"| 3 | 5 | 4 | {human(sum(sizes.values()))} | 1 | 6 | 2 |" in markdown
    for name, repo in repos.items():
        assert f"| `{name}` | {len(repo['tags'])} | {repo['images']} | {human(repo['size'])} |" in markdown

    # -- HTML, as Chromium renders it --
    page = out / "registry-audit.html"
    source = page.read_text()
    assert not re.search(r"<script|<link|<img|<iframe|url\(|@import", source, re.IGNORECASE)
    assert "&lt;test&gt;" in source  # values are escaped
    dom = parse_dom(chromium(tmp_path, "--dump-dom", page.as_uri()).stdout)
    assert dom.iter("title")[0].text() == "Audit of the <test> registry"
    assert dom.by_id("title").text() == "Audit of the <test> registry"
    assert dom.by_id("registry-url").text() == server.url
    assert dom.by_id("generated-at").text() == NOW
    assert [dom.by_id(f"summary-{key}").text() for key in ("repositories", "tags", "images", "size")] == [
        "3",
        "5",
        "4",
        human(sum(sizes.values())),
    ]
    assert [dom.by_id(f"summary-{severity}").text() for severity in ("error", "warning", "info")] == ["1", "6", "2"]

    finding_rows = dom.by_id("findings").rows()
    assert [(row[0], row[2], row[3], row[4]) for row in finding_rows] == [
        (f["severity"], f["repository"], ", ".join(f["tags"]), f["message"]) for f in report["findings"]
    ]
    assert finding_rows[0][1] == "rule tools are small (max_size)"

    chart = dom.by_id("chart").iter("svg")[0]
    bars = {group.iter("title")[0].text(): group.iter("rect")[0] for group in chart.iter("g", class_="chart-row")}
    assert bars.keys() == {f"{name}: {repo['size']} bytes" for name, repo in repos.items()}
    widths = {title.split(":")[0]: float(rect.attrs["width"]) for title, rect in bars.items()}
    biggest = max(repos, key=lambda name: repos[name]["size"])
    assert widths[biggest] == 480
    for name, width in widths.items():
        assert width == pytest.approx(480 * repos[name]["size"] / repos[biggest]["size"], abs=0.1)
    assert [text.text() for text in chart.iter("text")][::2] == sorted(repos, key=lambda n: -repos[n]["size"])

    repo_rows = dom.by_id("repositories").rows()
    assert [(row[0], row[1], row[2], row[3], row[6]) for row in repo_rows] == [
        ("legacy/thing", "1", "1", human(repos["legacy/thing"]["size"]), "no"),
        ("team/app", "3", "2", human(repos["team/app"]["size"]), "yes"),
        ("team/tool", "1", "1", human(repos["team/tool"]["size"]), "no"),
    ]

    tag_rows = dom.by_id("tags").rows()
    assert [(row[0], row[1], row[2], row[3], row[4], row[5]) for row in tag_rows] == [
        ("0.1 stale", images["legacy"].digest[:19], human(sizes["legacy"]), "2023-01-01T00:00:00Z", "761 d", "single"),
        ("1.0 stale", images["old"].digest[:19], human(sizes["old"]), "2024-06-01T00:00:00Z", "244 d", "single"),
        ("1.1", images["new"].digest[:19], human(sizes["new"]), "2025-01-30T00:00:00Z", "1 d", "single"),
        ("latest", images["new"].digest[:19], human(sizes["new"]), "2025-01-30T00:00:00Z", "1 d", "single"),
        (
            "2.0",
            images["tool"].digest[:19],
            human(sizes["tool"]),
            "2025-01-20T00:00:00Z",
            "11 d",
            "linux/amd64 linux/arm64",
        ),
    ]
    assert tag_rows[1][6] == "oci:revision oci:source oci:version"
    assert tag_rows[0][6] == "none"
    assert [node.text() for node in dom.by_id("tags").iter("h3")] == ["legacy/thing", "team/app", "team/tool"]

    sizes_shown = [text.text() for text in chart.iter("text")][1::2] + [row[3] for row in repo_rows]
    sizes_shown += [row[2] for row in tag_rows] + [dom.by_id("summary-size").text()]
    for shown in sizes_shown + re.findall(r"\| ([^|]*(?:bytes|iB)) \|", markdown):
        assert re.fullmatch(r"[0-9]+ bytes|[0-9]+\.[0-9] KiB", shown), shown
    assert not re.search(r"[0-9] (KB|MB|GB|Bytes)\b", source + markdown)

    screenshot = tmp_path / "audit.png"
    chromium(tmp_path, "--window-size=1280,2000", "--hide-scrollbars", f"--screenshot={screenshot}", page.as_uri())
    width, height, distinct = png_facts(screenshot)
    assert (width, height) == (1280, 2000)
    assert screenshot.stat().st_size > 20_000
    assert distinct > 50, "the screenshot is (nearly) blank"


def test_check_mode_fail_on_and_bad_input(
    seeded: tuple[RegistryServer, dict[str, Image]], playbook: Callable[..., Any], tmp_path: Path
) -> None:
    server, _images = seeded
    base = {"audit_registry": server.host, "audit_now": NOW}

    check_dir = tmp_path / "check"
    check = playbook([audit("audit", audit_output_dir=str(check_dir), **base)], check=True)
    assert check.rc == 0, check.output
    assert check.task(f"{ROLE} : Build the report")["ansible_facts"]["audit_report"]["summary"]["tags"] == 5
    assert not check_dir.exists()

    failing_dir = tmp_path / "failing"
    cases = [
        (
            "fail on error",
            {**base, "audit_output_dir": str(failing_dir), "audit_fail_on": "error", "audit_rules": RULES},
            r"^1 finding\(s\) of severity error or worse: team/tool:2.0 breaks rule 'tools are small'",
        ),
        ("no registry", {"audit_now": NOW}, r"missing required arguments: audit_registry"),
        ("unknown format", {**base, "audit_formats": ["pdf"]}, r"audit_formats.*pdf"),
        ("bad severity", {**base, "audit_fail_on": "sometimes"}, r"audit_fail_on.*sometimes"),
        (
            "rule without name",
            {**base, "audit_rules": [{"max_size": 1}]},
            r"missing required arguments: name found in audit_rules",
        ),
    ]
    run = playbook([rescued(audit(name, **role_vars)) for name, role_vars, _pattern in cases])
    assert run.rc == 0, run.output
    found = failures(run)
    assert len(found) == len(cases), found
    for (name, _vars, pattern), message in zip(cases, found):
        assert re.search(pattern, message), (name, message)
    # audit_fail_on fails after the report is written.
    assert json.loads((failing_dir / "registry-audit.json").read_text())["summary"]["findings"]["error"] == 1
    assert (failing_dir / "registry-audit.html").exists()


def test_bad_settings_fail_before_the_first_request(
    seeded: tuple[RegistryServer, dict[str, Image]], playbook: Callable[..., Any], tmp_path: Path
) -> None:
    server, _images = seeded
    base = {"audit_registry": server.host, "audit_now": NOW, "audit_output_dir": str(tmp_path / "never")}
    good_rule = {"name": "ok", "max_size": "1GiB"}
    cases = [
        (
            "bad regex",
            {"audit_rules": [good_rule, {"name": "r", "repository": "team/("}]},
            SETTINGS_CHECK_TASK,
            r"rule 'r': repository 'team/\(' is not a valid regular expression",
        ),
        (
            "bad max_age",
            {"audit_rules": [{"name": "fresh", "max_age": "2 weeks"}]},
            SETTINGS_CHECK_TASK,
            r"rule 'fresh': max_age '2 weeks' is not a duration",
        ),
        (
            "bad max_size",
            {"audit_rules": [{"name": "small", "max_size": "10 megs"}]},
            SETTINGS_CHECK_TASK,
            r"rule 'small': max_size '10 megs' is not a size",
        ),
        ("bad duration", {"audit_stale_after": "3 months"}, SETTINGS_CHECK_TASK, r"stale_after '3 months' is not a"),
        ("bad time", {"audit_now": "yesterday"}, SETTINGS_CHECK_TASK, r"now 'yesterday' is not a time"),
        (
            "catalog patterns with a list",
            {"audit_repositories": ["team/*"], "audit_repository_names": ["team/app"]},
            OPTIONS_CHECK_TASK,
            r"^audit_repositories filters the catalog, which is not read when audit_repository_names lists the "
            r"repositories to audit: list only those in audit_repository_names \(audit_repositories: team/\*\)$",
        ),
        (
            "a listed name with a tag",
            {"audit_repository_names": ["team/app", "team/tool:2.0", "legacy/thing@sha256:" + "0" * 64]},
            OPTIONS_CHECK_TASK,
            r"^audit_repository_names lists repositories, without a tag or digest; these have one: "
            rf"{re.escape(server.host)}/team/tool:2.0, {re.escape(server.host)}/legacy/thing@sha256:0+$",
        ),
        (
            "a listed name that is no name",
            {"audit_repository_names": ["team/App"]},
            OPTIONS_CHECK_TASK,
            r"team/App",
        ),
    ]
    mark = server.mark()
    run = playbook([rescued(audit(name, **{**base, **role_vars})) for name, role_vars, _task, _pattern in cases])
    assert run.rc == 0, run.output
    found = failed_tasks(run)
    assert [task for task, _message in found] == [task for _name, _vars, task, _pattern in cases], found
    for (name, _vars, _task, pattern), (_failed, message) in zip(cases, found):
        assert re.search(pattern, message), (name, message)
    # Nothing was read: the settings were checked before the first request.
    assert server.requests_since(mark) == []
    assert not (tmp_path / "never").exists()


def test_an_explicit_list_of_repositories_is_read_without_the_catalog(
    seeded: tuple[RegistryServer, dict[str, Image]], playbook: Callable[..., Any], tmp_path: Path
) -> None:
    server, _images = seeded
    base = {"audit_registry": server.url, "audit_now": NOW, "audit_rules": RULES, "audit_formats": ["json", "markdown"]}
    from_catalog = playbook(
        [audit("audit", audit_output_dir=str(tmp_path / "catalog"), audit_repositories=["team/*"], **base)]
    )
    assert from_catalog.rc == 0, from_catalog.output

    mark = server.mark()
    listed = playbook(
        [
            audit(
                "audit",
                audit_output_dir=str(tmp_path / "listed"),
                audit_repository_names=["team/tool", "team/app", "team/gone", "team/app"],
                **base,
            )
        ],
        check=True,
    )
    assert listed.rc == 0, listed.output
    requests = server.requests_since(mark)
    assert not [entry for entry in requests if entry["path"].startswith("/v2/_catalog")]
    assert sorted({entry["path"] for entry in requests if entry["path"].endswith("/tags/list")}) == [
        "/v2/team/app/tags/list",
        "/v2/team/gone/tags/list",
        "/v2/team/tool/tags/list",
    ]

    expected = json.loads((tmp_path / "catalog" / "registry-audit.json").read_text())
    report = listed.task(f"{ROLE} : Build the report")["ansible_facts"]["audit_report"]
    # The same report as the catalog gives for the same repositories, and one finding more: the missing repository.
    missing = [finding for finding in report["findings"] if finding["kind"] == "missing_repository"]
    assert [(f["severity"], f["repository"], f["tags"]) for f in missing] == [("error", "team/gone", [])]
    assert missing[0]["message"].startswith("team/gone does not exist in the registry")
    assert [finding for finding in report["findings"] if finding not in missing] == expected["findings"]
    assert report["repositories"] == expected["repositories"]
    assert [repo["name"] for repo in report["repositories"]] == ["team/app", "team/tool"]
    assert report["summary"]["findings"] == dict(
        expected["summary"]["findings"], error=expected["summary"]["findings"]["error"] + 1
    )
    assert {k: v for k, v in report["summary"].items() if k not in ("findings", "kinds")} == {
        k: v for k, v in expected["summary"].items() if k not in ("findings", "kinds")
    }
    assert (report["registry"], report["settings"], report["generated_at"]) == (
        expected["registry"],
        expected["settings"],
        expected["generated_at"],
    )

    # For real, with the pages: the missing repository is reported, not fatal (unless audit_fail_on says so).
    real = playbook(
        [
            audit(
                "audit",
                audit_output_dir=str(tmp_path / "listed"),
                audit_repository_names=["team/app", "team/gone"],
                **base,
            ),
            rescued(
                audit(
                    "gate",
                    audit_output_dir=str(tmp_path / "gated"),
                    audit_repository_names=["team/app", "team/gone"],
                    audit_fail_on="error",
                    **base,
                )
            ),
        ]
    )
    assert real.rc == 0, real.output
    written = json.loads((tmp_path / "listed" / "registry-audit.json").read_text())
    assert [repo["name"] for repo in written["repositories"]] == ["team/app"]
    assert missing[0]["message"].replace("|", "\\|") in (tmp_path / "listed" / "registry-audit.md").read_text()
    assert failures(real) == ["1 finding(s) of severity error or worse: " + missing[0]["message"]]
