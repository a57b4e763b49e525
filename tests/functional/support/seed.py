"""Fill a registry with many repositories or tags in seconds (raw HTTP, blobs uploaded once, then mounted)."""

from __future__ import annotations

import json
import secrets
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .images import Image, make_image, read_blob
from .rawhttp import RawClient
from .registry import RegistryServer


@dataclass
class SeedResult:
    repos: list[str]
    tags: list[str]
    image: Image
    digests: dict[str, dict[str, str]] = field(default_factory=dict)  # repo -> tag -> manifest digest

    def digest(self, repo: str, tag: str) -> str:
        return self.digests[repo][tag]


def seed_many(
    server: RegistryServer,
    repos: int | Sequence[str] = 1,
    tags: int | Sequence[str] = ("latest",),
    *,
    prefix: str | None = None,
    distinct: bool = False,
    image: Image | None = None,
    jobs: int = 4,
) -> SeedResult:
    """Push one small image to every repo under every tag.

    repos/tags: a count (names `PREFIX/repo-000`..., `tag-000`...) or explicit names; PREFIX defaults to a
    random `seed-xxxxxx` so calls never collide. distinct=True gives every repo:tag its own manifest digest
    (an annotation differs; the blobs are shared), otherwise all tags of a repo point at one digest.
    The first repository gets the blobs uploaded, the others mount them from it, JOBS repositories at a time.
    The returned image's layout directory is gone unless IMAGE was given.
    """
    prefix = prefix or f"seed-{secrets.token_hex(3)}"
    repo_names = [f"{prefix}/repo-{i:03d}" for i in range(repos)] if isinstance(repos, int) else list(repos)
    tag_names = [f"tag-{i:03d}" for i in range(tags)] if isinstance(tags, int) else list(tags)
    with tempfile.TemporaryDirectory(prefix="ocireg-seed-") as layout_dir:
        image = image or make_image(layout_dir, layers=1, layer_size=256, seed=prefix)
        if image.is_index:
            raise ValueError("seed_many pushes single-platform images only")
        platform = next(iter(image.platforms.values()))
        blobs = {blob.digest: read_blob(image, blob.digest) for blob in [platform.config, *platform.layers]}
        result = SeedResult(repos=repo_names, tags=tag_names, image=image)
        clients: dict[int, RawClient] = {}

        def client() -> RawClient:
            # one session per worker thread: requests sessions are not meant to be shared across threads
            ident = threading.get_ident()
            if ident not in clients:
                clients[ident] = RawClient(server)
            return clients[ident]

        def fill(repo: str, mount_from: str | None) -> dict[str, str]:
            for digest, data in blobs.items():
                if mount_from is None or not client().mount_blob(repo, digest, mount_from):
                    client().upload_blob(repo, digest, data)
            return {
                tag: client().put_manifest(repo, tag, _manifest_for(image, repo, tag, distinct), image.media_type)
                for tag in tag_names
            }

        try:
            if repo_names:
                result.digests[repo_names[0]] = fill(repo_names[0], None)
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                filled = pool.map(lambda repo: fill(repo, repo_names[0]), repo_names[1:])
                result.digests.update(zip(repo_names[1:], filled))
        finally:
            for each in clients.values():
                each.close()
    return result


def _manifest_for(image: Image, repo: str, tag: str, distinct: bool) -> bytes:
    if not distinct:
        return image.manifest
    document = json.loads(image.manifest)
    document["annotations"] = {"org.ocireg.test.seed": f"{repo}:{tag}"}
    return json.dumps(document, separators=(",", ":")).encode()
