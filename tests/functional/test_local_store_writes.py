"""Hundreds of copies into local stores at the widest parallelism: every result readable, every digest the one written.

The race this guards against: the copy engine wrote the child manifests of an index from several threads, and an
oci-archive is one tar written front to back, so two members could interleave (two headers, then both bodies) and
every member after them, index.json included, was unreadable: about one write in 300. The rule now: the engine makes
every write one at a time unless the destination says it takes that kind in parallel (``parallel_writes``).

Each copy calls the engine's ``transfer()`` in-process (milliseconds, not an ansible-playbook run), with ``jobs`` at the
module's maximum and a short thread switch interval, so threads interleave as often as they can. Sources are random
multi-platform images (a new seed each run) with many children. Every result is read back member by member with Python's
tarfile (file by file for a layout directory, modes included), every blob hashed against its name; and by skopeo, the
independent witness, which has to see the digest that was written (and, for a sample, copy every blob out, verified).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import stat
import sys
import tarfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.images import Image, PlatformImage
from support.registry import RegistryServer
from support.skopeo import Skopeo, SkopeoError

from ansible_collections.ocireg.registry.plugins.module_utils._image.copy import transfer
from ansible_collections.ocireg.registry.plugins.module_utils._image.interfaces import CopyResult
from ansible_collections.ocireg.registry.plugins.module_utils._image.stores import open_destination, open_source
from ansible_collections.ocireg.registry.plugins.module_utils._oci.location import parse_location
from ansible_collections.ocireg.registry.plugins.modules.registry_image import MAX_JOBS

REF = "v1"
SOURCE_IMAGES = 8
CHILDREN = (12, 24)  # children per source index, chosen at random in this range
# At the rate the race was reported (one write in 300), all of 320 writes pass by chance a third of the time; with
# many children, jobs=64 and eager thread switches the old engine corrupted about one archive in three.
OCI_ARCHIVE_WRITES = 320
DOCKER_ARCHIVE_WRITES = 100
LAYOUT_DIRS, REFS_PER_LAYOUT_DIR = 10, 10  # 100 writes, each layout directory's index.json updated 10 times
# Python switches threads every 5 ms by default; far more often here, so that writers interleave wherever they can.
SWITCH_INTERVAL_SECONDS = 1e-5
SKOPEO_WORKERS = 4  # skopeo runs are short and mostly wait on the disk: a few at a time on a 2-core machine
DEEP_COPY_EVERY = 40  # skopeo inspects every result, and copies out (reading every blob) one in this many
SHOWN_PROBLEMS = 3  # of each reader's


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def platform_names(count: int) -> list[str]:
    # Every child a platform of its own; only the first is a real one (the one a docker archive gets).
    return ["linux/amd64"] + [f"linux/arch{number}" for number in range(1, count)]


@pytest.fixture
def sources(image_factory: Callable[..., Image]) -> list[Image]:
    """Random multi-platform images, each an index of many children (a config and a small layer each)."""
    run_seed = secrets.token_hex(8)
    print(f"source seed: {run_seed}")  # shown when the test fails, to write the same images again
    chooser = random.Random(run_seed)
    return [
        image_factory(
            ref=REF,
            platforms=platform_names(chooser.randint(*CHILDREN)),
            layers=1,
            layer_size=chooser.randint(64, 4096),
            seed=f"{run_seed}/{number}",
            compresslevel=1,
        )
        for number in range(SOURCE_IMAGES)
    ]


@pytest.fixture
def eager_thread_switches() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@pytest.fixture
def witness(skopeo: Callable[..., Skopeo], registry_open: RegistryServer) -> Skopeo:
    # Every reference read here is a local file: the witness is bound to a registry only because it wraps one.
    return skopeo(registry_open)


def copy_with_widest_parallelism(src: str, dest: str, platforms: list[str] | None = None) -> CopyResult:
    source = open_source(parse_location(src), None)  # local stores need no registry clients
    destination = open_destination(parse_location(dest, "dest"), None)
    try:
        return transfer(source, destination, platforms=platforms, jobs=MAX_JOBS)
    finally:
        source.close()
        destination.close()


def all_written_digests(image: Image) -> set[str]:
    """Every blob an OCI store of IMAGE holds: the index, each child manifest, each config and layer."""
    return {image.digest} | set(image.manifests.values()) | image.blob_digests()


def read_every_member(path: Path) -> dict[str, bytes]:
    """Each regular file of the tar at PATH, read in full with Python's tarfile; raises on any unreadable member."""
    files: dict[str, bytes] = {}
    with tarfile.open(path, "r:") as archive:
        for member in archive:
            if member.isdir():
                continue
            if not member.isfile():
                raise ValueError(f"member {member.name!r} is neither a file nor a directory (type {member.type!r})")
            if member.name in files:
                raise ValueError(f"member {member.name!r} is in the archive twice")
            handle = archive.extractfile(member)
            data = handle.read() if handle is not None else b""
            if len(data) != member.size:
                raise ValueError(f"member {member.name!r} has {len(data)} of its {member.size} bytes")
            files[member.name] = data
    return files


