"""The guides' examples (docs/docsite/rst/*.rst), run exactly as written against real registries.

Every YAML code block of every guide is one of:

- **run**: a playbook, or a list of tasks (run in a ``hosts: localhost`` play), or a fragment (a mapping such as
  ``retention: ...``) that its marker puts into a task. Each runs twice with ``ansible-playbook``: with ``--check``,
  after which every registry must hold exactly what it held before, and then for real. Both runs must succeed,
  without a warning;
- **skipped**: marked ``.. ci: skip REASON`` in the RST, for an example that cannot run here. Each is a skipped test
  with its reason (``pytest -rs`` lists them);
- an **expected result**: the block right after an example whose marker says ``expect_next``: the example's result
  must contain it;
- an unmarked **fragment** that is not a playbook (a ``requirements.yml``, a registry configuration): listed as a
  skipped test too, with what it is.

The examples name registries such as ``registry.example.com`` and ``ghcr.io``. The YAML is not rewritten for that:
each host in DOC_HOSTS is answered by a CNCF distribution registry of its own on the loopback interface, with fresh
storage for every example and a TLS certificate for that name from the test CA. The playbooks reach them through a
CONNECT proxy (``HTTPS_PROXY``; it tunnels only to those registries), trusting the test CA through
``REQUESTS_CA_BUNDLE``, so the examples run over HTTPS as they would for a user. The registries are open: what the
examples give as credentials is accepted, and authentication itself is proved by test_client_auth.py and
test_reliability_secrets.py.

What an example needs that its YAML does not say (images in the registry, variables a previous step would have set,
files, environment variables, inventory groups) comes from a marker: an RST comment right before the code block,
invisible in the rendered guide::

    .. ci:
       images:                       # label -> what to push before the runs (same label: same image)
         build: [registry.example.com/dev/app:build-4711]
         old: {tags: [v1.0.0], age: 45d, platforms: [linux/amd64, linux/arm64], labels: {...}, files: {...}}
       signed: {tags: [1.4.2], signed: [sig, bundle], attached: [att, sbom], signed_with: other, deleted: true}
       repository: registry.example.com/team/app   # where `tags:` of an image go
       vars: {build_digest: "{digest:build}"}      # extra vars
       env: {CI_PROJECT_DIR: "{tmp}"}              # environment of ansible-playbook
       files: {app.env.j2: "APP_IMAGE={{ app_image }}"}  # written next to the playbook
       groups: [app_servers]                       # inventory groups localhost belongs to
       after: {registry.example.com/prod/app:1.4.2: build}   # tags after the real run (null: absent)
       expect: {TASK NAME: {deleted_tags: [...]}}  # what a task's result contains, in both runs
       expect_real: {TASK NAME: {changed: true}}   # what it contains after the real run only
       expect_next: TASK NAME                      # the next code block is what that task's result contains
       task: ocireg.registry.registry_repo         # run a fragment: merged into this module's arguments...
       args: {repository: registry.example.com/team/app}   # ...with these
       name: Apply the policy                      # ...in a task of this name (expect: and expect_next: true)
       id: worked-example                          # a name; `images: worked-example` elsewhere reuses its images
       xfail: REASON                               # a known fault of the example: it must fail until it is fixed

Signed images (support/cosign.py makes what cosign writes, with ``cryptography``; pushed after the image, into every
repository the image is pushed to): ``signed: true`` is a cosign 2 signature (the tag ``sha256-<hex>.sig``, one
simple-signing layer), ``signed: [sig, bundle]`` adds a cosign 3 signature bundle, an OCI 1.1 referrer listed in the
fallback index ``sha256-<hex>``; ``attached: [att, sbom]`` adds cosign's ``.att`` and ``.sbom`` tags. The key is
``cosign`` (an ECDSA P-256 key, as ``cosign generate-key-pair`` makes), or the one ``signed_with`` names; every
example finds the public key of ``cosign`` in ``{cosign_pub}`` and in the file ``cosign.pub`` next to the playbook.
``deleted: true`` deletes the image (by digest, so its tags) once its attachments are pushed: they are orphans.

In strings, ``{tmp}`` is the example's working directory, ``{digest:LABEL}`` an image's digest, ``{sig:LABEL}`` and
``{bundle:LABEL}`` the digests of its ``.sig`` image and signature bundle, ``{sig_tag:LABEL}`` its ``.sig`` tag and
``{fallback_tag:LABEL}`` its referrers fallback tag, ``{cosign_pub}`` the public key, and ``{ca_pem}``,
``{client_pem}``, ``{client_key_pem}`` the test CA, client certificate and key (PEM). ``after`` takes them in its
references, and a digest instead of a label. In an expected result, a string ending in ``...`` stands for any string
that starts with what comes before it. Guides, or sections of them, that this change may not edit get the same
settings from FALLBACK_MARKERS below; they belong in their RST.
"""

from __future__ import annotations

import dataclasses
import datetime
import glob
import json
import os
import re
import select
import shlex
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from support import cosign
from support.client import ClientFactory
from support.images import Dir, Image, make_image
from support.pki import DEFAULT_HOSTS, CertificateAuthority
from support.playbook import CALLBACKS, COLLECTIONS_PATH, REPO_ROOT, ansible_python
from support.rawhttp import RawClient
from support.registry import RegistryServer, free_port
from support.skopeo import Skopeo

