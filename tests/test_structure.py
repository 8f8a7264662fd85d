"""The module picture: lower layers never import upper ones, no import cycles, and each concept has one home."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from rolegen.offline.validate import STANDBY_CLUSTER_KEYS

PACKAGE = Path(__file__).resolve().parent.parent / "generator" / "rolegen"
LAB = PACKAGE.parent / "rolegen_lab"  # the lab's wing: depends on rolegen, never the reverse
SCHEMAS = PACKAGE.parent.parent / "schemas"
CHART = PACKAGE.parent.parent / "chart"
LOWER = ("rolegen.procedures",)  # below the CLI verbs
UPPER = ("rolegen.commands", "rolegen.cli")  # rolegen.cli is a package: one module per verb group
CLI = ("rolegen.cli", "rolegen_lab.cli")  # Typer wiring: the product's, and the lab's verb group


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted([*PACKAGE.rglob("*.py"), *LAB.rglob("*.py")])}


def _typing_only(tree: ast.Module) -> set[int]:
    """ids of import nodes under `if TYPE_CHECKING:`: annotations, never executed."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return out


def _imports(module: str) -> set[str]:
    """rolegen modules `module` imports anywhere (function-level imports included)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    skip = _typing_only(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def _is(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") or module.startswith(p + "_") for p in prefixes)


def test_procedures_lab_and_drills_never_import_the_cli_or_its_verbs() -> None:
    upward = {m: sorted(d for d in deps if _is(d, UPPER)) for m, deps in GRAPH.items() if _is(m, LOWER)}
    assert {m: d for m, d in upward.items() if d} == {}


def test_the_lab_depends_on_the_product_and_never_the_reverse() -> None:
    """rolegen_lab adds `rolegen lab` through an entry point; the product imports nothing of it, and the lab's
    parts below its own CLI use the product as a user's code would: never its verbs or CLI wiring."""
    assert any(m.startswith("rolegen_lab.") for m in MODULES)
    product = {m for m in MODULES if m == "rolegen" or m.startswith("rolegen.")}
    assert {m: sorted(d for d in GRAPH[m] if _is(d, ("rolegen_lab",))) for m in product
            if any(_is(d, ("rolegen_lab",)) for d in GRAPH[m])} == {}
    lab_parts = {m for m in MODULES if _is(m, ("rolegen_lab",))} - {"rolegen_lab.cli"}
    assert {m: sorted(d for d in GRAPH[m] if _is(d, UPPER)) for m in lab_parts
            if any(_is(d, UPPER) for d in GRAPH[m])} == {}


def test_verbs_do_not_import_each_other() -> None:
    verbs = {m for m in MODULES if m.startswith("rolegen.commands.")}
    assert {m: sorted(GRAPH[m] & verbs) for m in verbs if GRAPH[m] & verbs} == {}


# The procedures behind the role verbs: peers, built from shared steps and checks (the handover, the re-seed,
# the checks and rules modules), never from each other.
PROCEDURES = {f"rolegen.procedures.{name}" for name in ("switchover", "failover", "failback", "reseed")}


def test_procedures_do_not_import_each_other() -> None:
    assert set(MODULES) >= PROCEDURES
    assert {m: sorted(GRAPH[m] & PROCEDURES) for m in PROCEDURES if GRAPH[m] & PROCEDURES} == {}
    shared = {m for m in MODULES if m.startswith("rolegen.procedures.")} - PROCEDURES
    assert {m: sorted(GRAPH[m] & PROCEDURES) for m in shared if GRAPH[m] & PROCEDURES} == {}


def test_only_the_cli_prints_results_and_maps_exit_codes() -> None:
    """Verbs return results (rolegen.results) or raise; only the CLI package reaches the console or Typer."""
    console_users = sorted(m for m, deps in GRAPH.items() if "rolegen.console" in deps and not _is(m, CLI))
    assert console_users == []
    typer_users = sorted(
        m for m, p in MODULES.items()
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.Import | ast.ImportFrom)
        and any((getattr(node, "module", None) or a.name).split(".")[0] == "typer" for a in node.names)
    )
    assert {m for m in typer_users if not _is(m, CLI)} == {"rolegen.console", "rolegen.prompt"}


def test_the_import_graph_has_no_cycle() -> None:
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(module):], module]))
        if module in done:
            return
        for dep in sorted(GRAPH[module]):
            visit(dep, [*path, module])
        done.add(module)

    for module in sorted(GRAPH):
        visit(module, [])


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """String constants of a module's code (docstrings left out), with their line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body and isinstance(node.body[0], ast.Expr)
    }
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def test_the_generated_directory_is_named_once() -> None:
    found = [f"{m}:{line}" for m, p in MODULES.items() if m != "rolegen.offline.load"
             for line, text in _code_strings(p) if re.search(r"(^|/)generated(/|$)", text)]
    assert found == [], "use rolegen.offline.load.GENERATED_DIR"


def test_patroni_role_values_are_mapped_once() -> None:
    found = [f"{m}:{line}" for m, p in MODULES.items() if m != "rolegen.cluster.site_state"
             for line, text in _code_strings(p) if text == "standby_leader"]
    assert found == [], "use rolegen.cluster.site_state.rolegen_role"


def test_a_cluster_client_is_built_by_one_factory() -> None:
    """kubectl.cluster_for builds a site's client from its spec (and witness_cluster_for the witness's, from the
    spec's `witness:`); `import` adopts a site that has no spec yet."""
    builders = sorted({
        m for m, p in MODULES.items()
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Cluster"
    })
    assert builders == ["rolegen.cluster.kubectl", "rolegen.commands.import_site"]


def test_both_schemas_list_patronis_standby_cluster_keys() -> None:
    """host and port come from `peer`; `patroni.standby` holds the other keys Patroni accepts, no more."""
    environment = json.loads((SCHEMAS / "environment.schema.json").read_text())
    values = json.loads((CHART / "values.schema.json").read_text())
    expected = sorted(set(STANDBY_CLUSTER_KEYS) - {"host", "port"})
    assert sorted(environment["properties"]["patroni"]["properties"]["standby"]["properties"]) == expected
    assert sorted(values["properties"]["patroni"]["properties"]["standby"]["properties"]) == expected


def _calls(module: str, name: str) -> bool:
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
               for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))))


def test_every_verb_builds_the_same_site_pair_and_lease() -> None:
    """status, diff, apply and the role verbs reach their sites through rolegen.cluster.pair (site_pair or the
    procedures' load_pair on top of it), and only it builds the role-change lease and a product's site clients,
    and the client of the pair's witness (a third site: kubectl.witness_cluster_for, through pair.witness_lease)."""
    product = sorted(m for m in MODULES if m.startswith("rolegen."))
    assert [m for m in product if _calls(m, "Lease")] == ["rolegen.cluster.pair"]
    assert [m for m in product if _calls(m, "cluster_for")] == ["rolegen.cluster.pair"]
    assert [m for m in product if _calls(m, "witness_cluster_for")] == ["rolegen.cluster.pair"]
    for verb in ("status", "diff", "apply"):
        assert "rolegen.cluster.pair" in GRAPH[f"rolegen.commands.{verb}"], verb
    assert "rolegen.procedures.base" in GRAPH["rolegen.commands.roles"]
    assert "rolegen.cluster.pair" in GRAPH["rolegen.procedures.base"]
