"""Plain `requests` access to a RegistryServer, for seeding and for checks skopeo can't make.

Independent of the code under test on purpose: auth is resolved from what the fixture knows (basic auth for
"htpasswd", a token minted directly by the TokenIssuer for "token", so seeding adds nothing to the issuer's
request log), not from challenges.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urljoin

import requests

from .images import Image, PlatformImage, iter_blob
from .registry import RegistryServer

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def sha256_digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


class RawClient:
    """Authenticated `requests` calls against SERVER as USERNAME (default: the server's user; "" = anonymous)."""

    def __init__(
        self, server: RegistryServer, username: str | None = None, password: str | None = None, timeout: float = 60
    ) -> None:
        self.server = server
        self.username = server.username if username is None else username
        self.password = server.password if password is None else password
        self.timeout = timeout
        self.session = server.session()
        self._tokens: dict[tuple[str, ...], str] = {}

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def auth_headers(self, scopes: Sequence[str]) -> dict[str, str]:
        if self.server.kind == "htpasswd" and self.username:
            return {"Authorization": requests.auth._basic_auth_str(self.username, self.password or "")}
        issuer = self.server.token_issuer
        if issuer is None:
            return {}
        key = tuple(sorted(scopes))
        if key not in self._tokens:
            self._tokens[key] = issuer.issue_token(self.username or None, key)[0]
        return {"Authorization": f"Bearer {self._tokens[key]}"}

    def request(self, method: str, path: str, *, scopes: Sequence[str] = (), **kwargs: Any) -> requests.Response:
        """METHOD SERVER_URL+PATH (or an absolute URL, e.g. an upload Location)."""
        headers = {**self.auth_headers(scopes), **kwargs.pop("headers", {})}
        url = urljoin(self.server.url, path)
        return self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)

    @staticmethod
    def _check(response: requests.Response, *expected: int) -> requests.Response:
        if response.status_code not in expected:
            raise RuntimeError(
                f"{response.request.method} {response.url} -> {response.status_code} (wanted {expected}): "
                f"{response.text[:500]}"
            )
        return response

    # -- blobs -----------------------------------------------------------------------------------------------

    def blob_exists(self, repo: str, digest: str) -> bool:
        response = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scopes=[f"repository:{repo}:pull"])
        return self._check(response, 200, 404).status_code == 200

    def upload_blob(self, repo: str, digest: str, data: bytes | Iterable[bytes]) -> None:
        """Two-step monolithic upload: POST, then PUT ?digest= with the whole body."""
        scopes = [f"repository:{repo}:pull,push"]
        started = self._check(self.request("POST", f"/v2/{repo}/blobs/uploads/", scopes=scopes), 202)
        location = started.headers["Location"]
        separator = "&" if "?" in location else "?"
        self._check(self.request("PUT", f"{location}{separator}digest={digest}", scopes=scopes, data=data), 201)

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Cross-repository mount; False (an upload was started instead) when the registry declines."""
        scopes = [f"repository:{repo}:pull,push", f"repository:{from_repo}:pull"]
        path = f"/v2/{repo}/blobs/uploads/?mount={digest}&from={from_repo}"
        return self._check(self.request("POST", path, scopes=scopes), 201, 202).status_code == 201

    # -- manifests -------------------------------------------------------------------------------------------

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> str:
        response = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            scopes=[f"repository:{repo}:pull,push"],
            data=data,
            headers={"Content-Type": media_type},
        )
        self._check(response, 201)
        return sha256_digest(data)

    def get_manifest(self, repo: str, reference: str) -> requests.Response:
        response = self.request(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            scopes=[f"repository:{repo}:pull"],
            headers={"Accept": MANIFEST_ACCEPT},
        )
        return self._check(response, 200, 404)

    def delete_manifest(self, repo: str, digest: str) -> None:
        response = self.request("DELETE", f"/v2/{repo}/manifests/{digest}", scopes=[f"repository:{repo}:delete"])
        self._check(response, 202)

    def tags(self, repo: str) -> list[str]:
        """Every tag, following Link pages."""
        tags: list[str] = []
        path: str | None = f"/v2/{repo}/tags/list?n=1000"
        while path:
            response = self._check(self.request("GET", path, scopes=[f"repository:{repo}:pull"]), 200)
            tags += response.json().get("tags") or []
            path = response.links.get("next", {}).get("url")
        return tags

    def catalog(self) -> list[str]:
        repositories: list[str] = []
        path: str | None = "/v2/_catalog"  # no n: distribution 2.8 answers 400 for n > catalog.maxentries
        while path:
            response = self._check(self.request("GET", path, scopes=["registry:catalog:*"]), 200)
            repositories += response.json().get("repositories") or []
            path = response.links.get("next", {}).get("url")
        return repositories

    # -- whole images ----------------------------------------------------------------------------------------

    def push_platform(self, image: Image, platform: PlatformImage, repo: str) -> None:
        for blob in [platform.config, *platform.layers]:
            if not self.blob_exists(repo, blob.digest):
                self.upload_blob(repo, blob.digest, iter_blob(image, blob.digest))
        self.put_manifest(repo, platform.digest, platform.manifest, platform.media_type)

    def push_image(self, image: Image, repo: str, tags: Sequence[str] = ()) -> str:
        """Push IMAGE (any media types, children before the index) to REPO under TAGS (default image.ref)."""
        if image.is_index:
            for platform in image.platforms.values():
                self.push_platform(image, platform, repo)
        else:
            self.push_platform(image, next(iter(image.platforms.values())), repo)
        for tag in tags or [image.ref]:
            self.put_manifest(repo, tag, image.manifest, image.media_type)
        return image.digest
