"""Benchmark ocireg.registry.registry_image against skopeo copy, on the same work, in one run.

Scenarios (real CNCF distribution registries on loopback, fresh storage for every destination):

- cross: a 12-layer image of ~4 MiB incompressible layers, registry A -> registry B;
- same: the same image within registry A, into a new repository each round;
- multi: a 3-platform image (4 layers of ~4 MiB each per platform), registry A -> registry B;
- rerun: registry_image again on an up-to-date destination (requests per manifest, blob traffic);
- memory: the peak RSS of the module's Python process while it copies a single 512 MiB layer;
- fixed cost: one-task playbooks that copy nothing, to split the fixed cost of a task into its parts: a
  ``command`` task starting skopeo, a Python module that does nothing, the same importing ``requests``, and
  registry_image failing at its first connection (its imports, options and credentials, no copy).

registry_image runs through ansible-playbook; skopeo runs as an ansible.builtin.command task in a playbook,
so both pay the same Ansible start-up. Rounds alternate which goes first. Bare `skopeo copy` is timed for
reference. Requests and bytes come from the registries' access logs.

    .venv/bin/python benchmarks/copy.py [--rounds 5] [--memory-mib 512] [--write-results]

On a shared machine, run it at a raised priority (``nice -n -10 ...``, as root): every process it starts
inherits it, so both tools are measured alike and the other load weighs less.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is called copy.py: keep its directory off sys.path, or it hides the standard library's copy module.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "functional"))
sys.path.insert(0, str(REPO_ROOT / "build" / "collections"))  # `make collection-tree` links the checkout there

import argparse  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from support.images import Image, make_image  # noqa: E402
from support.playbook import COLLECTIONS_PATH, run_playbook  # noqa: E402
from support.registry import RegistryServer  # noqa: E402
from support.skopeo import SKOPEO_BINARY, Skopeo, _Isolation, cleanup_isolation  # noqa: E402

MIB = 1024 * 1024
RESULTS = REPO_ROOT / "benchmarks" / "RESULTS.md"
SECTION = "## Copy"
MODULE = "ocireg.registry.registry_image"
HEADER = "# Benchmark results\n\nFigures recorded by the scripts in this directory; each section names its command.\n"


class Bench:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.servers: list[RegistryServer] = []
        self.counter = 0
        self.last_cpu = 0.0

    def registry(self) -> RegistryServer:
        self.counter += 1
        server = RegistryServer("open", self.root / f"registry-{self.counter}").start()
        self.servers.append(server)
        return server

    def retire(self, server: RegistryServer) -> None:
        server.stop()
        subprocess.run(["rm", "-rf", str(server.storage)], check=False)

    def close(self) -> None:
        for server in self.servers:
            server.stop()

    def playbook(self, tasks: list[dict[str, Any]]) -> tuple[float, Any]:
        self.counter += 1
        before = cpu_of_children()
        started = time.monotonic()
        run = run_playbook(tasks, self.root / f"playbook-{self.counter}", timeout=1800)
        elapsed = time.monotonic() - started
        self.last_cpu = cpu_of_children() - before
        if run.rc != 0:
            raise RuntimeError(f"playbook failed:\n{run.output[-4000:]}")
        return elapsed, run


def cpu_of_children() -> float:
    """User + system CPU seconds of every child process waited for so far (ansible-playbook and its tree)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def skopeo_argv(src: str, dest: str) -> list[str]:
    return [
        SKOPEO_BINARY,
        *_Isolation.global_args(),
        "copy",
        "--quiet",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-no-creds",
        "--dest-no-creds",
        f"docker://{src}",
        f"docker://{dest}",
    ]


