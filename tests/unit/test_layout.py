"""The package layout tells the pipeline: every module imports only its own folder or folders below it.

Order (top to bottom): commands -> operate -> sources, delivery -> settings -> analysis -> common.
`sources` and `delivery` are siblings and do not import each other. Function-level (lazy) imports
count too. And no import cycles between modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "daemon" / "focusguard"
RANK = {"common": 0, "analysis": 1, "settings": 2, "sources": 3, "delivery": 3, "operate": 4, "commands": 5}


def imports_of(path: Path) -> set[str]:
    """Every focusguard module `path` imports (absolute names), at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("focusguard"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("focusguard"))
    return found


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_every_module_lives_in_a_stage_folder() -> None:
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == {"__init__", "__main__"}, top
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")} == set(RANK)


def test_imports_go_one_way_down_the_stages() -> None:
    known = modules()
    wrong = []
    for name, path in known.items():
        parts = name.split(".")
        if len(parts) < 2 or parts[1] not in RANK:
            continue
        own = parts[1]
        for target in imports_of(path):
            tparts = target.split(".")
            if len(tparts) < 2 or tparts[1] not in RANK or tparts[1] == own:
                continue
            if RANK[tparts[1]] >= RANK[own]:
                wrong.append(f"{name} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles_between_modules() -> None:
    known = modules()
    graph = {name: {t for t in imports_of(path) if t in known and t != name} for name, path in known.items()}
    # packages import their own submodules (re-exports): not a cycle of behaviour
    graph = {n: {t for t in ts if not t.startswith(n + ".") and not n.startswith(t + ".")} for n, ts in graph.items()}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, trail: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle.extend([*trail, node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*trail, node]):
                return True
        state[node] = 2
        return False

    for node in sorted(graph):
        if state.get(node) is None and visit(node, []):
            break
    assert not cycle, " -> ".join(cycle)
