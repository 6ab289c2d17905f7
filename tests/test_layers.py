"""Imports flow one way: cli -> report -> experiments -> trainers -> eval -> runs -> attacks/losses/models/loaders
-> core. report/ presents what the layers below compute (it may read experiments' entries, eval's statistics and
audit, runs' layout, loaders' registry and core), and nothing below it imports it. No module imports a higher
layer (function-level imports included), and no two modules import each other in a circle.
`python tests/test_layers.py` prints the package graph."""
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"cli": 7, "report": 6, "experiments": 5, "trainers": 4, "eval": 3, "runs": 2,
          "attacks": 1, "losses": 1, "models": 1, "loaders": 1, "core": 0}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """module -> the project modules it imports, anywhere in its body."""
    graph = defaultdict(set)
    files = [ROOT / "cli.py", ROOT / "cli_options.py"] + \
        [p for pkg in LAYERS if (ROOT / pkg).is_dir() for p in (ROOT / pkg).rglob("*.py")]
    known = {module_name(p) for p in files}
    for path in files:
        me = module_name(path)
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name in known and name != me and package(name) in LAYERS:
                    graph[me].add(name)
    return graph


def package(module: str) -> str:
    return "cli" if module == "cli_options" else module.split(".")[0]


def test_no_import_goes_up_a_layer():
    bad = [(m, t) for m, targets in imports().items() for t in targets
           if LAYERS[package(t)] > LAYERS[package(m)]
           or (LAYERS[package(t)] == LAYERS[package(m)] and package(t) != package(m))]
    assert not bad, f"imports against the layering: {bad}"


def test_no_import_cycles():
    graph = imports()
    state, cycle = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            # a package's __init__ re-exporting its own modules is not a cycle of behaviour
            if package(nxt) == package(node) and (nxt == package(node) or node == package(nxt)):
                continue
            if state.get(nxt) == "open":
                cycle.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycle, f"import cycles: {cycle}"


def test_experiments_and_the_registries_import_no_torch():
    import subprocess

    code = "import sys, experiments, attacks, loaders, losses, models; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


if __name__ == "__main__":
    edges = sorted({(package(m), package(t)) for m, ts in imports().items() for t in ts if package(m) != package(t)})
    for src in sorted(LAYERS, key=LAYERS.get, reverse=True):
        print(f"{src:12} -> {', '.join(t for s, t in edges if s == src) or '-'}")
