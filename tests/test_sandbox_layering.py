"""The sandbox package's own layering, read from its import graph (grimp, import-linter's graph library), with
function-level and ``TYPE_CHECKING`` imports counted: no import cycle among its modules, and the code that runs
inside the isolation (``sandbox/inside/``, shipped to the sandbox interpreter as bytecode) imports only the
standard library, each other and, lazily, numpy and pandas (``sandbox/inside/__init__.py``)."""

from __future__ import annotations

import sys

import grimp
import pytest

from sandbox.bytecode import SERVER_MODULES

INSIDE = "sandbox.inside"
# Imported inside functions that read back values of their types a program built (sandbox/inside/__init__.py).
LAZY_THIRD_PARTY = {"numpy", "pandas"}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("sandbox", include_external_packages=True, exclude_type_checking_imports=False,
                             cache_dir=None)


def imports_on_cycles(graph: grimp.ImportGraph, package: str) -> list[str]:
    """``importer -> imported`` for each import between two modules of ``package`` whose imported module
    leads back to its importer: every import that holds a cycle together."""
    modules = {m for m in graph.modules if m == package or m.startswith(package + ".")}
    return sorted(f"{importer} -> {imported}" for importer in modules
                  for imported in graph.find_modules_directly_imported_by(importer) & modules
                  if graph.chain_exists(importer=imported, imported=importer))


def test_sandbox_has_no_import_cycles(graph):
    assert imports_on_cycles(graph, "sandbox") == []


def test_the_cycle_check_finds_a_cycle():
    cyclic = grimp.ImportGraph()
    for importer, imported in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")):
        cyclic.add_import(importer=importer, imported=imported)
    assert imports_on_cycles(cyclic, "p") == ["p.a -> p.b", "p.b -> p.c", "p.c -> p.a"]


def test_the_inside_imports_only_the_standard_library_and_itself(graph):
    inside = {m for m in graph.modules if m == INSIDE or m.startswith(INSIDE + ".")}
    outside = sorted(f"{importer} -> {imported}" for importer in inside
                     for imported in graph.find_modules_directly_imported_by(importer) - inside
                     if imported.split(".")[0] not in sys.stdlib_module_names | LAZY_THIRD_PARTY)
    assert outside == []


def test_every_module_inside_is_shipped_to_the_sandbox(graph):
    """What is under sandbox/inside/ is what the server is made of (sandbox.bytecode sends those modules)."""
    inside = {m for m in graph.modules if m.startswith(INSIDE + ".") and not graph.find_children(m)}
    assert inside == set(SERVER_MODULES)