def misnamed_blobs(files: dict[str, bytes]) -> list[str]:
    """Names of blobs/sha256/HEX files whose bytes do not hash to HEX."""
    return [
        name
        for name, data in files.items()
        if name.startswith("blobs/") and sha256(data) != "sha256:" + name.rsplit("/", 1)[1]
    ]


def index_names(index_bytes: bytes) -> dict[str, str]:
    """ref name -> digest, from an OCI layout's index.json."""
    return {
        entry["annotations"]["org.opencontainers.image.ref.name"]: entry["digest"]
        for entry in json.loads(index_bytes)["manifests"]
    }


def check_oci_archive(path: Path, image: Image) -> str | None:
    try:
        files = read_every_member(path)
    except (tarfile.TarError, ValueError, EOFError, OSError) as err:
        return f"unreadable with tarfile: {err}"
    if "index.json" not in files or "oci-layout" not in files:
        return f"no index.json or oci-layout among {len(files)} readable members"
    if index_names(files["index.json"]) != {REF: image.digest}:
        return f"index.json names {index_names(files['index.json'])}, not {REF} -> {image.digest}"
    held = {"sha256:" + name.rsplit("/", 1)[1] for name in files if name.startswith("blobs/")}
    if held != all_written_digests(image):
        return f"holds {len(held)} blobs, {len(all_written_digests(image))} written"
    wrong = misnamed_blobs(files)
    return f"blobs whose bytes are not their digest: {wrong}" if wrong else None


def check_docker_archive(path: Path, child: PlatformImage) -> str | None:
    try:
        files = read_every_member(path)
    except (tarfile.TarError, ValueError, EOFError, OSError) as err:
        return f"unreadable with tarfile: {err}"
    if "manifest.json" not in files:
        return f"no manifest.json among {len(files)} readable members"
    (entry,) = json.loads(files["manifest.json"])
    if sha256(files.get(entry["Config"], b"")) != child.config.digest:
        return f"the config {entry['Config']} is not {child.config.digest}"
    expected = [f"{layer.diff_id.split(':', 1)[1]}.tar" for layer in child.layers]
    if entry["Layers"] != expected or any(sha256(files.get(name, b"")) != "sha256:" + name[:-4] for name in expected):
        return f"layers {entry['Layers']} are not the uncompressed layers {expected}"
    return None


