"""The package's layering: every module imports only its own layer or those below it, there are
no import cycles, and ``import rnaernie`` loads no training, evaluation or command-line code.

Layers, lowest first (a module may import its own layer and any lower one; within a layer the
order of :data:`WITHIN` is kept too)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import rnaernie

ROOT = Path(rnaernie.__file__).parent
LAYERS = [
    {"rnaernie.vocab", "rnaernie._core", "rnaernie.io", "rnaernie.kernels"},  # leaves
    {
        "rnaernie.tokenizer",
        "rnaernie.motifs",
        "rnaernie.masking",
        "rnaernie._masking_ref",
        "rnaernie.homology",
        "rnaernie._homology_ref",
        "rnaernie.kmer",
        "rnaernie.structure",
    },  # native wrappers
    {"rnaernie.model"},
    {"rnaernie.predict", "rnaernie.screen"},
    {"rnaernie.training", "rnaernie.evaluate"},
    {"rnaernie.api"},
    {"rnaernie.cli"},
    {"rnaernie"},  # the package's __init__
]
WITHIN = [("rnaernie.evaluate", "rnaernie.training"), ("rnaernie.screen", "rnaernie.predict")]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


KNOWN = {_module_name(p) for p in ROOT.rglob("*.py")} | {"rnaernie._core"}


def _imports(path: Path) -> set[str]:
    """Every rnaernie module ``path`` imports, at any depth (functions included)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("rnaernie")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            if mod.startswith("rnaernie"):
                subs = {f"{mod}.{a.name}" for a in node.names} & KNOWN  # `from . import x`
                out |= subs or {mod}
    return {m for m in out if m in KNOWN and m != name}


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in ROOT.rglob("*.py") if "kernels" not in p.parts}


def _layer(module: str) -> tuple[int, str]:
    best = None
    for k, group in enumerate(LAYERS):
        for prefix in group:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > len(best[1])
            ):
                best = (k, prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def test_every_import_goes_down_the_layers():
    bad = []
    for mod, deps in _graph().items():
        k, unit = _layer(mod)
        for dep in deps:
            j, dep_unit = _layer(dep)
            if j > k or (j == k and dep_unit != unit and (dep_unit, unit) in WITHIN):
                bad.append(f"{mod} -> {dep}")
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycles.append(" -> ".join([*stack[stack.index(d) :], d]))
            elif d not in state:
                visit(d, [*stack, d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    # a package importing its own submodules (its __init__) is not a cycle unless they import it
    cycles = [
        c for c in cycles if not all(x.startswith(c.split(" -> ")[0]) for x in c.split(" -> "))
    ]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_import_rnaernie_is_light(tmp_path):
    code = (
        "import sys, rnaernie; heavy = sorted(m for m in sys.modules if m.startswith(("
        "'rnaernie.training', 'rnaernie.evaluate', 'rnaernie.cli', 'sklearn', 'triton')));"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path)  # `python -c` puts the cwd (not the source tree) first  # fmt: skip
    assert out.stdout.strip() == ""


def test_shipped_names_load_through_the_model_classes():
    from rnaernie import RnaErnieForPreTraining, RnaErnieModel

    enc = RnaErnieModel.from_pretrained("rnaernie-tiny")
    pt = RnaErnieForPreTraining.from_pretrained("rnaernie-tiny")
    assert enc.config.hidden_size == pt.config.hidden_size == 256