DOCS = REPO_ROOT / "docs" / "docsite" / "rst"
# The registries the guides name, and what kind of registry answers for each.
DOC_HOSTS = {
    "registry.example.com": "tls",
    "mirror.example.com": "tls",
    "ghcr.io": "tls",
    "registry.internal.example.com": "mtls",
}
# Variables that the guides' examples take from the inventory or a vault, as a user's play would.
COMMON_VARS = {
    "registry_user": "ci",
    "registry_password": "registry-password",
    "github_user": "octocat",
    "github_token": "github-token",
    "mirror_user": "mirror",
    "mirror_password": "mirror-password",
    "reader_password": "reader-password",
    "team_a_password": "team-a-password",
    "ghcr_user": "octocat",
    "ghcr_token": "ghcr-token",
}
MARKER_KEYS = {
    "id",
    "name",
    "images",
    "repository",
    "vars",
    "env",
    "files",
    "groups",
    "after",
    "expect",
    "expect_real",
    "expect_next",
    "task",
    "args",
    "xfail",
}
IMAGE_KEYS = {"refs", "tags", "age", "platforms", "labels", "files", "signed", "attached", "signed_with", "deleted"}
SIGNATURE_KINDS = {"sig", "bundle"}
ATTACHMENT_KINDS = {"att", "sbom"}
# The key an example's cosign.pub holds; `signed_with: NAME` signs with another one.
DOC_KEY = "cosign"
PLAYBOOK_TIMEOUT = 180

# Settings for the examples of the guides, or sections of guides, whose RST this change does not edit (the audit
# guide, and the promotion guide outside "Promoting within a registry"): keyed "FILE: name of the first task or
# play". Each belongs in its RST as a `.. ci:` marker; the test refuses one that has a marker there too.
FALLBACK_MARKERS = yaml.safe_load(r"""
"guide_promotion.rst: Resolve the build that passed the tests":
  images: {build: [registry.example.com/dev/app:build-4711]}
"guide_promotion.rst: Describe the build":
  images: {build: [registry.example.com/dev/app:build-4711]}
"guide_promotion.rst: Publish release 1.4.2 on GHCR, exactly the image that was tested":
  images: {build: [registry.example.com/prod/app:1.4.2]}
  vars: {build_digest: "{digest:build}"}
  after: {ghcr.io/example/app:1.4.2: build}
"guide_promotion.rst: Copy the tested image to the public registry, untagged, and check its digest":
  images: {build: [registry.example.com/prod/app:1.4.2]}
  vars: {build_digest: "{digest:build}"}
  after: {ghcr.io/example/app:1.4.2: build}
"guide_promotion.rst: Promote app 1.4.2 to staging and production":
  images: {build: [registry.example.com/dev/app:1.4.2]}
  after:
    registry.example.com/staging/app:latest: build
    registry.example.com/staging/app:1.4.2: build
    ghcr.io/example/app:latest: build
    ghcr.io/example/app:stable: build
    ghcr.io/example/app:1.4.2: build
"guide_promotion.rst: Promote to staging only":
  images: {build: [registry.example.com/dev/app:1.4.2]}
  vars:
    app_stages:
      - {name: staging, repository: registry.example.com/staging/app, tags: [latest], release_tags: ["1.4.2"]}
      - {name: prod, repository: registry.example.com/prod/app, tags: [latest, stable], release_tags: ["1.4.2"]}
  after:
    registry.example.com/staging/app:1.4.2: build
    registry.example.com/prod/app:1.4.2: null
"guide_promotion.rst: Read the production tags":
  images: {build: [registry.example.com/prod/app:1.4.2, registry.example.com/prod/app:stable]}
  vars: {build_digest: "{digest:build}"}
"guide_audits.rst: Describe the arm64 image to deploy":
  images:
    app:
      refs: [registry.example.com/team/app:1.4.2]
      platforms: [linux/amd64, linux/arm64]
      labels: {org.opencontainers.image.source: https://git.example.com/team/app}
"guide_audits.rst: List the release tags of every team repository, with details":
  images:
    a1: [registry.example.com/team-a/app:v1.0.0]
    a2: {refs: [registry.example.com/team-a/app:v1.1.0, registry.example.com/team-a/app:latest], age: 2d}
    b1: [registry.example.com/team-b/worker:v2.0.0, registry.example.com/team-b/worker:main-7]
    other: [registry.example.com/other/app:v9.0.0]
"guide_audits.rst: Read the OS release and list the CA certificates of the base image":
  images:
    debian:
      refs: [registry.example.com/base/debian:12]
      platforms: [linux/amd64, linux/arm64]
      files:
        /etc/os-release: "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\n"
        /etc/ssl/certs/: null
        /etc/ssl/certs/ca-certificates.crt: "a CA bundle\n"
"guide_audits.rst: Audit the company registry every night":
  images:
    app: {refs: [registry.example.com/team/app:1.4.2, registry.example.com/team/app:latest], age: 3d}
    old: {refs: [registry.example.com/team/legacy:0.9], age: 400d}
  vars: {audit_output_dir: "{tmp}/reports"}
"guide_audits.rst: Publish the audit in the job summary":
  vars: {audit_report_files: {markdown: "{tmp}/registry-audit.md"}}
  files: {registry-audit.md: "# Registry audit\n"}
  env: {GITHUB_STEP_SUMMARY: "{tmp}/step-summary.md"}
"guide_audits.rst: List the stale images of the production repositories":
  vars:
    audit_report:
      findings:
        - {kind: stale, repository: prod/app, message: "prod/app:1.0.0 was built 200 days ago"}
        - {kind: stale, repository: dev/app, message: "dev/app:0.1 was built 300 days ago"}
  expect:
    List the stale images of the production repositories: {msg: ["prod/app:1.0.0 was built 200 days ago"]}
"guide_audits.rst: Audit the team's repositories on GHCR":
  images:
    app:
      refs: [ghcr.io/example/app:1.0.0, ghcr.io/example/app:latest]
      labels: {org.opencontainers.image.source: x, org.opencontainers.image.revision: y}
    worker: {refs: [ghcr.io/example/worker:2.0.0], age: 200d}
""")


