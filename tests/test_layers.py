"""The package's floors (docs/architecture.md): no import cycles, no import up a floor.

Every import in gateway/ counts, including those inside functions (a deferred import
still ties the two modules together). A module may import its own floor or any floor
below; the sandbox stands apart and only the commands that run it may import it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gateway

ROOT = Path(gateway.__file__).parent

# Lowest first. A name stands for the module and, if it is a package, everything in it
# not named more precisely (the longest name wins: ``gateway.wire`` is floor 0 but
# ``gateway.wire.server``, which runs the app, is the top); ``gateway`` itself stands only
# for its __init__ (__version__).
FLOORS: tuple[tuple[str, ...], ...] = (
    # values, words, rendering and the protocol code every other floor shares
    (
        "gateway",
        "gateway.config",
        "gateway.errors",
        "gateway.protect.rules",
        "gateway.ping.requests",
        "gateway.ping.phone",
        "gateway.ledger",
        "gateway.observe",
        "gateway.wire",
    ),
    # the seams: clients, the shield, the protections, the request middleware
    (
        "gateway.ping.forwarder",
        "gateway.coreapi.client",
        "gateway.coreapi.credentials",
        "gateway.shield",
        "gateway.protect",
        "gateway.observe.middleware",
    ),
    # the endpoints
    ("gateway.ping", "gateway.coreapi", "gateway.openapi", "gateway.observe.status"),
    # the one composition root
    ("gateway.app",),
    # what runs it
    ("gateway.wire.server", "gateway.cli", "gateway.__main__"),
)
SANDBOX = "gateway.sandbox"
SANDBOX_USERS = ("gateway.wire.server", "gateway.cli")


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> set[str]:
    """The gateway modules ``module`` imports, anywhere in its body."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # ``from package import module`` imports that module; ``from module import
            # name`` the module itself.
            for alias in node.names:
                full = f"{source}.{alias.name}"
                names.append(full if full in MODULES else source)
    found = set()
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _floor(module: str) -> int | None:
    """The floor of the longest name that is the module or a package holding it."""
    best: tuple[int, int] | None = None
    for floor, names in enumerate(FLOORS):
        for name in names:
            holds = module == name or (name != "gateway" and module.startswith(name + "."))
            if holds and (best is None or len(name) > best[0]):
                best = (len(name), floor)
    return None if best is None else best[1]


def _in_sandbox(module: str) -> bool:
    return module == SANDBOX or module.startswith(SANDBOX + ".")


def test_every_module_has_a_floor() -> None:
    assert [m for m in MODULES if not _in_sandbox(m) and _floor(m) is None] == []


def test_no_import_goes_up_a_floor() -> None:
    upward = []
    for module, imported in GRAPH.items():
        if _in_sandbox(module):
            continue
        floor = _floor(module)
        assert floor is not None
        for target in imported:
            if _in_sandbox(target):
                continue
            target_floor = _floor(target)
            assert target_floor is not None, target
            if target_floor > floor:
                upward.append(f"{module} (floor {floor}) -> {target} (floor {target_floor})")
    assert upward == []


def test_the_sandbox_stands_apart() -> None:
    into = sorted(
        f"{module} -> {target}"
        for module, imported in GRAPH.items()
        if not _in_sandbox(module) and not module.startswith(SANDBOX_USERS)
        for target in imported
        if _in_sandbox(target)
    )
    out_of = sorted(
        f"{module} -> {target}"
        for module, imported in GRAPH.items()
        if _in_sandbox(module)
        for target in imported
        if not _in_sandbox(target) and _floor(target) != 0
    )
    assert (into, out_of) == ([], [])


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components: any with two or more modules is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert cycles == []


def test_the_check_sees_imports_inside_functions() -> None:
    # gateway/app.py imports the Redis shield store only when it is configured.
    assert "gateway.shield.redis_store" in GRAPH["gateway.app"]
    assert _floor("gateway.shield.redis_store") == 1
    assert _floor("gateway") == 0
