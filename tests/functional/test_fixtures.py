"""Smoke tests of the functional-test fixtures themselves, with skopeo and plain requests as clients."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from support.faultproxy import FaultProxy
from support.images import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Image, Symlink, make_image, read_blob
from support.pki import CertificateAuthority
from support.rawhttp import RawClient
from support.registry import RegistryServer, parse_access_line
from support.seed import seed_many
from support.skopeo import Skopeo, SkopeoError
from support.tokenissuer import TokenIssuer

PLATFORMS = ["linux/amd64", "linux/arm64", "linux/arm/v7"]


def test_each_setup_serves_single_and_multi_platform_images(
    any_registry: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
) -> None:
    single = image_factory(ref="single")
    multi = image_factory(ref="multi", platforms=PLATFORMS)
    sk = skopeo(any_registry)

    sk.copy(single.oci, f"{unique_repo}:single")
    sk.copy(multi.oci, f"{unique_repo}:multi", all=True)

    assert sk.digest(f"{unique_repo}:single") == single.digest
    assert sk.digest(f"{unique_repo}:multi") == multi.digest
    assert json.loads(sk.manifest(f"{unique_repo}:multi"))["mediaType"] == OCI_INDEX
    for platform, digest in multi.manifests.items():
        assert sk.digest(f"{unique_repo}@{digest}") == digest, platform
    assert sorted(sk.list_tags(unique_repo)) == ["multi", "single"]
    config = json.loads(sk.inspect(f"{unique_repo}@{multi.manifests['linux/arm/v7']}", raw=True, config=True))
    assert (config["os"], config["architecture"], config["variant"]) == ("linux", "arm", "v7")


def test_tls_registries_need_the_fixture_ca(
    registry_tls: RegistryServer, skopeo: Callable[..., Skopeo], tmp_path: Path
) -> None:
    assert registry_tls.url.startswith("https://")
    with pytest.raises(SkopeoError, match="certificate"):
        skopeo(registry_tls, cert_dir=tmp_path).list_tags("t/anything")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{registry_tls.url}/v2/", timeout=10)
    assert requests.get(f"{registry_tls.url}/v2/", verify=str(registry_tls.ca_cert), timeout=10).status_code == 200


def test_mtls_refuses_clients_without_a_certificate(
    registry_mtls: RegistryServer, skopeo: Callable[..., Skopeo], tmp_path: Path
) -> None:
    assert registry_mtls.cert_dir is not None
    assert {p.name for p in registry_mtls.cert_dir.iterdir()} == {"ca.crt", "client.cert", "client.key"}
    ca_only = tmp_path / "ca-only"
    ca_only.mkdir()
    (ca_only / "ca.crt").write_bytes((registry_mtls.cert_dir / "ca.crt").read_bytes())
    with pytest.raises(SkopeoError):
        skopeo(registry_mtls, cert_dir=ca_only).list_tags("t/anything")
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(f"{registry_mtls.url}/v2/", verify=str(registry_mtls.ca_cert), timeout=10)
    assert requests.get(f"{registry_mtls.url}/v2/", timeout=10, **registry_mtls.requests_kwargs()).status_code == 200


@pytest.mark.parametrize("kind", ["htpasswd", "token"])
def test_wrong_credentials_are_refused(
    kind: str,
    request: pytest.FixtureRequest,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
) -> None:
    server: RegistryServer = request.getfixturevalue(f"registry_{kind}")
    assert server.username == "alice" and server.password and len(server.users) >= 2
    image = image_factory()
    with pytest.raises(SkopeoError, match="(?i)unauthorized|authentication|username or password"):
        skopeo(server, username="alice", password="wrong").copy(image.oci, f"{unique_repo}:v1")
    with pytest.raises(SkopeoError):
        skopeo(server).anonymous().copy(image.oci, f"{unique_repo}:v1")
    skopeo(server).copy(image.oci, f"{unique_repo}:v1")
    second_user = next(user for user in server.users if user != "alice" and user != "reader")
    assert skopeo(server, username=second_user, password=server.users[second_user]).list_tags(unique_repo) == ["v1"]
    response = requests.get(f"{server.url}/v2/", timeout=10)
    assert response.status_code == 401
    expected_scheme = "Basic" if kind == "htpasswd" else "Bearer"
    assert response.headers["WWW-Authenticate"].startswith(expected_scheme)


def test_token_issuer_logs_scopes_and_enforces_permissions(
    registry_token: RegistryServer,
    token_issuer: TokenIssuer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
) -> None:
    image = image_factory()
    mark = token_issuer.mark()
    skopeo(registry_token).copy(image.oci, f"{unique_repo}:v1")
    pushes = token_issuer.requests_since(mark)
    assert f"repository:{unique_repo}:pull,push" in token_issuer.scopes_since(mark)
    assert all(r.user == "alice" and r.auth_sent and r.status == 200 for r in pushes)

    mark = token_issuer.mark()
    assert skopeo(registry_token).anonymous().list_tags(unique_repo) == ["v1"]  # anonymous pull is allowed
    anonymous = token_issuer.requests_since(mark)
    assert anonymous and all(r.user is None and not r.auth_sent for r in anonymous)
    assert anonymous[0].granted == [{"type": "repository", "name": unique_repo, "actions": ["pull"]}]

    reader = skopeo(registry_token, username="reader", password=token_issuer.users["reader"])
    assert reader.list_tags(unique_repo) == ["v1"]
    with pytest.raises(SkopeoError, match="denied|unauthorized"):
        reader.copy(image.oci, f"{unique_repo}:v2")


def test_token_registry_really_verifies_tokens(
    registry_token: RegistryServer, token_issuer: TokenIssuer, raw_client: Callable[..., RawClient], tmp_path: Path
) -> None:
    seeded = seed_many(registry_token, 1, ["v1"])
    repo = seeded.repos[0]
    url = f"{registry_token.url}/v2/{repo}/tags/list"
    assert requests.get(url, timeout=10).status_code == 401

    token, _unused = token_issuer.issue_token("alice", [f"repository:{repo}:pull"])
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).json()["tags"] == ["v1"]

    rogue = TokenIssuer(CertificateAuthority(tmp_path / "rogue-ca"), {"alice": "x"})
    forged, _unused = rogue.issue_token("alice", [f"repository:{repo}:pull"])
    assert requests.get(url, headers={"Authorization": f"Bearer {forged}"}, timeout=10).status_code == 401

    # distribution 2.8 wants the `delete` action for DELETE; pull,push is not enough.
    push_token, _unused = token_issuer.issue_token("alice", [f"repository:{repo}:pull,push"])
    manifest_url = f"{registry_token.url}/v2/{repo}/manifests/{seeded.digest(repo, 'v1')}"
    refused = requests.delete(manifest_url, headers={"Authorization": f"Bearer {push_token}"}, timeout=10)
    assert refused.status_code == 401 and f'scope="repository:{repo}:delete"' in refused.headers["WWW-Authenticate"]
    raw_client(registry_token).delete_manifest(repo, seeded.digest(repo, "v1"))


def test_token_issuer_oauth2_post_and_refresh_tokens(registry_token: RegistryServer, token_issuer: TokenIssuer) -> None:
    repo = seed_many(registry_token, 1, ["v1"]).repos[0]
    form = {
        "grant_type": "password",
        "username": "alice",
        "password": token_issuer.users["alice"],
        "service": token_issuer.service,
        "scope": f"repository:{repo}:pull registry:catalog:*",
        "client_id": "ocireg-tests",
        "access_type": "offline",
    }
    first = requests.post(token_issuer.realm, data=form, timeout=10).json()
    assert first["access_token"] == first["token"] and first["expires_in"] > 0 and first["issued_at"]
    refresh = {key: form[key] for key in ("service", "scope", "client_id")}
    refresh.update(grant_type="refresh_token", refresh_token=first["refresh_token"])
    second = requests.post(token_issuer.realm, data=refresh, timeout=10).json()
    catalog = requests.get(
        f"{registry_token.url}/v2/_catalog?n=1000",
        headers={"Authorization": f"Bearer {second['access_token']}"},
        timeout=10,
    )
    assert repo in catalog.json()["repositories"]
    assert token_issuer.requests[-1].user == "alice" and token_issuer.requests[-1].grant_type == "refresh_token"
    form["password"] = "wrong"
    assert requests.post(token_issuer.realm, data=form, timeout=10).status_code == 401
    assert requests.get(token_issuer.realm, auth=("alice", "wrong"), timeout=10).status_code == 401


def test_kid_header_tokens_work_too(
    registry_factory: Callable[..., RegistryServer], skopeo: Callable[..., Skopeo]
) -> None:
    server = registry_factory("token", key_id_mode="kid", anonymous_actions=())
    seed_many(server, ["t/kid"], ["v1"])
    assert skopeo(server).list_tags("t/kid") == ["v1"]
    with pytest.raises(SkopeoError):
        skopeo(server).anonymous().list_tags("t/kid")


def test_seed_many_fills_120_tags_and_120_repositories(
    registry_open: RegistryServer, skopeo: Callable[..., Skopeo], raw_client: Callable[..., RawClient]
) -> None:
    tags = seed_many(registry_open, 1, 120, distinct=True)
    assert sorted(skopeo(registry_open).list_tags(tags.repos[0])) == tags.tags
    assert len(set(tags.digests[tags.repos[0]].values())) == 120
    assert skopeo(registry_open).digest(f"{tags.repos[0]}:tag-042") == tags.digest(tags.repos[0], "tag-042")

    repos = seed_many(registry_open, 120, ["latest"])
    first_page = requests.get(f"{registry_open.url}/v2/_catalog", timeout=10)
    assert len(first_page.json()["repositories"]) == 100 and 'rel="next"' in first_page.headers["Link"]
    assert set(repos.repos) <= set(raw_client(registry_open).catalog())


def test_catalog_maxentries_and_restart_keep_storage(
    registry_factory: Callable[..., RegistryServer], image_factory: Callable[..., Image], skopeo: Callable[..., Skopeo]
) -> None:
    server = registry_factory("htpasswd", catalog_maxentries=2)
    seed_many(server, ["a/one", "a/two", "a/three"], ["v1"])
    response = requests.get(f"{server.url}/v2/_catalog", auth=(server.username, server.password), timeout=10)
    assert response.json()["repositories"] == ["a/one", "a/three"]
    port, storage = server.port, server.storage
    server.restart()
    assert (server.port, server.storage) == (port, storage)
    assert skopeo(server).list_tags("a/two") == ["v1"]


def test_access_log_counts_requests(registry_open: RegistryServer, unique_repo: str) -> None:
    mark = registry_open.mark()
    assert requests.head(f"{registry_open.url}/v2/{unique_repo}/manifests/nope", timeout=10).status_code == 404
    requests.get(f"{registry_open.url}/v2/_catalog?n=5", timeout=10)
    entries = registry_open.requests_since(mark)
    assert [(e["method"], e["path"], e["query"], e["status"]) for e in entries] == [
        ("HEAD", f"/v2/{unique_repo}/manifests/nope", "", 404),
        ("GET", "/v2/_catalog", "n=5", 200),
    ]
    assert registry_open.requests_since(registry_open.mark()) == []


def test_parse_access_line() -> None:
    line = '127.0.0.1 - - [26/Nov/2026:14:49:00 +0000] "GET /v2/_catalog?n=5 HTTP/1.1" 200 20 "" "curl/7.88.1"'
    assert parse_access_line(line) == {
        "method": "GET",
        "path": "/v2/_catalog",
        "query": "n=5",
        "params": {"n": ["5"]},
        "status": 200,
        "size": 20,
        "user_agent": "curl/7.88.1",
        "remote": "127.0.0.1",
        "time": "26/Nov/2026:14:49:00 +0000",
        "raw": line,
    }
    assert parse_access_line('time="..." level=info msg="listening"') is None


def test_fault_proxy_injects_and_passes_through(
    registry_token: RegistryServer,
    fault_proxy: Callable[..., FaultProxy],
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
) -> None:
    image = image_factory(layers=1, layer_size=200_000)
    proxy = fault_proxy(registry_token)
    skopeo(proxy.server).copy(image.oci, f"{unique_repo}:v1")  # uploads, token challenges and all
    assert skopeo(proxy.server).digest(f"{unique_repo}:v1") == image.digest

    token, _unused = registry_token.token_issuer.issue_token("alice", [f"repository:{unique_repo}:pull"])
    layer = image.platforms["linux/amd64"].layers[0]
    blob_url = f"{proxy.url}/v2/{unique_repo}/blobs/{layer.digest}"
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    proxy.inject(["503", "truncate"], method="GET", path="/blobs/")
    mark = proxy.mark()

    unavailable = session.get(blob_url, timeout=10)
    assert (unavailable.status_code, unavailable.headers["Retry-After"]) == (503, "0")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        session.get(blob_url, timeout=10).content  # noqa: B018 - read the whole body
    passed = session.get(blob_url, timeout=10)
    assert passed.status_code == 200 and passed.content == read_blob(image, layer.digest)
    assert [r.fault for r in proxy.requests_since(mark)] == ["503", "truncate", "pass"]
    assert proxy.requests_since(mark)[0].upstream_status is None  # the registry never saw the 503'd request
    assert proxy.requests_since(mark)[0].headers["Authorization"] == f"Bearer {token}"

    challenge = requests.get(f"{proxy.url}/v2/", timeout=10)
    assert challenge.headers["WWW-Authenticate"].startswith(f'Bearer realm="{registry_token.token_issuer.realm}"')
    upload = session.post(f"{proxy.url}/v2/{unique_repo}/blobs/uploads/", timeout=10)
    assert upload.status_code == 401  # pull-only token
    push_token, _unused = registry_token.token_issuer.issue_token("alice", [f"repository:{unique_repo}:pull,push"])
    upload = requests.post(
        f"{proxy.url}/v2/{unique_repo}/blobs/uploads/", headers={"Authorization": f"Bearer {push_token}"}, timeout=10
    )
    assert upload.status_code == 202 and upload.headers["Location"].startswith(f"{proxy.url}/v2/{unique_repo}/")


def test_fault_proxy_drop_and_rate_limit(
    registry_open: RegistryServer, fault_proxy: Callable[..., FaultProxy], unique_repo: str
) -> None:
    proxy = fault_proxy(registry_open, schedule=["429", "drop", "502"])
    session = requests.Session()
    limited = session.get(f"{proxy.url}/v2/", timeout=10)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"{proxy.url}/v2/", timeout=10)
    assert session.get(f"{proxy.url}/v2/", timeout=10).status_code == 502
    assert session.get(f"{proxy.url}/v2/", timeout=10).status_code == 200
    assert proxy.faults_applied() == ["429", "drop", "502"]


def test_image_factory_is_deterministic_and_writes_what_it_says(tmp_path: Path) -> None:
    first = make_image(tmp_path / "a", platforms=PLATFORMS, seed=1, labels={"team": "qa"})
    again = make_image(tmp_path / "b", platforms=PLATFORMS, seed=1, labels={"team": "qa"})
    other = make_image(tmp_path / "c", platforms=PLATFORMS, seed=2, labels={"team": "qa"})
    assert first.digest == again.digest and first.digest != other.digest
    assert json.loads(first.manifest)["mediaType"] == OCI_INDEX and len(first.manifests) == 3

    files = {"etc/motd": b"hello\n", "bin/sh": Symlink("busybox"), "etc/old": None}
    image = make_image(tmp_path / "a", ref="files", layers=1, files=files, labels={"a": "b"})
    index = json.loads((tmp_path / "a" / "index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == ["latest", "files"]
    platform = image.platforms["linux/amd64"]
    config = json.loads(platform.config_bytes)
    assert config["config"]["Labels"] == {"a": "b"} and len(config["rootfs"]["diff_ids"]) == 2
    assert json.loads(image.manifest)["mediaType"] == OCI_MANIFEST
    top_layer = read_blob(image, platform.layers[-1].digest)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(top_layer))) as tar:
        names = tar.getnames()
        assert tar.extractfile("etc/motd").read() == b"hello\n"  # type: ignore[union-attr]
    assert names == ["etc", "etc/motd", "bin", "bin/sh", "etc/.wh.old"]


def test_docker_media_type_images_push_raw(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    raw_client: Callable[..., RawClient],
    unique_repo: str,
) -> None:
    image = image_factory(platforms=["linux/amd64", "linux/arm64"], media_types="docker")
    raw_client(registry_open).push_image(image, unique_repo, ["v1"])
    served = json.loads(skopeo(registry_open).manifest(f"{unique_repo}:v1"))
    assert served["mediaType"] == DOCKER_LIST
    assert skopeo(registry_open).digest(f"{unique_repo}:v1") == image.digest
    child = json.loads(skopeo(registry_open).manifest(f"{unique_repo}@{image.manifests['linux/arm64']}"))
    assert child["mediaType"] == DOCKER_MANIFEST
