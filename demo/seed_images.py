# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Push the demo's sample images into the dev repositories of a local registry (make demo runs this).

The images are small OCI layouts written in Python by the test suite's image factory (nothing is downloaded),
then copied into the registry with skopeo. A tag that exists already is left alone, so running the demo again
keeps the digests it promoted the first time (release tags are immutable; a new digest would be refused).
Images are dated relative to the first run, so the audit has fresh, ageing and stale images to report.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "functional"))

from support.images import make_image  # noqa: E402

SOURCE = "https://git.example.com/demo/%s"


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True, help="host:port of the demo registry (plain HTTP)")
    parser.add_argument("--workdir", required=True, type=Path, help="where to write the OCI layouts")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
