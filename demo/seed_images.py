# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Push the demo's sample images into the dev repositories of a local registry (make demo runs this).

The images are small OCI layouts written in Python by the test suite's image factory (nothing is downloaded),
then copied into the registry with skopeo. A tag that exists already is left alone, so running the demo again
keeps the digests it promoted the first time (release tags are immutable; a new digest would be refused).
Images are dated relative to the first run, so the audit has fresh, ageing and stale images to report.

One image, dev/app:1.2.0, is signed as `cosign sign --key` (cosign 2) signs: a `sha256-<hex>.sig` image whose layer
is the simple-signing payload naming the image's digest, with an ECDSA P-256 signature, made with `cryptography` by
the test suite's cosign builders (there is no cosign binary here). The key pair is generated once, into
build/demo/cosign.key and cosign.pub; the playbook promotes that image only if its signature verifies with
cosign.pub.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "functional"))
# support.cosign builds on the collection's own code, found through the link demo/demo.sh makes.
sys.path.insert(0, str(ROOT / "build" / "collections"))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from support import cosign  # noqa: E402
from support.images import make_image  # noqa: E402

SOURCE = "https://git.example.com/demo/%s"
# The image the demo signs, and promotes through the signature gate.
SIGNED = ("dev/app", "1.2.0")
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


def labels(app: str, version: str) -> dict[str, str]:
    return {
        "org.opencontainers.image.title": app,
        "org.opencontainers.image.source": SOURCE % app,
        "org.opencontainers.image.revision": hashlib.sha1(f"{app} {version}".encode()).hexdigest(),  # noqa: S324
        "org.opencontainers.image.version": version,
    }


def sample_images(today: datetime.date) -> list[dict]:
    """repository, tags, and make_image arguments for every sample image."""

    def days_ago(days: int) -> str:
        return (today - datetime.timedelta(days=days)).strftime("%Y-%m-%dT12:00:00Z")

    images = [
        {"repo": "dev/app", "tags": ["1.0.0"], "created": days_ago(200), "labels": labels("app", "1.0.0")},
        {"repo": "dev/app", "tags": ["1.1.0"], "created": days_ago(120), "labels": labels("app", "1.1.0")},
        {"repo": "dev/app", "tags": ["1.2.0", "latest"], "created": days_ago(10), "labels": labels("app", "1.2.0")},
        {
            "repo": "dev/web",
            "tags": ["2.0.0", "latest"],
            "created": days_ago(20),
            "labels": labels("web", "2.0.0"),
            "platforms": ["linux/amd64", "linux/arm64"],
        },
        # An old image without labels or a latest tag: the audit has something to say about it.
        {"repo": "dev/legacy", "tags": ["0.9"], "created": days_ago(400), "labels": None, "layer_size": 64 * 1024},
    ]
    # CI builds: retention keeps the newest two of them.
    for number, age in zip(range(101, 107), (60, 45, 30, 14, 3, 1)):
        version = f"ci-{number}"
        created = days_ago(age)
        images.append({"repo": "dev/app", "tags": [version], "created": created, "labels": labels("app", version)})
    return images


def skopeo(*args: str) -> subprocess.CompletedProcess[bytes]:
    # --insecure-policy: the demo registry is local and the images are ours; no signature policy applies.
    return subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, check=False)  # noqa: S603,S607


def tag_exists(registry: str, repo: str, tag: str) -> bool:
    result = skopeo("inspect", "--raw", "--tls-verify=false", "--no-creds", f"docker://{registry}/{repo}:{tag}")
    return result.returncode == 0


def signing_key(key_dir: Path) -> cosign.SigningKey:
    """The demo's cosign key pair: cosign.key (PKCS#8 PEM, unencrypted, mode 0600) and cosign.pub, made once."""
    private_path, public_path = key_dir / "cosign.key", key_dir / "cosign.pub"
    if private_path.exists():
        private = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        key = cosign.SigningKey("ecdsa-p256", private)
    else:
        key = cosign.SigningKey("ecdsa-p256", ec.generate_private_key(ec.SECP256R1()))
        pem = key.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        private_path.touch(mode=0o600)
        private_path.write_bytes(pem)
        print(f"  generated the signing key {private_path} (ECDSA P-256)")
    public_path.write_text(key.public_pem)
    return key