# --------------------------------------------------------------------------------------------------------------
# reading the guides


@dataclasses.dataclass
class CodeBlock:
    file: str
    line: int
    language: str
    text: str
    marker: dict[str, Any] | None = None
    skip: str | None = None
    marker_source: str | None = None  # "rst" or "fallback"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def data(self) -> Any:
        return yaml.safe_load(self.text)

    @property
    def name(self) -> str | None:
        """The name of the block's first task or play."""
        data = self.data
        if isinstance(data, list) and data and isinstance(data[0], dict):
            return data[0].get("name")
        return None

    @property
    def kind(self) -> str:
        data = self.data
        if isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
            return "playbook" if all("hosts" in item for item in data) else "tasks"
        return "fragment"


_DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\. code-block::\s*(?P<language>\S+)\s*$")
_MARKER = re.compile(r"^(?P<indent>\s*)\.\. ci:(?P<rest>.*)$")


def _indented_body(lines: list[str], start: int, indent: int) -> tuple[list[str], int]:
    """The lines after START that are blank or indented deeper than INDENT, dedented; and the index after them."""
    body: list[str] = []
    index = start
    while index < len(lines) and (not lines[index].strip() or len(lines[index]) - len(lines[index].lstrip()) > indent):
        body.append(lines[index])
        index += 1
    while body and not body[-1].strip():
        body.pop()
    while body and not body[0].strip():
        body.pop(0)
    width = min((len(line) - len(line.lstrip()) for line in body if line.strip()), default=0)
    return [line[width:] for line in body], index


def parse_marker(text: str, where: str) -> tuple[dict[str, Any] | None, str | None]:
    """A marker's settings, or its skip reason."""
    stripped = text.strip()
    if stripped.split(None, 1)[:1] == ["skip"]:
        reason = stripped[len("skip") :].strip()
        if not reason:
            raise AssertionError(f"{where}: '.. ci: skip' needs a reason")
        return None, reason
    settings = yaml.safe_load(text) or {}
    if not isinstance(settings, dict):
        raise AssertionError(f"{where}: a '.. ci:' marker is 'skip REASON' or a YAML mapping, not {text!r}")
    unknown = set(settings) - MARKER_KEYS
    if unknown:
        raise AssertionError(f"{where}: unknown '.. ci:' keys {sorted(unknown)}; known: {sorted(MARKER_KEYS)}")
    return settings, None


