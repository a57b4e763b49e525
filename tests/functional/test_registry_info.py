"""registry_info against the real distribution registry: catalog, tags, details, platforms, existence, bad input.

skopeo is the witness for digests, tags and configs; the registry's access log counts the requests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from support.images import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Image
from support.playbook import PlaybookRun
from support.rawhttp import RawClient
from support.registry import RegistryServer
from support.seed import seed_many
from support.skopeo import Skopeo, SkopeoError

MODULE = "ocireg.registry.registry_info"
Playbook = Callable[..., PlaybookRun]


def task(name: str, ignore_errors: bool = False, **args: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, MODULE: args, "register": "result"}
    if ignore_errors:
        entry["ignore_errors"] = True
    return entry


def creds(server: RegistryServer) -> dict[str, str]:
    return {"username": server.username, "password": server.password} if server.username else {}


def ok(run: PlaybookRun, name: str) -> dict[str, Any]:
    result = run.task(name)
    assert not result.get("failed"), result.get("msg") or run.output
    assert result["changed"] is False
    return result


def failed(run: PlaybookRun, name: str) -> dict[str, Any]:
    """The result of a task that must have failed (ansible-core 2.19 keeps ``failed`` out of the result dict)."""
    entries = [entry for entry in run.results if entry["task"] == name]
    assert entries, "task %r did not run:\n%s" % (name, run.output)
    assert entries[-1]["status"] == "failed", entries[-1]
    return entries[-1]["result"]


def expected_size(image: Image, platform: str = "linux/amd64") -> int:
    chosen = image.platforms[platform]
    size = chosen.size + chosen.config.size + sum(layer.size for layer in chosen.layers)
    return size + (image.size if image.is_index else 0)


def manifest_gets(entries: list[dict[str, Any]]) -> list[str]:
    return [e["path"] for e in entries if e["method"] == "GET" and "/manifests/" in e["path"] and e["status"] == 200]


# ----------------------------------------------------------------------------------------------------
# Catalog and tag lists


def test_catalog_follows_every_page_and_filters_repositories_and_tags(
    registry_factory: Callable[..., RegistryServer], playbook: Playbook, skopeo: Callable[..., Skopeo]
) -> None:
    # maxentries 100: our first page asks for 1000, the registry refuses, we fall back to pages of 100.
    server = registry_factory("open", catalog_maxentries=100)
    team = seed_many(server, 130, ["latest", "v1.0"], prefix="team")
    other = seed_many(server, ["other/alpha", "other/beta", "misc/gamma"], ["v1.0", "v2.0", "latest"], distinct=True)
    mark = server.mark()

    run = playbook(
        [
            task("everything", registry=server.host),
            task("team tags", registry=server.host, repositories=["team/repo-12?"], tags=["v*"]),
            task("several patterns", registry=server.host, repositories=["other/*", "misc/*"], tags=["v2.*", "latest"]),
            task("details", registry=server.host, repositories=["other/a*"], tags=["v1.0", "v2.0"], details=True),
        ]
    )

    everything = ok(run, "everything")
    assert (everything["exists"], everything["missing"]) == (True, None)
    assert everything["registry"] == {"url": server.url, "api_version": "registry/2.0"}
    names = [entry["name"] for entry in everything["repositories"]]
    assert sorted(names) == sorted(team.repos + other.repos)
    assert len(names) == 133
    assert all("tags" not in entry for entry in everything["repositories"])  # no tag requests unless asked

    team_tags = ok(run, "team tags")["repositories"]
    assert team_tags == [{"name": "team/repo-%03d" % i, "tags": ["v1.0"]} for i in range(120, 130)]

    several = ok(run, "several patterns")["repositories"]
    assert {entry["name"]: sorted(entry["tags"]) for entry in several} == {
        name: ["latest", "v2.0"] for name in ("other/alpha", "other/beta", "misc/gamma")
    }

    details = ok(run, "details")["repositories"]
    assert [entry["name"] for entry in details] == ["other/alpha"]
    sk = skopeo(server)
    assert sorted(described["tag"] for described in details[0]["tags"]) == ["v1.0", "v2.0"]
    for described in details[0]["tags"]:
        tag = described["tag"]
        assert described["name"] == "%s/other/alpha" % server.host
        assert described["digest"] == sk.digest("other/alpha:%s" % tag) == other.digest("other/alpha", tag)

    # The first task read the catalog in pages of 100 (after the registry refused 1000), following Link.
    catalog = [e for e in server.requests_since(mark) if e["path"] == "/v2/_catalog"]
    assert catalog[0]["status"] == 400 and catalog[0]["params"]["n"] == ["1000"]
    assert [e["status"] for e in catalog[1:3]] == [200, 200]
    assert catalog[2]["params"].get("last"), "the second page must come from the Link header"


@pytest.mark.parametrize("kind", ["open", "htpasswd", "token"])
def test_repository_tags_details_and_existence_in_each_setup(
    kind: str,
    request: pytest.FixtureRequest,
    playbook: Playbook,
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
) -> None:
    server: RegistryServer = request.getfixturevalue("registry_%s" % kind)
    tags = ["tag-%03d" % i for i in range(130)] + ["latest", "v1.0", "v1.1"]
    seeded = seed_many(server, [unique_repo], tags, distinct=True)
    repository = "%s/%s" % (server.host, unique_repo)
    auth = creds(server)

    run = playbook(
        [
            task("all tags", repository=repository, **auth),
            task("filtered", repository=repository, tags=["v1.*", "tag-12[5-9]"], **auth),
            task("details", repository=repository, tags=["v1.*"], details=True, concurrency=2, **auth),
            task("missing repository", repository=repository + "-missing", **auth),
            task("missing tag", image=repository + ":nope", **auth),
            task("image", image=repository + ":v1.1", **auth),
        ]
        + (
            [task("wrong password", ignore_errors=True, repository=repository, username=server.username, password="x")]
            if auth
            else []
        ),
    )

    sk = skopeo(server)
    assert sorted(ok(run, "all tags")["tags"]) == sorted(sk.list_tags(unique_repo)) == sorted(tags)
    assert sorted(ok(run, "filtered")["tags"]) == sorted(["v1.0", "v1.1", *("tag-%03d" % i for i in range(125, 130))])
    details = ok(run, "details")["tags"]
    assert [entry["tag"] for entry in details] == ["v1.0", "v1.1"]
    for entry in details:
        assert (
            entry["digest"]
            == sk.digest("%s:%s" % (unique_repo, entry["tag"]))
            == seeded.digest(unique_repo, entry["tag"])
        )
        assert entry["name"] == repository
        assert entry["media_type"] == OCI_MANIFEST
        assert (entry["os"], entry["architecture"]) == ("linux", "amd64")

    missing = ok(run, "missing repository")
    assert (missing["exists"], missing["tags"]) == (False, [])
    missing_tag = ok(run, "missing tag")
    assert (missing_tag["exists"], missing_tag["image"]) == (False, None)
    image = ok(run, "image")
    assert image["exists"] is True
    assert image["image"]["digest"] == seeded.digest(unique_repo, "v1.1")
    if auth:
        refused = failed(run, "wrong password")
        assert "Authentication failed for registry %s" % server.host in refused["msg"]
        assert server.password not in json.dumps(refused)


# ----------------------------------------------------------------------------------------------------
# Image details


def test_details_match_what_skopeo_sees_with_one_get_per_tag_and_per_config(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    playbook: Playbook,
    skopeo: Callable[..., Skopeo],
    raw_client: Callable[..., RawClient],
    unique_repo: str,
) -> None:
    labels = {"org.opencontainers.image.source": "https://example.com/app", "tier": "web"}
    docker = image_factory(media_types="docker", labels=labels, created="2023-05-06T07:08:09Z", layers=3)
    oci = image_factory(platforms=["linux/amd64", "linux/arm64"], labels={"x": "y"})
    sk = skopeo(registry_open)
    raw_client(registry_open).push_image(docker, unique_repo, ["d1", "d2", "d3"])  # three tags, one config
    sk.copy(oci.oci, "%s:multi" % unique_repo)
    repository = "%s/%s" % (registry_open.host, unique_repo)
    mark = registry_open.mark()

    run = playbook([task("details", repository=repository, details=True)])
    seen = registry_open.requests_since(mark)

    by_tag = {entry["tag"]: entry for entry in ok(run, "details")["tags"]}
    assert sorted(by_tag) == ["d1", "d2", "d3", "multi"]
    config = json.loads(sk.inspect("%s:d1" % unique_repo, raw=True, config=True))
    for tag in ("d1", "d2", "d3"):
        entry = by_tag[tag]
        assert entry["digest"] == sk.digest("%s:%s" % (unique_repo, tag)) == docker.digest
        assert entry["media_type"] == DOCKER_MANIFEST
        assert entry["size"] == expected_size(docker)
        assert entry["created"] == config["created"] == "2023-05-06T07:08:09Z"
        assert entry["labels"] == labels
        assert (entry["os"], entry["architecture"], entry["variant"]) == ("linux", "amd64", None)
        assert entry["history"] == config["history"]
        platform = docker.platforms["linux/amd64"]
        assert entry["layers"] == [
            {"digest": layer.digest, "size": layer.size, "media_type": layer.media_type} for layer in platform.layers
        ]
        assert (entry["platforms"], entry["platform"]) == ([], None)

    multi = by_tag["multi"]
    assert multi["digest"] == sk.digest("%s:multi" % unique_repo) == oci.digest
    assert multi["media_type"] == OCI_INDEX
    assert multi["size"] == expected_size(oci)
    assert multi["labels"] == {"x": "y"}
    assert [layer["digest"] for layer in multi["layers"]] == oci.layer_digests["linux/amd64"]

    # One manifest GET per tag, one for the amd64 child of the index, one config GET per distinct config;
    # no HEAD, no layer.
    manifests = manifest_gets(seen)
    assert sorted(manifests) == sorted(
        ["/v2/%s/manifests/%s" % (unique_repo, tag) for tag in ("d1", "d2", "d3", "multi")]
        + ["/v2/%s/manifests/%s" % (unique_repo, oci.manifests["linux/amd64"])]
    )
    blobs = sorted(e["path"].rsplit("/", 1)[1] for e in seen if "/blobs/" in e["path"])
    assert blobs == sorted([docker.config_digests["linux/amd64"], oci.config_digests["linux/amd64"]])
    assert not [e for e in seen if e["method"] == "HEAD"]


def test_multi_platform_images_describe_the_index_and_the_chosen_platform(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    playbook: Playbook,
    skopeo: Callable[..., Skopeo],
    raw_client: Callable[..., RawClient],
    unique_repo: str,
) -> None:
    platforms = ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]
    oci = image_factory(platforms=platforms)
    docker = image_factory(platforms=platforms, media_types="docker")
    sk = skopeo(registry_open)
    sk.copy(oci.oci, "%s:oci" % unique_repo)
    raw_client(registry_open).push_image(docker, unique_repo, ["docker"])
    base = "%s/%s" % (registry_open.host, unique_repo)

    run = playbook(
        [
            task("default", image=base + ":oci"),
            task("arm64", image=base + ":oci", platform="linux/arm64"),
            task("armv7 list", image=base + ":docker", platform="linux/arm/v7"),
            task("by digest", image="%s@%s" % (base, docker.digest), platform="linux/arm64/v8"),
            task("absent platform", image=base + ":oci", platform="linux/s390x"),
        ]
    )

    expected_platforms = [
        {
            "os": "linux",
            "architecture": name.split("/")[1],
            "variant": (name.split("/") + [None])[2],
            "digest": oci.manifests[name],
            "size": oci.platforms[name].size,
        }
        for name in platforms
    ]
    default = ok(run, "default")["image"]
    assert default["digest"] == oci.digest == sk.digest("%s:oci" % unique_repo)
    assert default["media_type"] == OCI_INDEX
    assert default["platforms"] == expected_platforms
    assert default["platform"] == expected_platforms[0]
    assert (default["os"], default["architecture"]) == ("linux", "amd64")
    assert default["size"] == expected_size(oci)

    arm64 = ok(run, "arm64")["image"]
    assert arm64["digest"] == oci.digest
    assert arm64["platform"] == expected_platforms[1]  # linux/arm64 matches linux/arm64/v8
    config = json.loads(sk.inspect("%s@%s" % (unique_repo, oci.manifests["linux/arm64/v8"]), raw=True, config=True))
    assert (arm64["architecture"], arm64["variant"]) == (config["architecture"], config["variant"]) == ("arm64", "v8")
    assert [layer["digest"] for layer in arm64["layers"]] == oci.layer_digests["linux/arm64/v8"]
    assert arm64["size"] == expected_size(oci, "linux/arm64/v8")

    armv7 = ok(run, "armv7 list")["image"]
    assert (armv7["digest"], armv7["media_type"]) == (docker.digest, DOCKER_LIST)
    assert (armv7["architecture"], armv7["variant"]) == ("arm", "v7")
    assert armv7["platform"]["digest"] == docker.manifests["linux/arm/v7"]

    by_digest = ok(run, "by digest")
    assert by_digest["image"]["tag"] is None
    assert by_digest["image"]["digest"] == docker.digest
    assert by_digest["image"]["platform"]["digest"] == docker.manifests["linux/arm64/v8"]

    absent = ok(run, "absent platform")
    assert absent["exists"] is True
    assert absent["image"]["digest"] == oci.digest
    assert absent["image"]["platform"] is None
    assert absent["image"]["layers"] == [] and absent["image"]["architecture"] is None
    assert absent["image"]["platforms"] == expected_platforms
    assert absent["missing"] == "platform"
    assert any("without platform linux/s390x" in w and "linux/arm/v7" in w for w in absent.get("warnings", []))
    for name in ("default", "arm64", "armv7 list", "by digest"):
        assert ok(run, name)["missing"] is None, name


def test_a_single_platform_image_asked_for_another_platform_exists_but_its_platform_is_missing(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    playbook: Playbook,
    skopeo: Callable[..., Skopeo],
    raw_client: Callable[..., RawClient],
    unique_repo: str,
) -> None:
    image = image_factory(layers=1)  # one linux/amd64 manifest, no index
    sk = skopeo(registry_open)
    sk.copy(image.oci, "%s:v1" % unique_repo)
    # and one linux/arm64 manifest alone: the arm64 child of an index, tagged by itself
    multi = image_factory(platforms=["linux/arm64"], layers=1)
    arm64 = multi.platforms["linux/arm64"]
    raw = raw_client(registry_open)
    raw.push_platform(multi, arm64, unique_repo)
    raw.put_manifest(unique_repo, "arm64", arm64.manifest, arm64.media_type)
    reference = "%s/%s:v1" % (registry_open.host, unique_repo)
    tasks = [
        task("asked arm64", image=reference, platform="linux/arm64"),
        task("asked amd64", image=reference, platform="linux/amd64"),
        task("not asked", image=reference),
        task("files of arm64", ignore_errors=True, image=reference, platform="linux/arm64", paths=["/"]),
        task("arm64 alone, not asked", image="%s/%s:arm64" % (registry_open.host, unique_repo)),
    ]

    for check in (True, False):
        mark = registry_open.mark()
        run = playbook(tasks, check=check)

        config = json.loads(sk.inspect("%s:v1" % unique_repo, raw=True, config=True))
        assert (config["os"], config["architecture"]) == ("linux", "amd64")
        wrong = ok(run, "asked arm64")
        assert (wrong["exists"], wrong["missing"]) == (True, "platform")
        assert wrong["image"]["digest"] == sk.digest("%s:v1" % unique_repo) == image.digest
        assert (wrong["image"]["os"], wrong["image"]["architecture"]) == (config["os"], config["architecture"])
        assert wrong["warnings"] == [
            "%s is a single-platform linux/amd64 image, not linux/arm64 (platform): its details are those of"
            " linux/amd64" % reference
        ]
        for name in ("asked amd64", "not asked"):
            right = ok(run, name)
            assert (right["exists"], right["missing"], right.get("warnings", [])) == (True, None, []), name
            assert right["image"] == wrong["image"], name
        refused = failed(run, "files of arm64")
        assert "is a single linux/amd64 image, not linux/arm64; its files were not read" in refused["msg"]
        # without platform, a single image is whatever it is, even where an index would be described for linux/amd64
        alone = ok(run, "arm64 alone, not asked")
        assert (alone["exists"], alone["missing"], alone.get("warnings", [])) == (True, None, [])
        assert (alone["image"]["digest"], alone["image"]["architecture"]) == (arm64.digest, "arm64")
        assert sk.digest("%s:arm64" % unique_repo) == arm64.digest
        # the files of another platform were not read: no layer was downloaded (the configs, for the platforms, were)
        blobs = [e["path"].rsplit("/", 1)[1] for e in registry_open.requests_since(mark) if "/blobs/" in e["path"]]
        assert set(blobs) == {image.config_digests["linux/amd64"], arm64.config.digest}


def test_missing_says_whether_the_repository_the_tag_or_the_digest_is_missing(
    registry_token: RegistryServer,
    image_factory: Callable[..., Image],
    playbook: Playbook,
    skopeo: Callable[..., Skopeo],
    raw_client: Callable[..., RawClient],
    unique_repo_factory: Callable[[], str],
) -> None:
    server = registry_token
    repo, never = unique_repo_factory(), unique_repo_factory()
    image = image_factory(layers=1)
    raw_client(server).push_image(image, repo, ["v1"])
    base, absent = "%s/%s" % (server.host, repo), "%s/%s" % (server.host, never)
    unknown = "sha256:" + "0" * 64
    auth = creds(server)
    cases = {
        "image": ({"image": base + ":v1"}, True, None),
        "tag": ({"image": base + ":nope"}, False, "tag"),
        "digest": ({"image": "%s@%s" % (base, unknown)}, False, "digest"),
        "tag and unknown digest": ({"image": "%s:v1@%s" % (base, unknown)}, False, "digest"),
        "image in no repository": ({"image": absent + ":v1"}, False, "repository"),
        "digest in no repository": ({"image": "%s@%s" % (absent, image.digest)}, False, "repository"),
        "repository": ({"repository": base}, True, None),
        "no repository": ({"repository": absent}, False, "repository"),
    }
    tasks = [task(name, **args, **auth) for name, (args, _exists, _missing) in cases.items()]

    # the witness: skopeo finds the image, not the others, and no tag list of the missing repository
    sk = skopeo(server)
    assert sk.exists("%s:v1" % repo) and not sk.exists("%s:nope" % repo) and not sk.exists("%s@%s" % (repo, unknown))
    with pytest.raises(SkopeoError, match="fetching tags list: invalid status code from registry 404"):
        sk.list_tags(never)

    for check in (True, False):
        mark = server.mark()
        run = playbook(tasks, check=check)
        for name, (_args, exists, missing) in cases.items():
            result = ok(run, name)
            assert (result["exists"], result["missing"]) == (exists, missing), name
        # Only an image that is not there costs a tag list: one for each of the five, none for the one that is.
        sent = [e for e in server.requests_since(mark) if e["status"] != 401]
        tag_lists = [e["path"] for e in sent if e["path"].endswith("/tags/list")]
        assert sorted(tag_lists) == sorted(
            ["/v2/%s/tags/list" % repo] * 4 + ["/v2/%s/tags/list" % never] * 3
        ), tag_lists  # each missing image and each repository task: three and one in repo, two and one in never


def test_check_mode_reads_the_same_and_changes_nothing(
    registry_htpasswd: RegistryServer,
    image_factory: Callable[..., Image],
    playbook: Playbook,
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
) -> None:
    image = image_factory(labels={"k": "v"})
    sk = skopeo(registry_htpasswd)
    sk.copy(image.oci, "%s:v1" % unique_repo)
    base = "%s/%s" % (registry_htpasswd.host, unique_repo)
    auth = creds(registry_htpasswd)
    tasks = [
        task("image", image=base + ":v1", paths=["/data"], **auth),
        task("tags", repository=base, details=True, **auth),
        task("missing", image=base + "@sha256:" + "0" * 64, **auth),
    ]
    mark = registry_htpasswd.mark()

    checked = playbook(tasks, check=True)
    real = playbook(tasks)

    for name in ("image", "tags", "missing"):
        in_check, for_real = ok(checked, name), ok(real, name)
        assert {k: v for k, v in in_check.items() if k != "invocation"} == {
            k: v for k, v in for_real.items() if k != "invocation"
        }
    assert ok(checked, "image")["image"]["labels"] == {"k": "v"}
    assert ok(checked, "missing")["exists"] is False
    methods = {e["method"] for e in registry_htpasswd.requests_since(mark)}
    assert methods <= {"GET", "HEAD"}, methods
    assert sk.list_tags(unique_repo) == ["v1"]
    assert sk.digest("%s:v1" % unique_repo) == image.digest


# ----------------------------------------------------------------------------------------------------
# Bad input and unsupported registries


def test_bad_option_values_fail_clearly_and_name_the_value(registry_open: RegistryServer, playbook: Playbook) -> None:
    # The whole matrix of option checks is in tests/unit/plugins/modules/test_registry_info.py; these run the
    # module for real, one per kind of check (AnsibleModule's, ours, the reference parser's, the platform's).
    host = registry_open.host
    mark = registry_open.mark()
    cases = {
        "two targets": (
            {"registry": host, "repository": host + "/a"},
            ["mutually exclusive", "registry", "repository"],
        ),
        "no target": ({"details": True}, ["one of the following is required", "registry", "repository", "image"]),
        "wrong type": ({"repository": host + "/a", "concurrency": "many"}, ["concurrency", "many"]),
        "bad image": ({"image": host + "/Upper:tag"}, ["Upper", "lowercase"]),
        "bad platform": ({"image": host + "/a", "platform": "linux"}, ["'linux'", "os/architecture"]),
        "zero concurrency": ({"repository": host + "/a", "concurrency": 0}, ["concurrency", "from 1 to 64", "got 0"]),
        "paths without image": ({"repository": host + "/a", "paths": ["/etc"]}, ["paths", "with image", "repository"]),
    }

    run = playbook([task(name, ignore_errors=True, **args) for name, (args, _words) in cases.items()])

    for name, (_args, words) in cases.items():
        result = failed(run, name)
        assert result.get("changed") in (False, None), name
        for word in words:
            assert word in result["msg"], "%s: %r not in %r" % (name, word, result["msg"])
    assert registry_open.requests_since(mark) == []  # every case failed before talking to the registry


class _NoCatalogHandler(BaseHTTPRequestHandler):
    """A registry front that, like many hosted registries, answers the API but has no catalog."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        status = 200 if self.path == "/v2/" else 404
        body = b"{}" if status == 200 else b'{"errors":[{"code":"NOT_FOUND","message":"not found"}]}'
        self.send_response(status)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def registry_without_catalog() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoCatalogHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_registry_without_catalog_gets_a_clear_message(registry_without_catalog: str, playbook: Playbook) -> None:
    run = playbook([task("catalog", ignore_errors=True, registry=registry_without_catalog)])
    result = failed(run, "catalog")
    assert "Registry %s does not offer the catalog API" % registry_without_catalog in result["msg"]
    assert "repository" in result["msg"]
