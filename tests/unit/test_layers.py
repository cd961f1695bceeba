"""The layers point one way, read from the code's own imports: kernel <- platform <- services <-
tools. A module imports only from its own layer or those below; a service never imports another
service; and no modules import each other round a circle. (docs/architecture.md draws them.)"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("kernel", "platform", "services", "tools")


def modules_under(root: Path) -> dict[str, Path]:
    """Every module of the `council` package under `root`, by dotted name."""
    found = {}
    for path in sorted((root / "council").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of imports under `if TYPE_CHECKING:` (they never run)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def imports_of(modules: dict[str, Path], module: str) -> Iterator[tuple[str, int]]:
    """Each module of the package that `module` imports anywhere (in functions too), with the
    line: a name imported from a package counts as the submodule it is, else the package."""
    path = modules[module]
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_only(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom) or node.lineno in skip:
            continue
        if isinstance(node, ast.Import):
            yield from ((a.name, node.lineno) for a in node.names if a.name in modules)
            continue
        base = node.module or ""
        if node.level:
            parent = package.rsplit(".", node.level - 1)[0]
            base = f"{parent}.{base}" if base else parent
        for alias in node.names:
            if f"{base}.{alias.name}" in modules:
                yield f"{base}.{alias.name}", node.lineno
            elif base in modules:
                yield base, node.lineno


def layer(module: str) -> int:
    return LAYERS.index(module.split(".")[1])


def service(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "services" else None


def upward(modules: dict[str, Path]) -> list[str]:
    return [f"{m}:{line} imports {target}" for m in modules if m != "council"
            for target, line in imports_of(modules, m) if layer(target) > layer(m)]


def across_services(modules: dict[str, Path]) -> list[str]:
    return [f"{m}:{line} imports {target}" for m in modules if service(m) is not None
            for target, line in imports_of(modules, m)
            if service(target) not in (None, service(m))]


def circles(modules: dict[str, Path]) -> list[list[str]]:
    """Groups of modules that import each other round a circle (Tarjan's strongly connected
    components of more than one module)."""
    graph = {m: {t for t, _ in imports_of(modules, m) if t != m} for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = stack[stack.index(node):]
            del stack[stack.index(node):]
            if len(component) > 1:
                found.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return found


MODULES = modules_under(ROOT)


def test_every_module_sits_in_a_layer() -> None:
    assert {m.split(".")[1] for m in MODULES if m != "council"} == set(LAYERS)


def test_no_layer_imports_one_above_it() -> None:
    assert upward(MODULES) == []


def test_services_meet_only_through_the_log_and_published_contracts() -> None:
    assert across_services(MODULES) == []


def test_no_import_circles() -> None:
    assert circles(MODULES) == []


def test_the_checks_find_what_they_look_for(tmp_path: Path) -> None:
    files = {
        "council/kernel/money.py": "from council.platform import sql\n",
        "council/platform/sql.py": "def f():\n    from council.kernel import money\n",
        "council/services/a/app.py": "from council.services.b.app import X\n",
        "council/services/b/app.py": "from ..a import app\nX = 1\n",
        "council/tools/cli.py": "import council.services.a.app\n",
    }
    for name in ("council", "council/kernel", "council/platform", "council/services",
                 "council/services/a", "council/services/b", "council/tools"):
        (tmp_path / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / name / "__init__.py").write_text("")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    modules = modules_under(tmp_path)
    assert upward(modules) == ["council.kernel.money:1 imports council.platform.sql"]
    assert across_services(modules) == [
        "council.services.a.app:1 imports council.services.b.app",
        "council.services.b.app:1 imports council.services.a.app"]
    assert sorted(circles(modules)) == [["council.kernel.money", "council.platform.sql"],
                                        ["council.services.a.app", "council.services.b.app"]]