def read_guide(path: Path) -> list[CodeBlock]:
    """Every code block of an RST file, with the `.. ci:` marker that precedes it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[CodeBlock] = []
    pending: tuple[int, str] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = _MARKER.match(line)
        directive = _DIRECTIVE.match(line)
        if marker:
            if pending is not None:
                raise AssertionError(f"{path.name}:{pending[0]}: a '.. ci:' marker not followed by a code block")
            line_number = index + 1
            body, index = _indented_body(lines, index + 1, len(marker["indent"]))
            pending = (line_number, "\n".join([marker["rest"].strip(), *body]).strip())
            continue
        if directive:
            body, after = _indented_body(lines, index + 1, len(directive["indent"]))
            block = CodeBlock(path.name, index + 1, directive["language"], "\n".join(body) + "\n")
            if pending is not None:
                block.marker, block.skip = parse_marker(pending[1], block.where)
                block.marker_source = "rst"
                pending = None
            blocks.append(block)
            index = after
            continue
        if line.strip() and pending is not None:
            raise AssertionError(f"{path.name}:{pending[0]}: a '.. ci:' marker not followed by a code block")
        index += 1
    if pending is not None:
        raise AssertionError(f"{path.name}:{pending[0]}: a '.. ci:' marker not followed by a code block")
    return blocks


@dataclasses.dataclass
class Inventory:
    """What the test does with each YAML block of the guides."""

    run: list[CodeBlock]
    skipped: list[CodeBlock]
    fragments: list[CodeBlock]
    expected: dict[str, CodeBlock]  # where of the example -> its expected result block
    unused_fallbacks: list[str]


def guide_files() -> list[Path]:
    return sorted(DOCS.glob("*.rst"))


def read_inventory() -> Inventory:
    fallbacks = dict(FALLBACK_MARKERS)
    used: set[str] = set()
    run: list[CodeBlock] = []
    skipped: list[CodeBlock] = []
    fragments: list[CodeBlock] = []
    expected: dict[str, CodeBlock] = {}
    by_id: dict[str, CodeBlock] = {}
    for path in guide_files():
        yaml_blocks = [block for block in read_guide(path) if block.language in ("yaml", "yaml+jinja")]
        for block in yaml_blocks:
            key = f"{block.file}: {block.name}"
            if key in fallbacks:
                if block.marker_source == "rst":
                    raise AssertionError(f"{block.where}: has a '.. ci:' marker, and FALLBACK_MARKERS has {key!r}")
                used.add(key)
                block.marker, block.skip = (
                    parse_marker(fallbacks[key], block.where)
                    if isinstance(fallbacks[key], str)
                    else (fallbacks[key], None)
                )
                block.marker_source = "fallback"
            if block.marker and "id" in block.marker:
                by_id[block.marker["id"]] = block
        consumed: set[int] = set()
        for number, block in enumerate(yaml_blocks):
            if number in consumed:
                continue
            if block.skip is not None:
                skipped.append(block)
                continue
            marker = block.marker or {}
            if marker.get("expect_next"):
                if number + 1 >= len(yaml_blocks):
                    raise AssertionError(f"{block.where}: expect_next, but no YAML code block follows")
                expected[block.where] = yaml_blocks[number + 1]
                consumed.add(number + 1)
            if block.kind == "fragment" and "task" not in marker:
                fragments.append(block)
            else:
                run.append(block)
    for block in run:
        images = (block.marker or {}).get("images")
        if isinstance(images, str):
            if images not in by_id:
                raise AssertionError(f"{block.where}: images: {images!r} names no marker id")
            block.marker = {**block.marker, "images": by_id[images].marker["images"]}
            block.marker.setdefault("repository", by_id[images].marker.get("repository"))
    return Inventory(run, skipped, fragments, expected, sorted(set(fallbacks) - used))


INVENTORY = read_inventory()


def describe_fragment(block: CodeBlock) -> str:
    data = block.data
    keys = ", ".join(sorted(data)) if isinstance(data, dict) else type(data).__name__
    return f"{block.where}: a YAML fragment ({keys}), not a playbook or tasks, and no marker runs it"


# --------------------------------------------------------------------------------------------------------------
# the registries the examples name, behind a CONNECT proxy


class ConnectProxy:
    """An HTTPS proxy that tunnels ``CONNECT host:443`` to the loopback registry standing for HOST, and nowhere else."""

    def __init__(self) -> None:
        self.routes: dict[str, int] = {}
        self.seen: list[str] = []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="connect-proxy", daemon=True)

    def start(self) -> ConnectProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(30)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, _sep, rest = request_line.partition(" ")
        host = rest.split(" ", 1)[0].rsplit(":", 1)[0]
        port = self.routes.get(host)
        if method != "CONNECT" or port is None:
            self.seen.append("refused " + request_line)
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        self.seen.append(host)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            sockets = [client, upstream]
            while True:
                readable, _writable, _errors = select.select(sockets, [], [], 30)
                if not readable:
                    return
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is client else client).sendall(data)


@dataclasses.dataclass
class DocWorld:
    """The module-wide pieces: the CA, a server certificate for every doc host, the proxy."""

    pki: CertificateAuthority
    server_cert: Any
    proxy: ConnectProxy
    root: Path


@pytest.fixture(scope="module")
def doc_world(pki: CertificateAuthority, functional_root: Path) -> Iterator[DocWorld]:
    server_cert = pki.issue_server("doc-hosts", hosts=(*DEFAULT_HOSTS, *DOC_HOSTS))
    proxy = ConnectProxy().start()
    root = functional_root / "guide-examples"
    root.mkdir(exist_ok=True)
    yield DocWorld(pki, server_cert, proxy, root)
    proxy.stop()


class DocRegistries:
    """One fresh registry per doc host that an example uses, routed by the proxy."""

    def __init__(self, world: DocWorld, workdir: Path) -> None:
        self.world = world
        self.workdir = workdir
        self.servers: dict[str, RegistryServer] = {}

    def server(self, host: str) -> RegistryServer:
        if host not in DOC_HOSTS:
            raise AssertionError(f"{host} is not one of the registries the test provides: {sorted(DOC_HOSTS)}")
        if host not in self.servers:
            overrides = {
                "http": {
                    "tls": {
                        "certificate": str(self.world.server_cert.cert_path),
                        "key": str(self.world.server_cert.key_path),
                    }
                }
            }
            server = RegistryServer(
                DOC_HOSTS[host], self.workdir / f"registry-{host}", ca=self.world.pki, config_overrides=overrides
            )
            self.servers[host] = server.start()
            self.world.proxy.routes[host] = server.port
        return self.servers[host]

    def stop(self) -> None:
        for host, server in self.servers.items():
            self.world.proxy.routes.pop(host, None)
            server.stop()

    def snapshot(self) -> dict[str, dict[str, dict[str, str]]]:
        """host -> repository -> tag -> manifest digest, for every registry started."""
        state: dict[str, dict[str, dict[str, str]]] = {}
        for host, server in self.servers.items():
            with RawClient(server) as client:
                state[host] = {}
                for repository in client.catalog():
                    state[host][repository] = {
                        tag: client.get_manifest(repository, tag).headers["Docker-Content-Digest"]
                        for tag in client.tags(repository)
                    }
        return state

    def digest_of(self, reference: str) -> str | None:
        host, repository, tag = split_reference(reference)
        with RawClient(self.server(host)) as client:
            response = client.get_manifest(repository, tag)
            return response.headers["Docker-Content-Digest"] if response.status_code == 200 else None


def split_reference(reference: str) -> tuple[str, str, str]:
    host, _slash, rest = reference.partition("/")
    repository, _colon, tag = rest.rpartition(":")
    if not repository or "/" in tag:
        raise AssertionError(f"{reference!r}: the test needs HOST/REPOSITORY:TAG")
    return host, repository, tag


_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def created_ago(age: str) -> str:
    seconds = sum(int(number) * _UNITS[unit] for number, unit in _DURATION.findall(age))
    if not seconds or _DURATION.sub("", age):
        raise AssertionError(f"age {age!r}: give a duration such as 45d or 1w3d")
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------------------------
# running one example


class Substitutions:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"\{((?:[a-z_]+:)?[a-z_][\w.-]*)\}", self._one, value)
        if isinstance(value, list):
            return [self(item) for item in value]
        if isinstance(value, dict):
            return {self(key): self(item) for key, item in value.items()}
        return value

    def _one(self, match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in self.values:
            return match.group(0)  # not ours (a Jinja or YAML brace)
        return self.values[name]


def matches(expected: Any, actual: Any) -> bool:
    """Whether ACTUAL has everything EXPECTED shows; a string ending in '...' matches any string with its prefix."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and matches(expected[key], actual[key]) for key in expected
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(want, have) for want, have in zip(expected, actual))
        )
    if isinstance(expected, str) and expected.endswith("..."):
        return isinstance(actual, str) and actual.startswith(expected[:-3])
    return expected == actual


