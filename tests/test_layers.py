"""The layers run one way: a module imports only from its own layer or the layers below.

cli -> pipelines -> evaluation -> generation/export/inspect -> tasks/training/models/...
-> data -> outputs/cards -> config -> errors/registry. Imports inside functions and under
``TYPE_CHECKING`` count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "llmkit"

#: rank of each top-level part of the package; a module may import ranks <= its own
RANKS = {
    "errors": 0,
    "registry": 0,
    "version": 0,
    "permissions": 0,
    "config": 1,
    "outputs": 2,
    "cards": 2,
    "data": 3,
    "models": 4,
    "tasks": 4,
    "training": 4,
    "hub": 4,
    "scaling": 4,
    "tuning": 4,
    "generation": 5,
    "export": 5,
    "inspect": 5,
    "evaluation": 6,
    "pipelines": 7,
    "cli": 8,
    "__main__": 8,
    "": 8,  # the package itself: its __init__ is the Python API over the pipelines
}
#: same-or-lower imports that are still wrong: (importer part, imported part)
FORBIDDEN = {("generation", "tasks")}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, module) for every llmkit import in the file; ``from llmkit.x import y`` names
    ``llmkit.x.y`` when y is a submodule, else ``llmkit.x``."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                where = root.parent / sub.replace(".", "/")
                is_sub = where.with_suffix(".py").is_file() or where.is_dir()
                found.append((node.lineno, sub if is_sub else source))
    ours = {(line, m) for line, m in found if m == "llmkit" or m.startswith("llmkit.")}
    return sorted(ours)


def part_of(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def violations(path: Path, root: Path = PACKAGE) -> list[str]:
    importer = part_of(module_name(path, root))
    if importer not in RANKS:
        return [f"{module_name(path, root)}: llmkit.{importer} has no layer; add it to RANKS"]
    out = []
    for line, module in imported_modules(path, root):
        part = part_of(module)
        wrong = part not in RANKS or RANKS[part] > RANKS[importer]
        if wrong or (importer, part) in FORBIDDEN:
            out.append(f"{path.relative_to(root.parent)}:{line} imports {module}")
    return out


def test_every_import_points_down():
    found = [v for path in sorted(PACKAGE.rglob("*.py")) for v in violations(path)]
    assert not found, "imports against the layers:\n" + "\n".join(found)


def test_checker_catches_an_upward_import_inside_a_function(tmp_path):
    """The check itself: a lazy import from a higher layer is caught, a lower one is not."""
    fake = tmp_path / "llmkit"
    (fake / "config").mkdir(parents=True)
    (fake / "tasks").mkdir()
    (fake / "tasks" / "base.py").write_text("")
    (fake / "errors.py").write_text("")
    (fake / "config" / "bad.py").write_text(
        "def f():\n    from llmkit.tasks import base\n    from llmkit.errors import LlmkitError\n"
    )
    (fake / "config" / "good.py").write_text("from llmkit import errors\n")
    (fake / "tasks" / "uses_config.py").write_text("from ..config import good\n")
    bad = violations(fake / "config" / "bad.py", fake)
    assert bad == ["llmkit/config/bad.py:2 imports llmkit.tasks.base"]
    assert violations(fake / "config" / "good.py", fake) == []
    assert violations(fake / "tasks" / "uses_config.py", fake) == []