def check_layout_dir(path: Path, written: dict[str, Image], umask: int) -> dict[str, str]:
    """What is wrong in the layout directory PATH, by file, after WRITTEN (ref -> image) were copied into it."""
    problems: dict[str, str] = {}
    names = index_names((path / "index.json").read_bytes())
    expected = {ref: image.digest for ref, image in written.items()}
    if names != expected:
        problems[f"{path.name}/index.json"] = f"names {len(names)} images, not the {len(expected)} written"
    files: dict[str, bytes] = {}
    for file in path.rglob("*"):
        where = f"{path.name}/{file.relative_to(path).as_posix()}"
        if file.name.startswith(".tmp-"):
            problems[where] = "a temporary file left behind"
        mode = stat.S_IMODE(file.stat().st_mode)
        wanted = (0o777 if file.is_dir() else 0o666) & ~umask
        if mode != wanted:
            problems[where] = f"mode {mode:o}, not {wanted:o} (what the umask gives a new file)"
        if file.is_file():
            files[file.relative_to(path).as_posix()] = file.read_bytes()
    wanted_blobs = set().union(*(all_written_digests(image) for image in written.values()))
    held = {"sha256:" + name.rsplit("/", 1)[1] for name in files if name.startswith("blobs/")}
    if held != wanted_blobs:
        problems[f"{path.name}/blobs"] = f"holds {len(held)} blobs, {len(wanted_blobs)} written"
    problems.update((f"{path.name}/{name}", "its bytes are not its digest") for name in misnamed_blobs(files))
    return problems


def each_with_skopeo(check: Callable[[str], str | None], references: list[str]) -> dict[str, str]:
    """``check(reference)`` for each reference, SKOPEO_WORKERS at a time: reference -> what was wrong."""
    with ThreadPoolExecutor(max_workers=SKOPEO_WORKERS) as pool:
        return {reference: problem for reference, problem in zip(references, pool.map(check, references)) if problem}


def skopeo_digest(read: Callable[[str], bytes], expected: dict[str, str]) -> Callable[[str], str | None]:
    """A check that the bytes ``read(reference)`` returns hash to ``expected[reference]``."""

    def check(reference: str) -> str | None:
        try:
            seen = sha256(read(reference))
        except SkopeoError as err:
            return f"skopeo cannot read it: {str(err).splitlines()[-1]}"
        return None if seen == expected[reference] else f"skopeo reads {seen}, not {expected[reference]}"

    return check


def skopeo_copy_holds(witness: Skopeo, images: dict[str, Image], scratch: Path) -> Callable[[str], str | None]:
    """A check that ``skopeo copy --all --preserve-digests`` of a reference (every manifest and blob read, and
    verified, by skopeo) gives a layout of exactly the digests written for ``images[reference]``."""
    scratch.mkdir(exist_ok=True)

    def check(reference: str) -> str | None:
        out = scratch / hashlib.sha256(reference.encode()).hexdigest()[:16]
        try:
            witness.copy(reference, f"oci:{out}:{REF}")
        except SkopeoError as err:
            return f"skopeo cannot copy it: {str(err).splitlines()[-1]}"
        copied = {f"sha256:{blob.name}" for blob in (out / "blobs" / "sha256").iterdir()}
        wanted = all_written_digests(images[reference])
        return (
            None if copied == wanted else f"skopeo copies {len(copied)} blobs out of it, not the {len(wanted)} written"
        )

    return check


def assert_whole(writes: int, what: str, **problems_by_reader: dict[str, str]) -> None:
    """No reader found a problem; else say how many of the writes each reader found wrong, and the first few."""
    if not any(problems_by_reader.values()):
        return
    counts = ", ".join(f"{reader}: {len(problems)}" for reader, problems in problems_by_reader.items())
    shown = [
        f"{reader}: {where}: {problem}"
        for reader, problems in problems_by_reader.items()
        for where, problem in list(problems.items())[:SHOWN_PROBLEMS]
    ]
    pytest.fail(f"Of {writes} writes to {what}, wrong as each reader sees them ({counts}):\n" + "\n".join(shown))


def deep_sample(references: list[str]) -> list[str]:
    return references[::DEEP_COPY_EVERY]