@dataclasses.dataclass
class Run:
    rc: int
    output: str
    results: list[dict[str, Any]]

    def task(self, name: str) -> dict[str, Any]:
        found = [entry["result"] for entry in self.results if entry["task"] == name]
        if not found:
            raise AssertionError(f"task {name!r} did not run:\n{self.output}")
        return found[-1]


class Example:
    def __init__(self, block: CodeBlock, world: DocWorld, workdir: Path) -> None:
        self.block = block
        self.marker = block.marker or {}
        self.workdir = workdir
        self.registries = DocRegistries(world, workdir)
        self.connect = ClientFactory()
        self.attachment_digests: dict[str, str] = {}
        self.world = world
        self.images: dict[str, Image] = {}
        public_key = cosign.signing_key("ecdsa-p256", DOC_KEY).public_pem
        values = {"tmp": str(workdir), "ca_pem": world.pki.cert_path.read_text(), "cosign_pub": public_key}
        self.substitute = Substitutions(values)

    def prepare(self) -> None:
        for host in DOC_HOSTS:
            if re.search(r"(?<![\w.-])%s(?![\w-])" % re.escape(host), self.block.text):
                self.registries.server(host)
        self.seed()
        values = self.substitute.values
        values.update({f"digest:{label}": image.digest for label, image in self.images.items()})
        values.update({f"sig_tag:{label}": cosign.cosign_tag(image.digest) for label, image in self.images.items()})
        values.update(
            {f"fallback_tag:{label}": cosign.referrers_tag(image.digest) for label, image in self.images.items()}
        )
        values.update(self.attachment_digests)
        (self.workdir / "cosign.pub").write_text(values["cosign_pub"])
        mtls = [server for server in self.registries.servers.values() if server.kind == "mtls"]
        if mtls:
            values["client_pem"] = Path(mtls[0].client_cert).read_text()
            values["client_key_pem"] = Path(mtls[0].client_key).read_text()
        for name, content in self.substitute(self.marker.get("files") or {}).items():
            path = self.workdir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        self.write_playbook()

    def seed(self) -> None:
        images = self.marker.get("images") or {}
        for label, spec in images.items():
            spec = {"refs": spec} if isinstance(spec, list) else dict(spec)
            unknown = set(spec) - IMAGE_KEYS
            if unknown:
                raise AssertionError(f"{self.block.where}: image {label!r}: unknown keys {sorted(unknown)}")
            refs = list(spec.get("refs") or [])
            refs += ["%s:%s" % (self.marker["repository"], tag) for tag in spec.get("tags") or []]
            files = None
            if spec.get("files"):
                files = {
                    path: Dir() if content is None else content.encode() for path, content in spec["files"].items()
                }
            image = make_image(
                self.workdir / "layouts" / label,
                ref=label,
                platforms=spec.get("platforms"),
                layers=1,
                layer_size=512,
                files=files,
                labels=spec.get("labels"),
                created=created_ago(spec["age"]) if "age" in spec else "2024-01-01T00:00:00Z",
                seed=f"{self.block.where}/{label}",
            )
            self.images[label] = image
            for reference in refs:
                host, repository, tag = split_reference(reference)
                with RawClient(self.registries.server(host)) as client:
                    client.push_image(image, repository, [tag])
            self.attach(label, spec, refs)

    def attach(self, label: str, spec: dict[str, Any], refs: list[str]) -> None:
        """Push what the image spec says is attached to the image, into each repository it was pushed to; then,
        with `deleted`, delete the image."""
        signed = spec.get("signed") or []
        signed = ["sig"] if signed is True else [signed] if isinstance(signed, str) else list(signed)
        attached = spec.get("attached") or []
        attached = [attached] if isinstance(attached, str) else list(attached)
        if set(signed) - SIGNATURE_KINDS or set(attached) - ATTACHMENT_KINDS:
            raise AssertionError(
                f"{self.block.where}: image {label!r}: signed is true or a list of {sorted(SIGNATURE_KINDS)}, "
                f"attached a list of {sorted(ATTACHMENT_KINDS)}"
            )
        if not (signed or attached):
            if spec.get("signed_with") or spec.get("deleted"):
                raise AssertionError(f"{self.block.where}: image {label!r}: signed_with and deleted need attachments")
            return
        image = self.images[label]
        key = cosign.signing_key("ecdsa-p256", spec.get("signed_with") or DOC_KEY)
        host, repository, _tag = split_reference(refs[0])
        docker_reference = f"{host}/{repository}"
        artifacts: list[cosign.Artifact] = []
        referrers: list[cosign.Artifact] = []
        if "sig" in signed:
            layer = cosign.simple_signature(image.digest, key, docker_reference=docker_reference)
            artifacts.append(cosign.signature_image(image.digest, [layer]))
            self.attachment_digests[f"sig:{label}"] = artifacts[-1].digest
        if "att" in attached:
            layer = cosign.attestation_layer(image.digest, key, docker_reference=docker_reference)
            artifacts.append(cosign.attestation_image(image.digest, [layer]))
        if "sbom" in attached:
            sbom = b'{"spdxVersion":"SPDX-2.3","name":"%s"}' % label.encode()
            artifacts.append(cosign.sbom_image(image.digest, sbom))
        if "bundle" in signed:
            referrers.append(cosign.sign_bundle(cosign.subject_of(image), key, created="2025-06-01T12:00:00Z"))
            self.attachment_digests[f"bundle:{label}"] = referrers[-1].digest
        repositories = sorted({split_reference(reference)[:2] for reference in refs})
        for host, repository in repositories:
            client = self.connect(self.registries.server(host), repository)
            for artifact in artifacts:
                cosign.push(client, repository, artifact)
            if referrers:
                cosign.push_referrers(client, repository, image.digest, referrers)
            if spec.get("deleted"):
                with RawClient(self.registries.server(host)) as raw:
                    raw.delete_manifest(repository, image.digest)

    def write_playbook(self) -> None:
        kind = self.block.kind
        if kind == "playbook":
            text = self.block.text
        elif kind == "tasks":
            text = "- name: Guide example %s\n  hosts: localhost\n  gather_facts: false\n  tasks:\n" % self.block.where
            text += "".join("    " + line + "\n" if line.strip() else "\n" for line in self.block.text.splitlines())
        else:
            task = {"name": self.fragment_task_name, self.marker["task"]: {**self.marker.get("args", {})}}
            task[self.marker["task"]].update(self.block.data)
            task["delegate_to"] = "localhost"
            play = {"name": "Guide fragment %s" % self.block.where, "hosts": "localhost", "gather_facts": False}
            text = yaml.safe_dump([{**play, "tasks": [task]}], sort_keys=False)
        (self.workdir / "playbook.yml").write_text(text)
        inventory = {
            "all": {
                "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": ansible_python()}},
                "children": {group: {"hosts": {"localhost": {}}} for group in self.marker.get("groups") or []},
            }
        }
        (self.workdir / "inventory.yml").write_text(yaml.safe_dump(inventory))
        extra_vars = {**COMMON_VARS, **self.substitute(self.marker.get("vars") or {})}
        (self.workdir / "extra-vars.json").write_text(json.dumps(extra_vars))

    @property
    def fragment_task_name(self) -> str:
        return self.marker.get("name") or "Guide fragment at %s" % self.block.where

    def run(self, check: bool) -> Run:
        results = self.workdir / ("results-check.jsonl" if check else "results.jsonl")
        home = self.workdir / "home"
        (home / "run").mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "XDG_RUNTIME_DIR": str(home / "run"),
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH),
            "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
            "ANSIBLE_CALLBACKS_ENABLED": "record_results",
            "OCIREG_TEST_RESULTS": str(results),
            "ANSIBLE_LOCAL_TEMP": str(self.workdir / "ansible-tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            # Every request goes to the proxy, which refuses any host but the registries of DOC_HOSTS.
            "HTTPS_PROXY": self.world.proxy.url,
            "HTTP_PROXY": self.world.proxy.url,
            "REQUESTS_CA_BUNDLE": str(self.world.pki.cert_path),
            **self.substitute(self.marker.get("env") or {}),
        }
        command = [
            str(Path(ansible_python()).parent / "ansible-playbook"),
            "-i",
            "inventory.yml",
            "-e",
            "@extra-vars.json",
            "playbook.yml",
            "--diff",
        ]
        if check:
            command.append("--check")
        completed = subprocess.run(
            command,
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=PLAYBOOK_TIMEOUT,
            check=False,
        )
        entries = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
        return Run(completed.returncode, completed.stdout + completed.stderr, entries)

    def check_expectations(self, run: Run, expected_next: CodeBlock | None, key: str = "expect") -> None:
        expectations = dict(self.substitute(self.marker.get(key) or {}))
        if expected_next is not None:
            name = self.marker["expect_next"]
            task = self.fragment_task_name if name is True else name
            expectations[task] = self.substitute(expected_next.data)
        for task, expected in expectations.items():
            result = run.task(task)
            if isinstance(expected, list):  # a loop: what its results show
                result = result.get("results")
            assert matches(expected, result), (
                f"{self.block.where}: the result of {task!r} does not show what the guide says.\n"
                f"guide: {json.dumps(expected, indent=1)}\nresult: {json.dumps(result, indent=1, default=str)}"
            )


