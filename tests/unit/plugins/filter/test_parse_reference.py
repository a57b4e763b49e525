# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ocireg.registry.parse_reference filter (plugins/filter/parse_reference.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.ocireg.registry.plugins.filter import parse_reference as plugin
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import parse_reference

SHA256 = "sha256:" + "0123456789abcdef" * 4


def collections_root() -> Path:
    """The directory holding ``ansible_collections/`` that this copy of the collection was imported from."""
    for parent in Path(plugin.__file__).absolute().parents:
        if parent.name == "ansible_collections":
            return parent.parent
    raise AssertionError("the plugin was not imported from an ansible_collections tree")


def filter_function():
    return plugin.FilterModule().filters()["parse_reference"]


def test_filter_module_registers_parse_reference():
    filters = plugin.FilterModule().filters()
    assert list(filters) == ["parse_reference"]
    assert callable(filters["parse_reference"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "alpine",
            {
                "registry": "docker.io",
                "repository": "library/alpine",
                "tag": "latest",
                "digest": None,
                "canonical": "docker.io/library/alpine:latest",
                "familiar": "alpine:latest",
                "official": True,
                "scheme": None,
            },
        ),
        (
            "index.docker.io/user/app:1",
            {
                "registry": "docker.io",
                "repository": "user/app",
                "tag": "1",
                "digest": None,
                "canonical": "docker.io/user/app:1",
                "familiar": "user/app:1",
                "official": False,
                "scheme": None,
            },
        ),
        (
            "http://localhost:5000/team/app:1.2@" + SHA256,
            {
                "registry": "localhost:5000",
                "repository": "team/app",
                "tag": "1.2",
                "digest": SHA256,
                "canonical": "localhost:5000/team/app:1.2@" + SHA256,
                "familiar": "localhost:5000/team/app:1.2@" + SHA256,
                "official": False,
                "scheme": "http",
            },
        ),
        (
            "HTTPS://registry.internal:5000/team/app",
            {
                "registry": "registry.internal:5000",
                "repository": "team/app",
                "tag": "latest",
                "digest": None,
                "canonical": "registry.internal:5000/team/app:latest",
                "familiar": "registry.internal:5000/team/app:latest",
                "official": False,
                "scheme": "https",
            },
        ),
    ],
)
def test_filter_returns_the_parts(text, expected):
    assert filter_function()(text) == expected


def test_filter_result_matches_the_client():
    for text in ("alpine", "ghcr.io/org/app:1", "[::1]:5000/x@" + SHA256, "http://[::1]:5000/x"):
        assert filter_function()(text) == parse_reference(text).to_dict()


@pytest.mark.parametrize(
    ("text", "scheme"),
    [
        ("registry.example.com/team/app", None),
        ("localhost:5000/team/app", None),
        ("http://registry.example.com/team/app", "http"),
        ("https://127.0.0.1:5000/team/app", "https"),
        ("http://registry/app", "http"),
    ],
)
def test_scheme_is_the_one_the_reference_gave(text, scheme):
    # None means "none given", not "HTTPS": loopback hosts without a scheme are reached over plain HTTP.
    assert filter_function()(text)["scheme"] == scheme


@pytest.mark.parametrize("default_tag", ["", None])
def test_empty_default_tag_leaves_tag_empty(default_tag):
    result = filter_function()("ghcr.io/org/app", default_tag=default_tag)
    assert result["tag"] is None
    assert result["canonical"] == "ghcr.io/org/app"


def test_default_tag_option():
    assert filter_function()("alpine", default_tag="edge")["tag"] == "edge"
    assert filter_function()("alpine:3", default_tag="edge")["tag"] == "3"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("User/App", "Invalid image reference 'User/App': repository names must be lowercase"),
        ("alpine:bad tag", "Invalid image reference 'alpine:bad tag': it must not contain whitespace."),
        ("alpine:-x", "Invalid tag '-x' in image reference 'alpine:-x': a tag is 1 to 128 characters"),
        ("", "Invalid image reference '': the value is empty"),
        (42, "Invalid image reference 42 (int): expected a string"),
    ],
)
def test_invalid_reference_raises_ansible_filter_error(value, message):
    with pytest.raises(AnsibleFilterError) as info:
        filter_function()(value)
    assert message in str(info.value)
    assert info.value.__cause__ is None


def test_invalid_default_tag_raises_ansible_filter_error():
    with pytest.raises(AnsibleFilterError, match=r"Invalid tag '\.x'"):
        filter_function()("alpine", default_tag=".x")


# ----------------------------------------------------------------------------------------------------
# documentation