@pytest.mark.usefixtures("eager_thread_switches")
def test_oci_archives_written_with_many_jobs_are_whole(sources: list[Image], witness: Skopeo, tmp_path: Path) -> None:
    written: dict[Path, Image] = {}
    for number in range(OCI_ARCHIVE_WRITES):
        image = sources[number % len(sources)]
        path = tmp_path / f"image-{number}.tar"
        result = copy_with_widest_parallelism(image.oci, f"oci-archive:{path}:{REF}")
        assert result.changed and result.digest == image.digest
        written[path] = image

    tarfile_finds = {
        path.name: problem for path, image in written.items() if (problem := check_oci_archive(path, image))
    }
    images = {f"oci-archive:{path}:{REF}": image for path, image in written.items()}
    expected = {reference: image.digest for reference, image in images.items()}
    skopeo_finds = each_with_skopeo(skopeo_digest(witness.manifest, expected), list(images))
    skopeo_copy_finds = each_with_skopeo(
        skopeo_copy_holds(witness, images, tmp_path / "copies"), deep_sample(list(images))
    )
    assert_whole(
        len(written), "oci-archive", tarfile=tarfile_finds, skopeo_inspect=skopeo_finds, skopeo_copy=skopeo_copy_finds
    )


@pytest.mark.usefixtures("eager_thread_switches")
def test_docker_archives_written_with_many_jobs_are_whole(
    sources: list[Image], witness: Skopeo, tmp_path: Path
) -> None:
    written: dict[Path, PlatformImage] = {}
    for number in range(DOCKER_ARCHIVE_WRITES):
        image = sources[number % len(sources)]
        child = image.platforms["linux/amd64"]  # a docker archive holds one image: one platform of the index
        path = tmp_path / f"image-{number}.tar"
        result = copy_with_widest_parallelism(
            image.oci, f"docker-archive:{path}:ocireg.test/race:{REF}", ["linux/amd64"]
        )
        assert result.changed and result.digest == child.config.digest  # a docker archive's digest: its config's
        written[path] = child

    tarfile_finds = {
        path.name: problem for path, child in written.items() if (problem := check_docker_archive(path, child))
    }
    expected = {f"docker-archive:{path}": child.config.digest for path, child in written.items()}
    skopeo_finds = each_with_skopeo(
        skopeo_digest(lambda reference: witness.inspect(reference, raw=True, config=True), expected), list(expected)
    )
    assert_whole(len(written), "docker-archive", tarfile=tarfile_finds, skopeo_inspect=skopeo_finds)


@pytest.mark.usefixtures("eager_thread_switches")
def test_oci_layout_dirs_written_with_many_jobs_are_whole(
    sources: list[Image], witness: Skopeo, tmp_path: Path
) -> None:
    umask = os.umask(0o022)
    os.umask(umask)  # read before any thread runs; the engine must leave it as it was
    written: dict[Path, dict[str, Image]] = {}
    for number in range(LAYOUT_DIRS * REFS_PER_LAYOUT_DIR):
        image = sources[number % len(sources)]
        path = tmp_path / f"layout-{number % LAYOUT_DIRS}"
        ref = f"{REF}-{number // LAYOUT_DIRS}"
        result = copy_with_widest_parallelism(image.oci, f"oci:{path}:{ref}")
        assert result.digest == image.digest
        written.setdefault(path, {})[ref] = image
    umask_after = os.umask(umask)

    file_finds = {
        where: problem
        for path, refs in written.items()
        for where, problem in check_layout_dir(path, refs, umask).items()
    }
    if umask_after != umask:
        file_finds["the process"] = f"its umask is {umask_after:o} after the writes, not {umask:o}"
    images = {f"oci:{path}:{ref}": image for path, refs in written.items() for ref, image in refs.items()}
    expected = {reference: image.digest for reference, image in images.items()}
    skopeo_finds = each_with_skopeo(skopeo_digest(witness.manifest, expected), list(images))
    skopeo_copy_finds = each_with_skopeo(
        skopeo_copy_holds(witness, images, tmp_path / "copies"), deep_sample(list(images))
    )
    assert_whole(
        len(images),
        "oci layout directories",
        files=file_finds,
        skopeo_inspect=skopeo_finds,
        skopeo_copy=skopeo_copy_finds,
    )