def block_ids(blocks: list[CodeBlock]) -> list[str]:
    return [block.where for block in blocks]


def run_and_explain(example: Example, check: bool) -> Run:
    run = example.run(check=check)
    mode = "--check" if check else "the real run"
    assert run.rc == 0, f"{example.block.where}: the example fails in {mode}:\n{run.output}"
    warnings = [line for line in run.output.splitlines() if "[WARNING]" in line]
    assert not warnings, f"{example.block.where}: the example warns in {mode}:\n{run.output}"
    return run


def runnable(blocks: list[CodeBlock]) -> list[Any]:
    """The blocks as parameters; one whose marker names a known fault must fail (strict: fixed, it must say so)."""
    return [
        pytest.param(
            block,
            id=block.where,
            marks=(
                [pytest.mark.xfail(reason=block.marker["xfail"], strict=True)]
                if block.marker and block.marker.get("xfail")
                else []
            ),
        )
        for block in blocks
    ]


@pytest.mark.parametrize("block", runnable(INVENTORY.run))
def test_guide_example_runs_in_check_mode_and_for_real(block: CodeBlock, doc_world: DocWorld, tmp_path: Path):
    example = Example(block, doc_world, tmp_path)
    proxied_before = len(doc_world.proxy.seen)
    try:
        example.prepare()
        expected_next = INVENTORY.expected.get(block.where)

        before = example.registries.snapshot()
        check_run = run_and_explain(example, check=True)
        assert example.registries.snapshot() == before, f"{block.where}: --check changed a registry"
        example.check_expectations(check_run, expected_next)

        real_run = run_and_explain(example, check=False)
        example.check_expectations(real_run, expected_next)
        example.check_expectations(real_run, None, "expect_real")
        for reference, label in example.substitute(example.marker.get("after") or {}).items():
            want = None if label is None else label if label.startswith("sha256:") else example.images[label].digest
            assert example.registries.digest_of(reference) == want, (
                f"{block.where}: after the real run, {reference} should be "
                f"{'absent' if want is None else 'image ' + label}\n{real_run.output}"
            )
        refused = [entry for entry in doc_world.proxy.seen[proxied_before:] if entry.startswith("refused")]
        assert not refused, f"{block.where}: the example reached for registries the test does not provide: {refused}"
    finally:
        example.connect.close()
        example.registries.stop()


