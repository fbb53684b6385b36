"""Single-point mutants of a function body by AST edits, for the HumanEval+ parity test: a comparison
operator flipped, an integer constant moved by one, ``and``/``or`` swapped, ``+``/``-`` swapped, or one
statement dropped. Each edit site is numbered in one traversal order, so a seed picks the same mutants
on every machine."""

from __future__ import annotations

import ast
import copy
import random

FLIPPED = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
           ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
SWAPPED = {ast.And: ast.Or, ast.Or: ast.And, ast.Add: ast.Sub, ast.Sub: ast.Add}
HEADER = "def _body():\n"


class _Edit(ast.NodeTransformer):
    """Counts the edit sites; applies the ``target``-th (none when ``target`` is None)."""

    def __init__(self, target: int | None):
        self.target = target
        self.count = 0

    def _site(self) -> bool:
        hit = self.count == self.target
        self.count += 1
        return hit

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        for index, op in enumerate(node.ops):
            if self._site():
                node.ops[index] = FLIPPED[type(op)]()
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if type(node.value) is int:
            for delta in (1, -1):
                if self._site():
                    return ast.Constant(node.value + delta)
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        if self._site():
            node.op = SWAPPED[type(node.op)]()
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if type(node.op) in SWAPPED and self._site():
            node.op = SWAPPED[type(node.op)]()
        return node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        for name in ("body", "orelse", "finalbody"):
            statements = getattr(node, name, None)
            if isinstance(statements, list) and len(statements) > 1:
                for index in range(len(statements)):
                    if self._site():
                        del statements[index]
                        break
        return node


def mutants(body: str, count: int, seed: int) -> list[str]:
    """Up to ``count`` distinct mutants of a function body (indented as HumanEval's canonical solutions),
    each differing from ``body`` in one place; [] when the body does not parse on its own."""
    try:
        tree = ast.parse(HEADER + body)
    except SyntaxError:
        return []
    counter = _Edit(None)
    counter.visit(copy.deepcopy(tree))
    original = ast.unparse(tree)
    out: list[str] = []
    sites = list(range(counter.count))
    random.Random(seed).shuffle(sites)
    for site in sites:
        mutated = _Edit(site).visit(copy.deepcopy(tree))
        try:
            text = ast.unparse(ast.fix_missing_locations(mutated))
            compile(text, "<mutant>", "exec")
        except (SyntaxError, ValueError):
            continue
        if text != original and text not in out:
            out.append(text)
        if len(out) == count:
            break
    return [text.split("\n", 1)[1] + "\n" for text in out]
