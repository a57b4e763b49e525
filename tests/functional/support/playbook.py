"""Run real ``ansible-playbook`` processes against the collection and read back each task's result."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
COLLECTIONS_PATH = REPO_ROOT / "build" / "collections"
CALLBACKS = Path(__file__).resolve().parent / "callback_plugins"
# The tests' own environment runs the newest ansible-core. To run the same playbooks with another release (the
# oldest one meta/runtime.yml allows: `make pytest-oldest`), point these at that release's virtual environment.
PYTHON_ENV = "OCIREG_TEST_ANSIBLE_PYTHON"


def ansible_python() -> str:
    """The Python whose ansible-core runs the playbooks, and whose interpreter runs the modules."""
    return os.environ.get(PYTHON_ENV) or sys.executable


@dataclasses.dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    results: list[dict[str, Any]]

    def task(self, name: str) -> dict[str, Any]:
        """The result of the task called ``name`` (the last one, if it ran more than once)."""
        matches = [entry for entry in self.results if entry["task"] == name]
        if not matches:
            raise AssertionError("task %r did not run; output:\n%s\n%s" % (name, self.stdout, self.stderr))
        return matches[-1]["result"]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_playbook(
    tasks: list[dict[str, Any]],
    workdir: Path,
    *,
    check: bool = False,
    diff: bool = False,
    verbosity: int = 0,
    extra_vars: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    module_defaults: dict[str, Any] | None = None,
    timeout: float = 300,
) -> PlaybookRun:
    """Write ``tasks`` into a localhost playbook and run it with ``ansible-playbook``.

    Tasks expected to fail should carry ``ignore_errors: true`` so later tasks still run.
    The environment is isolated from the machine's own registry logins.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    play: dict[str, Any] = {"hosts": "localhost", "gather_facts": False, "tasks": tasks}
    if module_defaults:
        play["module_defaults"] = module_defaults
    playbook = workdir / "playbook.yml"
    playbook.write_text(yaml.safe_dump([play], sort_keys=False))
    results_file = workdir / "results.jsonl"
    if results_file.exists():
        results_file.unlink()
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    run_env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH),
        "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
        "ANSIBLE_CALLBACKS_ENABLED": "record_results",
        "ANSIBLE_LOCAL_TEMP": str(workdir / "tmp"),
        "ANSIBLE_PYTHON_INTERPRETER": ansible_python(),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "OCIREG_TEST_RESULTS": str(results_file),
        "XDG_RUNTIME_DIR": str(workdir / "run"),
    }
    run_env.update(env or {})
    ansible_playbook = Path(ansible_python()).parent / "ansible-playbook"
    command = [str(ansible_playbook), "-i", "localhost,", "-c", "local", str(playbook)]
    if check:
        command.append("--check")
    if diff:
        command.append("--diff")
    if verbosity:
        command.append("-" + "v" * verbosity)
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    completed = subprocess.run(
        command, cwd=workdir, env=run_env, capture_output=True, text=True, timeout=timeout, check=False
    )
    results = []
    if results_file.exists():
        results = [json.loads(line) for line in results_file.read_text().splitlines() if line.strip()]
    return PlaybookRun(completed.returncode, completed.stdout, completed.stderr, results)