@pytest.mark.parametrize(
    "block", INVENTORY.skipped + INVENTORY.fragments, ids=block_ids(INVENTORY.skipped + INVENTORY.fragments)
)
def test_guide_example_not_run(block: CodeBlock):
    """Listed and counted, never silently left out: pytest -rs shows each with its reason."""
    if block.skip is not None:
        pytest.skip(f"{block.where}: marked '.. ci: skip {block.skip}'")
    pytest.skip(describe_fragment(block))


def test_every_yaml_block_of_the_guides_is_accounted_for():
    inventory = read_inventory()
    assert not inventory.unused_fallbacks, (
        "FALLBACK_MARKERS names blocks the guides no longer have (renamed? moved into the RST?): "
        f"{inventory.unused_fallbacks}"
    )
    every = [block for path in guide_files() for block in read_guide(path) if block.language in ("yaml", "yaml+jinja")]
    accounted = (
        block_ids(inventory.run)
        + block_ids(inventory.skipped)
        + block_ids(inventory.fragments)
        + block_ids(list(inventory.expected.values()))
    )
    assert sorted(accounted) == sorted(block_ids(every))
    for block in every:
        block.data  # noqa: B018 (every block must be valid YAML)
    # A reader that stopped finding examples would pass with nothing to run: every guide with YAML has one that runs.
    assert {block.file for block in every} == {block.file for block in inventory.run}
    for block in inventory.run:
        if block.kind == "fragment":
            assert block.marker and "task" in block.marker


# --------------------------------------------------------------------------------------------------------------
# the marker reader itself: each rule can fail