def skopeo_task(src: str, dest: str) -> dict[str, Any]:
    env = _Isolation.env()
    keep = ("HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "TMPDIR")
    return {
        "name": "skopeo copy",
        "ansible.builtin.command": {"argv": skopeo_argv(src, dest)},
        "environment": {key: env[key] for key in keep}
        | {"CONTAINERS_REGISTRIES_CONF": env["CONTAINERS_REGISTRIES_CONF"]},
        "changed_when": True,
    }


def ours_task(src: str, dest: str, **extra: Any) -> dict[str, Any]:
    return {"name": "registry_image", MODULE: {"src": src, "dest": dest}, "register": "copied", **extra}


def traffic(servers: list[RegistryServer], marks: list[int], sizes: dict[str, int]) -> dict[str, int]:
    """Requests, blob bytes served (GET) and uploaded (completed PUT ?digest=), mounts, over all SERVERS."""
    result = {"requests": 0, "handshakes": 0, "blob_gets": 0, "bytes_down": 0, "uploads": 0, "bytes_up": 0, "mounts": 0}
    for server, mark in zip(servers, marks):
        for entry in server.requests_since(mark):
            result["requests"] += 1
            if entry["status"] == 401:
                result["handshakes"] += 1
            elif entry["method"] == "GET" and "/blobs/sha256:" in entry["path"]:
                result["blob_gets"] += 1
                result["bytes_down"] += entry["size"]
            elif entry["method"] == "PUT" and "/blobs/uploads/" in entry["path"] and entry["status"] == 201:
                result["uploads"] += 1
                result["bytes_up"] += sizes.get(entry["params"].get("digest", [""])[0], 0)
            elif entry["method"] == "POST" and entry["params"].get("mount") and entry["status"] == 201:
                result["mounts"] += 1
    return result


def blob_sizes(image: Image) -> dict[str, int]:
    return {blob.digest: blob.size for p in image.platforms.values() for blob in [p.config, *p.layers]}


def timed_engine(src: str, dest: str) -> float:
    """The copy engine alone, in this process: registry_image without Ansible around it."""
    from ansible_collections.ocireg.registry.plugins.module_utils._image.copy import copy_image
    from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import parse_reference
    from ansible_collections.ocireg.registry.plugins.module_utils._registry.clients import RegistryClients
    from ansible_collections.ocireg.registry.plugins.module_utils._registry.credentials import CredentialResolver
    from ansible_collections.ocireg.registry.plugins.module_utils._registry.transport import ConnectionOptions

    clients = RegistryClients(CredentialResolver(environ={}), ConnectionOptions(pool_size=18))
    started = time.monotonic()
    copy_image(clients, parse_reference(src), parse_reference(dest))
    elapsed = time.monotonic() - started
    clients.close()
    return elapsed


def timed_bare_skopeo(src: str, dest: str) -> float:
    started = time.monotonic()
    subprocess.run(skopeo_argv(src, dest), env=_Isolation.env(), check=True, capture_output=True)
    return time.monotonic() - started


def compare(bench: Bench, image: Image, source: RegistryServer, repo: str, rounds: int, same: bool) -> dict[str, Any]:
    """Alternate rounds of ours / skopeo-in-a-playbook / bare skopeo, each into a fresh destination."""
    sizes = blob_sizes(image)
    times: dict[str, list[float]] = {"ours": [], "skopeo": [], "bare": [], "engine": []}
    cpu: dict[str, list[float]] = {"ours": [], "skopeo": []}
    seen: dict[str, dict[str, int]] = {}
    for number in range(rounds):
        order = ["ours", "skopeo"] if number % 2 == 0 else ["skopeo", "ours"]
        for tool in [*order, *(["bare", "engine"] if number % 2 == 0 else ["engine", "bare"])]:
            dest_server = source if same else bench.registry()
            dest = f"{dest_server.host}/bench/{tool}-{number}:v1"
            src = f"{source.host}/{repo}:v1"
            servers = [source] if same else [source, dest_server]
            marks = [server.mark() for server in servers]
            if tool in ("ours", "skopeo"):
                elapsed, _run = bench.playbook([ours_task(src, dest) if tool == "ours" else skopeo_task(src, dest)])
                cpu[tool].append(bench.last_cpu)
            elif tool == "engine":
                elapsed = timed_engine(src, dest)
            else:
                elapsed = timed_bare_skopeo(src, dest)
            times[tool].append(elapsed)
            seen[tool] = traffic(servers, marks, sizes)
            digest = Skopeo(dest_server).digest(f"bench/{tool}-{number}:v1")
            if digest != image.digest:
                raise RuntimeError(f"{tool} wrote {digest}, expected {image.digest}")
            if not same:
                bench.retire(dest_server)
    ratios = [ours / skopeo for ours, skopeo in zip(times["ours"], times["skopeo"])]
    cpu_ratio = statistics.median(cpu["ours"]) / statistics.median(cpu["skopeo"])
    return {
        "times": times,
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "traffic": seen,
        "cpu": cpu,
        "cpu_ratio": cpu_ratio,
    }


def rerun(bench: Bench, image: Image, source: RegistryServer, repo: str) -> dict[str, Any]:
    dest_server = bench.registry()
    src, dest = f"{source.host}/{repo}:v1", f"{dest_server.host}/bench/rerun:v1"
    bench.playbook([ours_task(src, dest)])
    marks = [source.mark(), dest_server.mark()]
    elapsed, run = bench.playbook([ours_task(src, dest)])
    result = run.task("registry_image")
    if result["changed"]:
        raise RuntimeError("the re-run changed something")
    answered = {
        name: [(r["method"], r["path"]) for r in server.requests_since(mark) if r["status"] != 401]
        for name, server, mark in (("source", source, marks[0]), ("destination", dest_server, marks[1]))
    }
    # skopeo's re-run of the same copy, for comparison
    skopeo_marks = [source.mark(), dest_server.mark()]
    bench.playbook([skopeo_task(src, dest)])
    skopeo_requests = sum(len(s.requests_since(m)) for s, m in zip((source, dest_server), skopeo_marks))
    bench.retire(dest_server)
    return {"elapsed": elapsed, "answered": answered, "blobs": result["blobs"], "skopeo_requests": skopeo_requests}


FLOOR_MODULE = """#!/usr/bin/python
from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
{extra_import}

def main():
    module = AnsibleModule(argument_spec={{"src": {{"type": "str"}}, "dest": {{"type": "str"}}}})
    module.exit_json(changed=False)


if __name__ == "__main__":
    main()
"""

FIXED_COST_TASKS = {
    "command starting skopeo": {"ansible.builtin.command": {"argv": [SKOPEO_BINARY, "--version"]}},
    "Python module doing nothing": {"ocireg_bench.floor.nothing": {"src": "a", "dest": "b"}},
    "the same, importing requests": {"ocireg_bench.floor.with_requests": {"src": "a", "dest": "b"}},
    "registry_image, failing at its first connection": {
        MODULE: {"src": "127.0.0.1:9/x:v1", "dest": "127.0.0.1:9/y:v1", "retries": 0},
        "ignore_errors": True,
    },
}


def fixed_costs(bench: Bench, rounds: int) -> dict[str, list[float]]:
    """One-task playbooks that copy nothing, alternating, so the fixed cost of a task can be taken apart."""
    modules = bench.root / "floor" / "ansible_collections" / "ocireg_bench" / "floor" / "plugins" / "modules"
    modules.mkdir(parents=True)
    (modules / "nothing.py").write_text(FLOOR_MODULE.format(extra_import=""))
    (modules / "with_requests.py").write_text(FLOOR_MODULE.format(extra_import="import requests  # noqa: F401"))
    env = {"ANSIBLE_COLLECTIONS_PATH": f"{bench.root / 'floor'}:{COLLECTIONS_PATH}"}
    times: dict[str, list[float]] = {label: [] for label in FIXED_COST_TASKS}
    for number in range(rounds + 1):
        labels = list(FIXED_COST_TASKS) if number % 2 == 0 else list(reversed(FIXED_COST_TASKS))
        for label in labels:
            bench.counter += 1
            started = time.monotonic()
            run = run_playbook(
                [{"name": "fixed", **FIXED_COST_TASKS[label]}], bench.root / f"playbook-{bench.counter}", env=env
            )
            elapsed = time.monotonic() - started
            if run.rc != 0:
                raise RuntimeError(f"{label} failed:\n{run.output[-4000:]}")
            if number:  # the first round warms the page cache
                times[label].append(elapsed)
    return times


WRAPPER = """#!{python}
# Runs the module's Python and records the peak RSS (KiB) of that process for the benchmark.
import resource, subprocess, sys
code = subprocess.call([{python!r}, *sys.argv[1:]])
with open({out!r}, "a") as handle:
    handle.write("%d\\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(code)
"""


def memory(bench: Bench, size_mib: int) -> dict[str, Any]:
    source, dest_server = bench.registry(), bench.registry()
    layout = bench.root / "big-layout"
    image = make_image(layout, ref="v1", layers=1, layer_size=size_mib * MIB, compresslevel=0, seed="memory")
    Skopeo(source).copy(image.oci, "bench/big:v1")
    subprocess.run(["rm", "-rf", str(layout)], check=False)
    out = bench.root / "maxrss.txt"
    wrapper = bench.root / "python-maxrss"
    wrapper.write_text(WRAPPER.format(python=sys.executable, out=str(out)))
    wrapper.chmod(0o755)
    task = ours_task(
        f"{source.host}/bench/big:v1",
        f"{dest_server.host}/bench/big:v1",
        vars={"ansible_python_interpreter": str(wrapper)},
    )
    elapsed, run = bench.playbook([task])
    copied = run.task("registry_image")["blobs"]
    module_kib = int(out.read_text().split()[-1])
    # bare skopeo for reference: its own peak RSS
    process = subprocess.Popen(
        skopeo_argv(f"{source.host}/bench/big:v1", f"{dest_server.host}/bench/skopeo:v1"),
        env=_Isolation.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _pid, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise RuntimeError("skopeo failed copying the big layer")
    layer = image.platforms["linux/amd64"].layers[0]
    bench.retire(source)
    bench.retire(dest_server)
    return {
        "layer_bytes": layer.size,
        "module_mib": module_kib / 1024,
        "skopeo_mib": usage.ru_maxrss / 1024,
        "elapsed": elapsed,
        "blobs": copied,
    }


def seen(entry: dict[str, Any], tool: str) -> str:
    t = entry["traffic"][tool]
    return f"{t['requests']}, {t['bytes_down'] / MIB:.1f} / {t['bytes_up'] / MIB:.1f}, {t['mounts']}"


def requests_text(answered: list[tuple[str, str]]) -> str:
    return ", ".join("`%s %s`" % request for request in answered) or "none"


def fmt_times(values: list[float]) -> str:
    return " ".join(f"{value:.2f}" for value in values)


def report(results: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    lines = [
        SECTION,
        "",
        "`ocireg.registry.registry_image` against `skopeo copy --all --preserve-digests`, both run by",
        "`ansible-playbook` (skopeo as an `ansible.builtin.command` task), alternating which goes first, each",
        "round into a fresh destination (a new registry for cross-registry copies, a new repository within one).",
        "Bare `skopeo copy` is timed for reference. Requests and bytes are counted from the registries' access",
        "logs (both registries; `401` handshakes included in the request count).",
        "",
        "Command (from the repository root, after `make collection-tree`):",
        "",
        "```",
        command,
        "```",
        "",
        f"Environment: CNCF distribution `docker-registry` 2.8.2, skopeo 1.9.3, ansible-core 2.19, loopback HTTP,"
        f" {os.cpu_count()} CPUs; {args.rounds} rounds; scheduling priority (nice) {os.nice(0)}; load average"
        f" {results['load'][0]:.1f} at the start, {results['load'][1]:.1f} at the end (other work on the machine"
        " shows here).",
        "",
        "Wall time is what the targets name; on a shared machine it also measures everyone else's load, so the CPU"
        " seconds of each playbook run (controller, module or skopeo, all child processes) are shown too.",
        "",
        "The two right-hand time columns take Ansible away: bare `skopeo copy`, and the copy engine of"
        " registry_image called in-process (`copy_image`), so the copy itself and the fixed cost of a task can be"
        " told apart.",
        "",
        "| scenario | ours (s, median) | skopeo in playbook (s) | ours/skopeo (wall) | CPU s ours / skopeo |"
        " ours: requests, blob MiB down / up, mounts | skopeo: requests, blob MiB down / up, mounts |"
        " bare skopeo (s) | engine alone (s) |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: |",
    ]
    mib = args.layer_mib
    for name, label in (
        ("cross", f"cross-registry, 12 x {mib} MiB"),
        ("same", "same registry, new repository"),
        ("multi", f"3 platforms x 4 x {mib} MiB"),
    ):
        entry = results[name]
        times = entry["times"]
        lines.append(
            f"| {label} | {statistics.median(times['ours']):.2f} | {statistics.median(times['skopeo']):.2f} |"
            f" {entry['ratio']:.2f} |"
            f" {statistics.median(entry['cpu']['ours']):.2f} / {statistics.median(entry['cpu']['skopeo']):.2f} |"
            f" {seen(entry, 'ours')} | {seen(entry, 'skopeo')} | {statistics.median(times['bare']):.2f} |"
            f" {statistics.median(times['engine']):.2f} |"
        )
    lines += ["", "Every round (seconds):", ""]
    for name in ("cross", "same", "multi"):
        times = results[name]["times"]
        lines.append(
            f"- {name}: ours {fmt_times(times['ours'])}; skopeo {fmt_times(times['skopeo'])};"
            f" bare {fmt_times(times['bare'])}; engine {fmt_times(times['engine'])};"
            f" ratios {fmt_times(results[name]['ratios'])}"
        )
    same = results["same"]["traffic"]["ours"]
    same_moved = same["bytes_down"] + same["bytes_up"]
    rerun_result = results["rerun"]
    answered = rerun_result["answered"]
    memory_result = results["memory"]
    lines += [
        "",
        "Up-to-date re-run of the cross-registry copy (`changed: false`): requests answered other than the `401`",
        f"handshake: source {requests_text(answered['source'])}, destination {requests_text(answered['destination'])};"
        f" blobs {', '.join('%s %s' % item for item in rerun_result['blobs'].items())}. skopeo's re-run of the same"
        f" copy sent {rerun_result['skopeo_requests']} requests.",
        "",
        f"Peak memory copying one {memory_result['layer_bytes'] / MIB:.0f} MiB layer registry to registry: module"
        f" process {memory_result['module_mib']:.1f} MiB max RSS (the whole Python process, Ansible's module"
        f" wrapper included; {memory_result['elapsed']:.1f} s in the playbook); bare skopeo"
        f" {memory_result['skopeo_mib']:.1f} MiB.",
        "",
        "Targets:",
        "",
        f"- cross-registry ours/skopeo <= 1.0: {results['cross']['ratio']:.2f}"
        f" ({'met' if results['cross']['ratio'] <= 1.0 else 'NOT met'});",
        f"- same registry: zero blob bytes moved: {same['bytes_down']} bytes down, {same['bytes_up']} up,"
        f" {same['mounts']} mounts ({'met' if not same_moved else 'NOT met'});",
        f"- up-to-date re-run: one request per manifest, no blob traffic:"
        f" {len(answered['source'])} + {len(answered['destination'])} requests"
        f" ({'met' if len(answered['source']) == 1 and len(answered['destination']) == 1 else 'NOT met'});",
        f"- peak memory < 100 MB for a {memory_result['layer_bytes'] / MIB:.0f} MiB layer:"
        f" {memory_result['module_mib'] * MIB / 1e6:.1f} MB"
        f" ({'met' if memory_result['module_mib'] * MIB / 1e6 < 100 else 'NOT met'}).",
        "",
    ]
    fixed = {label: statistics.median(values) for label, values in results["fixed"].items()}
    lines += [
        "Fixed cost of one task, copying nothing (one-task playbooks, median of"
        f" {len(next(iter(results['fixed'].values())))} alternating rounds):",
        "",
        "| task | seconds | every round |",
        "| --- | ---: | --- |",
        *(f"| {label} | {fixed[label]:.2f} | {fmt_times(values)} |" for label, values in results["fixed"].items()),
        "",
    ]
    cross = results["cross"]
    engine, bare = statistics.median(cross["times"]["engine"]), statistics.median(cross["times"]["bare"])
    command, nothing, with_requests, ours = (fixed[label] for label in FIXED_COST_TASKS)
    lines += [
        f"A `command` task starting skopeo costs {command:.2f} s and a Python module that does nothing {nothing:.2f} s:"
        f" Ansible's own share is the same for both. Importing `requests` (the collection's one runtime library) adds"
        f" {with_requests - nothing:+.2f} s, the client's own module_utils {ours - with_requests:+.2f} s more (Ansible"
        " parses them into the AnsiballZ payload on the controller, and the module compiles them from that zip on"
        f" every run). So registry_image starts {ours - command:+.2f} s behind the `command` task, and its copy"
        f" itself is {bare - engine:.2f} s faster than skopeo's (engine alone {engine:.2f} s, bare skopeo"
        f" {bare:.2f} s).",
        "",
    ]
    if cross["ratio"] > 1.0:
        cpu_ours, cpu_skopeo = statistics.median(cross["cpu"]["ours"]), statistics.median(cross["cpu"]["skopeo"])
        lines += [
            f"Where the cross-registry wall-time target is missed: the copy itself takes {engine:.2f} s in the engine"
            f" alone against {bare:.2f} s for bare skopeo, with {cross['traffic']['ours']['requests']} requests"
            f" against {cross['traffic']['skopeo']['requests']}. The playbook runs differ by the fixed cost of the"
            f" task ({cpu_ours:.2f} against {cpu_skopeo:.2f} CPU seconds): a Python module that imports `requests`"
            " and ships its module_utils in its AnsiballZ payload, against `command` starting a Go binary. Ansible"
            " builds that payload once per module per playbook run, so in a play with several tasks it weighs less.",
            "",
        ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace (or add) the ``## Copy`` section of RESULTS.md, leaving every other section alone."""
    if RESULTS.exists():
        content = RESULTS.read_text()
    else:
        content = HEADER
    lines = content.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    if start is None:
        new = content.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = "\n".join(
            lines[:start] + text.rstrip("\n").splitlines() + ([""] + lines[end:] if end < len(lines) else [])
        )
        new = new.rstrip("\n") + "\n"
    RESULTS.write_text(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--layer-mib", type=int, default=4, help="size of each layer of the copied images")
    parser.add_argument("--memory-mib", type=int, default=512, help="size of the single layer for the memory figure")
    parser.add_argument("--write-results", action="store_true", help="record the figures in benchmarks/RESULTS.md")
    args = parser.parse_args()
    command = ".venv/bin/python benchmarks/copy.py " + " ".join(sys.argv[1:])
    if os.nice(0) < 0:
        command = "nice -n %d %s" % (os.nice(0), command)
    root = Path(tempfile.mkdtemp(prefix="ocireg-bench-copy-"))
    bench = Bench(root)
    try:
        source = bench.registry()
        single = make_image(
            root / "single", ref="v1", layers=12, layer_size=args.layer_mib * MIB, compresslevel=1, seed="x"
        )
        multi = make_image(
            root / "multi",
            ref="v1",
            platforms=["linux/amd64", "linux/arm64", "linux/arm/v7"],
            layers=4,
            layer_size=args.layer_mib * MIB,
            compresslevel=1,
            seed="y",
        )
        Skopeo(source).copy(single.oci, "bench/single:v1")
        Skopeo(source).copy(multi.oci, "bench/multi:v1")
        total, total_multi = sum(blob_sizes(single).values()) / MIB, sum(blob_sizes(multi).values()) / MIB
        print(f"image: 12 layers, {total:.1f} MiB; multi: {total_multi:.1f} MiB", flush=True)
        results: dict[str, Any] = {"load": [os.getloadavg()[0], 0.0]}
        results["cross"] = compare(bench, single, source, "bench/single", args.rounds, same=False)
        print("cross", results["cross"]["times"], results["cross"]["ratio"], flush=True)
        results["same"] = compare(bench, single, source, "bench/single", args.rounds, same=True)
        print("same", results["same"]["times"], results["same"]["ratio"], flush=True)
        results["multi"] = compare(bench, multi, source, "bench/multi", args.rounds, same=False)
        print("multi", results["multi"]["times"], results["multi"]["ratio"], flush=True)
        results["rerun"] = rerun(bench, single, source, "bench/single")
        print("rerun", results["rerun"], flush=True)
        results["memory"] = memory(bench, args.memory_mib)
        print("memory", results["memory"], flush=True)
        results["fixed"] = fixed_costs(bench, max(args.rounds, 9))
        print("fixed", results["fixed"], flush=True)
        results["load"][1] = os.getloadavg()[0]
        text = report(results, args, command)
        print()
        print(text)
        if args.write_results:
            write_section(text)
    finally:
        bench.close()
        cleanup_isolation()
        subprocess.run(["rm", "-rf", str(root)], check=False)


if __name__ == "__main__":
    main()
