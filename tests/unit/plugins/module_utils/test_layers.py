# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The layers of plugins/module_utils: each imports only from the layers below it (docs/ARCHITECTURE.md).

The rule is read off the import lines, lazy imports inside functions included, so that no shortcut hides in a
function body. Modules are thin: they may use every layer but ``_registry``, which only ``_ops``, ``_image`` and the
glue in ``_common`` talk to.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "ansible_collections.ocireg.registry.plugins.module_utils"
PLUGINS = Path(__file__).resolve().parents[3].parent / "plugins"

# What each part of module_utils may import of ours (a layer may always import within itself).
BASE = ("_errors", "_concurrency")
ALLOWED = {
    "_errors": set(),
    "_concurrency": set(),
    "_oci": {"_errors"},
    "_registry": {"_errors", "_concurrency", "_oci"},
    "_image": {"_errors", "_concurrency", "_oci", "_registry"},
    "_ops": {"_errors", "_concurrency", "_oci", "_registry", "_image"},
    "_common": {"_errors", "_concurrency", "_oci", "_registry", "_image", "_ops"},
}
MODULE_ALLOWED = {"_errors", "_concurrency", "_oci", "_image", "_ops", "_common"}


def our_imports(source: str) -> list[tuple[int, str]]:
    """``(line, top-level part of module_utils)`` for every import of ours in SOURCE, at any depth."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + ["%s.%s" % (node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            if name.startswith(PACKAGE + "."):
                found.append((node.lineno, name[len(PACKAGE) + 1 :].split(".")[0]))
                break
    return found


def part_of(path: Path) -> str:
    relative = path.relative_to(PLUGINS / "module_utils")
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def violations(path: Path, source: str) -> list[str]:
    """Every import in SOURCE (the text of PATH) that the layer rule forbids, as 'path:line: what'."""
    if path.parent.name == "modules":
        allowed, what = MODULE_ALLOWED, "a module"
    else:
        part = part_of(path)
        allowed, what = ALLOWED[part] | ({part} if part not in BASE else set()), part
    return [
        "%s:%d: %s imports %s" % (path.relative_to(PLUGINS), line, what, imported)
        for line, imported in our_imports(source)
        if imported not in allowed
    ]


def checked_files() -> list[Path]:
    return sorted((PLUGINS / "module_utils").rglob("*.py")) + sorted((PLUGINS / "modules").glob("*.py"))


def test_the_layers_are_all_known() -> None:
    parts = {part_of(path) for path in (PLUGINS / "module_utils").rglob("*.py")}
    assert parts == set(ALLOWED), "a new part of module_utils needs a place in the layers: %s" % (parts - set(ALLOWED))


def test_no_layer_imports_from_above_itself_and_no_module_imports_the_registry_layer() -> None:
    files = checked_files()
    assert len(files) > 20
    problems = [problem for path in files for problem in violations(path, path.read_text(encoding="utf-8"))]
    assert problems == []


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("module_utils/_oci/manifest.py", "from %s._registry.api import RegistryClient\n", "_oci imports _registry"),
        ("module_utils/_errors.py", "from %s._oci.reference import Reference\n", "_errors imports _oci"),
        ("module_utils/_concurrency.py", "from %s._errors import RegistryError\n", "_concurrency imports _errors"),
        ("module_utils/_registry/api.py", "def f():\n    from %s._image.copy import transfer\n", "_registry imports"),
        ("module_utils/_image/copy.py", "from %s._ops import tagging\n", "_image imports _ops"),
        ("module_utils/_ops/tagging.py", "import %s._common\n", "_ops imports _common"),
        ("modules/registry_tag.py", "from %s._registry.api import RegistryClient\n", "a module imports _registry"),
    ],
)
def test_the_check_catches_each_kind_of_violation(path: str, source: str, expected: str) -> None:
    assert any(expected in problem for problem in violations(PLUGINS / path, source % PACKAGE))


def test_imports_the_rule_allows_pass_the_check() -> None:
    allowed = "from %s._registry.api import RegistryClient\nfrom %s._oci.reference import Reference\n"
    assert violations(PLUGINS / "module_utils/_image/copy.py", allowed % (PACKAGE, PACKAGE)) == []
    assert violations(PLUGINS / "modules/registry_tag.py", "from %s._ops.tagging import TagUpdate\n" % PACKAGE) == []