def test_the_reader_takes_markers_skips_and_refuses_stray_markers(tmp_path: Path):
    guide = tmp_path / "guide.rst"
    guide.write_text(
        "Text.\n\n.. ci: skip needs Docker Hub\n\n.. code-block:: yaml\n\n    - name: A\n      x: 1\n\n"
        ".. ci:\n   vars: {a: 1}\n\n.. code-block:: yaml+jinja\n\n    - name: B\n      y: 2\n"
    )
    first, second = read_guide(guide)
    assert (first.skip, first.marker, first.line) == ("needs Docker Hub", None, 5)
    assert (second.skip, second.marker, second.name) == (None, {"vars": {"a": 1}}, "B")

    guide.write_text(".. ci: skip no code follows\n\nA paragraph.\n\n.. code-block:: yaml\n\n    a: 1\n")
    with pytest.raises(AssertionError, match="not followed by a code block"):
        read_guide(guide)
    guide.write_text(".. ci: skip\n\n.. code-block:: yaml\n\n    a: 1\n")
    with pytest.raises(AssertionError, match="needs a reason"):
        read_guide(guide)
    guide.write_text(".. ci: {imagez: {}}\n\n.. code-block:: yaml\n\n    a: 1\n")
    with pytest.raises(AssertionError, match="unknown '.. ci:' keys"):
        read_guide(guide)


def test_expected_results_match_by_subset_and_ellipsis():
    assert matches({"a": [1, "sha256:..."]}, {"a": [1, "sha256:abc"], "b": 2})
    assert not matches({"a": [1]}, {"a": [1, 2]})
    assert not matches({"a": "sha256:..."}, {"a": "sha512:abc"})
    assert not matches({"c": 1}, {"a": 1})


# --------------------------------------------------------------------------------------------------------------
# the console commands of the guides


def console_commands(name: str) -> list[str]:
    blocks = [block for block in read_guide(DOCS / name) if block.language == "console"]
    return [line[2:] for block in blocks for line in block.text.splitlines() if line.startswith("$ ")]


def test_getting_started_local_registry_as_written(tmp_path: Path, image_factory, playbook):
    """The local registry of "Trying it on a local registry": its configuration, its serve command, the skopeo push
    (which needs --dest-tls-verify=false, as the guide says, and fails without it), and a module on it."""
    blocks = read_guide(DOCS / "guide_getting_started.rst")
    config = next(block.data for block in blocks if block.language == "yaml" and "storage" in (block.data or {}))
    port = free_port()
    config["storage"]["filesystem"]["rootdirectory"] = str(tmp_path / "storage")
    assert config["http"]["addr"] == "127.0.0.1:5000"
    config["http"]["addr"] = f"127.0.0.1:{port}"
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
    commands = console_commands("guide_getting_started.rst")
    serve = next(command for command in commands if command.startswith("docker-registry "))
    push = next(command for command in commands if command.startswith("skopeo copy "))
    assert shlex.split(serve) == ["docker-registry", "serve", "config.yml"]

    image = image_factory()
    argv = shlex.split(push)
    source = next(arg for arg in argv if arg.startswith("docker://docker.io/"))
    # Only what cannot be reached here changes: Docker Hub becomes a local image, port 5000 a free one.
    argv = [image.oci if arg == source else arg.replace("127.0.0.1:5000", f"127.0.0.1:{port}") for arg in argv]
    without_flag = [arg for arg in argv if arg != "--dest-tls-verify=false"]
    assert without_flag != argv, "the guide's push command has no --dest-tls-verify=false"

    registry = subprocess.Popen(shlex.split(serve), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except requests.RequestException:
                assert registry.poll() is None and time.monotonic() < deadline, "the registry did not start"
                time.sleep(0.05)
        witness = Skopeo(RegistryServer("open", tmp_path / "witness", port=port))
        failed = witness.run(*without_flag[1:], check=False)
        assert failed.returncode != 0
        assert b"server gave HTTP response to HTTPS client" in failed.stderr
        witness.run(*argv[1:])
        assert witness.digest("team/app:1.4.2") == image.digest

        run = playbook(
            [
                {
                    "name": "Read it",
                    "ocireg.registry.registry_info": {"image": f"127.0.0.1:{port}/team/app:1.4.2"},
                    "register": "r",
                }
            ]
        )
        assert run.rc == 0, run.output
        assert run.task("Read it")["image"]["digest"] == image.digest
    finally:
        registry.terminate()
        registry.wait(timeout=10)


def test_the_guides_make_and_pytest_commands_exist():
    """`make X` lines name real targets; pytest lines name test files that exist, in the venv `make venv` makes."""
    checked = 0
    for path in guide_files():
        for command in console_commands(path.name):
            argv = shlex.split(command)
            if argv[0] == "make":
                completed = subprocess.run(
                    ["make", "-n", *argv[1:]], cwd=REPO_ROOT, capture_output=True, text=True, check=False
                )
                assert completed.returncode == 0, f"{path.name}: {command}: {completed.stderr}"
                checked += 1
            pytest_at = [index for index, arg in enumerate(argv) if arg.endswith("pytest")]
            if pytest_at:
                assert argv[pytest_at[0]] == ".venv/bin/pytest", f"{path.name}: {command}: use the venv's pytest"
                for pattern in argv[pytest_at[0] + 1 :]:
                    assert glob.glob(str(REPO_ROOT / pattern)), f"{path.name}: {command}: no {pattern}"
                checked += 1
    assert checked >= 2
