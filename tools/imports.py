"""What the code imports, read statically (ast), so tests can check that pyproject's dependencies and each
conda env cover it without installing anything.

A rule script needs the third-party modules imported at module level by everything it imports, plus those
imported inside the functions it can reach. Reachability is by name: a function counts once its name is
referenced by reached code (a call `quantum.aer_features(...)` reaches `aer_features`). That over-approximates
(two functions with one name). A computed importlib.import_module (a registry's `load`) reaches every module of
its package. Calls through strings or getattr are not followed.
"""

from __future__ import annotations

import ast
import functools
import itertools
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

FIRST_PARTY = {"qtlmnist", "tools", "conftest", "__future__"}  # conftest: tests import their own

# Import name -> the distributions that provide it (any one will do), where the names differ. TensorFlow's module
# comes from tensorflow-cpu or tensorflow depending on the platform (requirements.lock's markers).
DISTRIBUTIONS = {
    "yaml": ("PyYAML",),
    "tensorflow": ("tensorflow-cpu", "tensorflow"),
    "qiskit_aer": ("qiskit-aer",),
    "qiskit_ibm_runtime": ("qiskit-ibm-runtime",),
    "PIL": ("pillow",),
    "tensorcircuit": ("tensorcircuit-ng",),
    "sklearn": ("scikit-learn",),
    "xdist": ("pytest-xdist",),
}


def distributions(module: str) -> tuple[str, ...]:
    """The distributions that may provide the top-level module `module`."""
    return DISTRIBUTIONS.get(module, (module.replace("_", "-"),))


@dataclass
class _Code:
    imports: set[str] = field(default_factory=set)  # absolute dotted names
    names: set[str] = field(default_factory=set)  # identifiers and attribute names it references


@dataclass
class _Module:
    top: _Code
    functions: dict[str, _Code]


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_import_module(func: ast.expr) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id == "import_module"
    )


def _collect(node: ast.AST, code: _Code, module: str, is_package: bool) -> None:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Import):
            code.imports.update(alias.name for alias in sub.names)
        elif isinstance(sub, ast.ImportFrom):
            source = _absolute(sub, module, is_package)
            code.imports.add(source)
            for alias in sub.names:
                # `from pkg import x`: x is a submodule or a name in pkg; as a module it is recorded here (unknown
                # modules are ignored), as a function it counts only where code uses it (an ast.Name below)
                code.imports.add(f"{source}.{alias.name}")
        elif isinstance(sub, ast.Call) and _is_import_module(sub.func):
            # importlib.import_module(<computed name>), as a registry's `load` does: any module of this package
            package = module if is_package else module.rpartition(".")[0]
            code.imports.add(f"{package}.*")
        elif isinstance(sub, ast.Name):
            code.names.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            code.names.add(sub.attr)


def _summarise(path: Path, module: str, is_package: bool = False) -> _Module:
    top, functions = _Code(), {}

    def walk(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                _collect(node, functions.setdefault(node.name, _Code()), module, is_package)
            elif isinstance(node, ast.ClassDef):
                for part in (*node.bases, *node.keywords, *node.decorator_list):
                    _collect(part, top, module, is_package)
                walk(node.body)
            else:
                _collect(node, top, module, is_package)

    walk(ast.parse(path.read_text(), filename=str(path)).body)
    return _Module(top, functions)


def _module_name(path: Path) -> str:
    """Dotted name of a file inside a package (walking up while folders hold __init__.py), else __main__."""
    parts = [] if path.stem == "__init__" else [path.stem]
    folder = path.parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts) if (path.parent / "__init__.py").exists() else "__main__"


def package_modules(package_dir: Path) -> dict[str, _Module]:
    """Every module of the package in `package_dir`, subpackages included, by dotted name (a package's own name
    for its __init__). Read once per state of its files: a check of every rule script parses the package's
    ~30 modules once, not once per script (the lock tests ran it ~100 times, half a minute)."""
    files = tuple((path, path.stat().st_mtime_ns, path.stat().st_size) for path in sorted(package_dir.rglob("*.py")))
    return _package_modules(files)


@functools.lru_cache(maxsize=8)
def _package_modules(files: tuple[tuple[Path, int, int], ...]) -> dict[str, _Module]:
    return {
        _module_name(path): _summarise(path, _module_name(path), is_package=path.stem == "__init__")
        for path, _, _ in files
    }


def _third_party(imports: set[str], own: str = "") -> set[str]:
    tops = {name.split(".")[0] for name in imports if name}
    return {top for top in tops if top not in FIRST_PARTY | {own} and top not in sys.stdlib_module_names}


def script_imports(script: Path, package_dir: Path) -> set[str]:
    """Top-level third-party modules that running `script` can import, through the package in `package_dir`."""
    modules = package_modules(package_dir)
    found, names = set(), set()
    reached_modules, reached_functions = set(), set()

    def visit(code: _Code) -> None:
        found.update(_third_party(code.imports, own=package_dir.name))
        names.update(code.names)
        for name in code.imports:
            if name.endswith(".*"):  # a dynamic import: every module of that package may be loaded
                targets = [m for m in modules if m.startswith(name[:-1])]
            else:
                targets = [name] if name in modules else []
            for target in targets:
                if target not in reached_modules:
                    reached_modules.add(target)
                    visit(modules[target].top)

    # a script is glue run top to bottom: all of it counts
    visit(_summarise(script, "__main__").top)
    for code in _summarise(script, "__main__").functions.values():
        visit(code)
    changed = True
    while changed:  # functions reached by name can reach more modules and names
        changed = False
        for module in sorted(reached_modules):
            for function, code in modules[module].functions.items():
                if function in names and (module, function) not in reached_functions:
                    reached_functions.add((module, function))
                    visit(code)
                    changed = True
    return found


def file_imports(path: Path) -> set[str]:
    """Third-party top-level modules imported anywhere in one file (module level or in functions)."""
    # a module of a package resolves its relative imports against the package's name
    module = _module_name(path)
    summary = _summarise(path, module, is_package=path.stem == "__init__")
    imported = set(summary.top.imports).union(*(code.imports for code in summary.functions.values()))
    # a module beside the file (a test importing a helper module of tests/) is the project's own
    beside = {sibling.stem for sibling in path.parent.glob("*.py")}
    return {name for name in _third_party(imported, own=module.split(".")[0]) if name not in beside}


_RULE = re.compile(r"^rule (\w+):", re.MULTILINE)
_DIRECTIVE = r'^\s+{}:\s*\n\s+"([^"]+)"'


def rule_envs(rules_dir: Path) -> list[tuple[str, Path, Path]]:
    """(rule, conda env file, script) for every rule of workflow/rules/*.smk that has both."""
    found = []
    for path in sorted(rules_dir.glob("*.smk")):
        text = path.read_text()
        starts = [m.start() for m in _RULE.finditer(text)] + [len(text)]
        for start, end in itertools.pairwise(starts):
            block = text[start:end]
            conda = re.search(_DIRECTIVE.format("conda"), block, re.MULTILINE)
            script = re.search(_DIRECTIVE.format("script"), block, re.MULTILINE)
            if conda and script:
                rule = _RULE.match(block).group(1)
                found.append((rule, (rules_dir / conda.group(1)).resolve(), (rules_dir / script.group(1)).resolve()))
    return found