def test_documentation_is_valid_yaml_with_the_filter_fields():
    doc = yaml.safe_load(plugin.DOCUMENTATION)
    assert doc["name"] == "parse_reference"
    assert doc["positional"] == "_input"
    assert str(doc["version_added"]) == "0.1.0"
    assert doc["author"] == "ocireg.registry contributors"
    assert doc["short_description"]
    assert doc["options"]["_input"]["required"] is True
    assert doc["options"]["_input"]["type"] == "str"
    assert doc["options"]["default_tag"]["default"] == "latest"


def test_return_documents_every_key_the_filter_returns():
    returned = yaml.safe_load(plugin.RETURN)["_value"]
    assert returned["type"] == "dict"
    assert set(returned["contains"]) == set(filter_function()("alpine"))


def test_examples_use_the_fqcn():
    examples = yaml.safe_load(plugin.EXAMPLES)
    assert isinstance(examples, list) and examples
    assert "ocireg.registry.parse_reference" in plugin.EXAMPLES
    assert "| parse_reference" not in plugin.EXAMPLES


# ----------------------------------------------------------------------------------------------------
# through Ansible itself (in a subprocess: installing the collection loader is process-wide)

TEMPLAR_SCRIPT = textwrap.dedent("""
    import json, sys
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
    _AnsibleCollectionFinder(paths=[sys.argv[1]])._install()
    from ansible.errors import AnsibleError
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    try:
        from ansible.template import trust_as_template
    except ImportError:  # ansible-core < 2.19 trusts every template string
        trust_as_template = str

    cases = json.loads(sys.argv[2])
    results = []
    for template, variables in cases:
        templar = Templar(loader=DataLoader(), variables=variables)
        try:
            results.append({"value": templar.template(trust_as_template(template))})
        except AnsibleError as exc:
            results.append({"error": str(exc)})
    print(json.dumps(results))
    """)


def run_templar(cases):
    completed = subprocess.run(
        [sys.executable, "-c", TEMPLAR_SCRIPT, str(collections_root()), json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_filter_through_templar_by_fqcn():
    results = run_templar(
        [
            ["{{ image | ocireg.registry.parse_reference }}", {"image": "alpine"}],
            ["{{ (image | ocireg.registry.parse_reference).registry }}", {"image": "index.docker.io/user/app"}],
            [
                "{{ images | map('ocireg.registry.parse_reference') | map(attribute='familiar') | list }}",
                {"images": ["docker.io/library/nginx:1", "ghcr.io/o/a"]},
            ],
            ["{{ (image | ocireg.registry.parse_reference(default_tag='')).tag is none }}", {"image": "ghcr.io/o/a"}],
            ["{{ image | ocireg.registry.parse_reference }}", {"image": "Bad/Name"}],
        ]
    )
    assert results[0] == {"value": parse_reference("alpine").to_dict()}
    assert results[1] == {"value": "docker.io"}
    assert results[2] == {"value": ["nginx:1", "ghcr.io/o/a:latest"]}
    assert results[3] == {"value": True}
    assert "Invalid image reference 'Bad/Name': repository names must be lowercase" in results[4]["error"]


def test_examples_run_as_a_playbook(tmp_path):
    playbook_command = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or shutil.which(
        "ansible-playbook"
    )
    if playbook_command is None:
        pytest.skip("ansible-playbook is not installed")
    examples = yaml.safe_load(plugin.EXAMPLES)
    for number, task in enumerate(examples):
        task["register"] = "example_%d" % number
    expected = {
        "expected_split": parse_reference("alpine").to_dict(),
        "expected_pinned": "ghcr.io/org/app:1.2@" + SHA256,
        "expected_groups": {
            "docker.io": [parse_reference("alpine:3.20").to_dict()],
            "ghcr.io": [parse_reference("ghcr.io/org/app:1.2").to_dict()],
            "localhost:5000": [parse_reference("localhost:5000/team/tool").to_dict()],
            "registry.internal:5000": [parse_reference("http://registry.internal:5000/team/app").to_dict()],
        },
    }
    check = {
        "name": "Check what the examples produced",
        "ansible.builtin.assert": {
            "that": [
                "example_0.msg == expected_split",
                "pinned == expected_pinned",
                "example_2.msg == expected_groups",
                "example_2.msg['registry.internal:5000'][0].scheme == 'http'",
                "example_3 is not failed",
            ]
        },
    }
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [*examples, check]}]
    playbook = tmp_path / "examples.yml"
    playbook.write_text(yaml.safe_dump(play))
    (tmp_path / "expected.json").write_text(json.dumps(expected))
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(collections_root()),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
        ANSIBLE_NOCOLOR="1",
    )
    completed = subprocess.run(
        [playbook_command, "-i", "localhost,", "-c", "local", "-e", "@expected.json", str(playbook)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=str(tmp_path),
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "Check what the examples produced" in output
    assert "ok=5" in output
    # ansible-core 2.19 warns when a task result holds a type it cannot store (groupby's GroupTuple): none may.
    assert "WARNING" not in output, output
