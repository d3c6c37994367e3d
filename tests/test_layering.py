"""Imports only point down the layers of ARCHITECTURE.md."""

import ast
import pathlib

import pytest

LAYERS = ["field", "sharing", "net", "mpc", "prep", "lang", "ledger", "storage", "app"]
SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "enigma"


def _imported_layers(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # relative import inside a layer package: ".." reaches a sibling layer
                if node.level >= 2 and node.module:
                    names = ["enigma." + node.module]
                else:
                    continue
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "enigma" and len(parts) > 1 and parts[1] in LAYERS:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_point_down(layer: str) -> None:
    rank = LAYERS.index(layer)
    for path in (SRC / layer).rglob("*.py"):
        for other in _imported_layers(path):
            assert LAYERS.index(other) <= rank, (
                f"{path.relative_to(SRC)} (layer {layer}) imports enigma.{other}, "
                "a higher layer"
            )


def test_modules_beside_the_layers_import_none() -> None:
    """`enigma/*.py` (shared helpers such as atomic files) sit below every layer."""
    for path in SRC.glob("*.py"):
        assert not _imported_layers(path), f"{path.relative_to(SRC)} imports a layer"