def request(method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None):
    """One plain-HTTP request to the local demo registry; (status, headers), with a 404 as an answer."""
    call = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(call, timeout=30) as response:  # noqa: S310
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return 404, error.headers
        raise


def push_artifact(registry: str, repo: str, artifact: cosign.Artifact) -> None:
    """Blobs first (those missing), then the manifest under its tag, byte for byte."""
    base = f"http://{registry}/v2/{repo}"
    for blob in artifact.blobs:
        if request("HEAD", f"{base}/blobs/{blob.digest}")[0] == 200:
            continue
        _status, headers = request("POST", f"{base}/blobs/uploads/", data=b"")
        location = headers["Location"]
        location = location if location.startswith("http") else f"http://{registry}{location}"
        separator = "&" if "?" in location else "?"
        request(
            "PUT",
            f"{location}{separator}digest={blob.digest}",
            data=blob.data,
            headers={"Content-Type": "application/octet-stream"},
        )
    request(
        "PUT", f"{base}/manifests/{artifact.tag}", data=artifact.manifest, headers={"Content-Type": artifact.media_type}
    )


def manifest_digest(registry: str, repo: str, reference: str) -> str | None:
    status, headers = request(
        "HEAD", f"http://{registry}/v2/{repo}/manifests/{reference}", headers={"Accept": MANIFEST_TYPES}
    )
    return headers["Docker-Content-Digest"] if status == 200 else None


def sign(registry: str, key_dir: Path) -> None:
    """Sign dev/app:1.2.0 as cosign 2 does, unless it is signed with this key already."""
    fresh = not (key_dir / "cosign.key").exists()
    key = signing_key(key_dir)
    repo, tag = SIGNED
    digest = manifest_digest(registry, repo, tag)
    if digest is None:
        raise SystemExit(f"cannot sign {repo}:{tag}: the registry does not have it")
    signature_tag = cosign.cosign_tag(digest)
    if manifest_digest(registry, repo, signature_tag) and not fresh:
        print(f"Signature: {repo}:{tag} is signed already ({repo}:{signature_tag})")
        return
    layer = cosign.simple_signature(digest, key, docker_reference=f"{registry}/{repo}")
    push_artifact(registry, repo, cosign.signature_image(digest, [layer]))
    print(f"Signature: signed {repo}:{tag} ({digest[:19]}) with {key_dir / 'cosign.key'}: {repo}:{signature_tag}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True, help="host:port of the demo registry (plain HTTP)")
    parser.add_argument("--workdir", required=True, type=Path, help="where to write the OCI layouts")
    parser.add_argument("--key-dir", required=True, type=Path, help="where the signing key pair is (or goes)")
    options = parser.parse_args()

    options.workdir.mkdir(parents=True, exist_ok=True)
    state_file = options.workdir / "first-run.json"
    if state_file.exists():
        today = datetime.date.fromisoformat(json.loads(state_file.read_text())["date"])
    else:
        today = datetime.date.today()
        state_file.write_text(json.dumps({"date": today.isoformat()}))

    pushed = kept = 0
    for number, spec in enumerate(sample_images(today)):
        missing = [tag for tag in spec["tags"] if not tag_exists(options.registry, spec["repo"], tag)]
        kept += len(spec["tags"]) - len(missing)
        if not missing:
            continue
        image = make_image(
            options.workdir / "layouts",
            ref=f"image-{number}",
            platforms=spec.get("platforms"),
            layers=2,
            layer_size=spec.get("layer_size", 16 * 1024),
            labels=spec["labels"],
            created=spec["created"],
            seed=f"ocireg-demo/{spec['repo']}/{spec['tags'][0]}",
        )
        for tag in missing:
            result = skopeo(
                "copy",
                "--quiet",
                "--all",
                "--preserve-digests",
                "--dest-tls-verify=false",
                "--dest-no-creds",
                image.oci,
                f"docker://{options.registry}/{spec['repo']}:{tag}",
            )
            if result.returncode != 0:
                sys.stderr.write(result.stderr.decode(errors="replace"))
                return 1
            print(f"  pushed {spec['repo']}:{tag} ({image.digest[:19]}, built {spec['created'][:10]})")
            pushed += 1
    print(f"Sample images: {pushed} tag(s) pushed, {kept} already there.")
    sign(options.registry, options.key_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
