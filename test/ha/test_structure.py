"""How the integration's modules depend on each other."""

from __future__ import annotations

import ast
from pathlib import Path

from custom_components.zigbee2mqtt_ha.const import DOMAIN

COMPONENT = Path(__file__).resolve().parents[2] / "custom_components" / DOMAIN


def local_imports(path: Path) -> set[str]:
    """The integration's modules that `path` imports, type-checking-only imports included."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module is None:
                imported.update(alias.name for alias in node.names)
            else:
                imported.add(node.module.split(".")[0])
    return imported


def test_modules_import_in_one_direction() -> None:
    """No import circle, not even one hidden behind TYPE_CHECKING (the api client at the bottom)."""
    graph = {path.stem: local_imports(path) for path in sorted(COMPONENT.glob("*.py"))}
    assert graph["api"] == set(), "api.py knows nothing of the rest"

    def cycle_from(start: str, path: list[str]) -> list[str] | None:
        for target in sorted(graph.get(path[-1], ())):
            if target == start:
                return [*path, target]
            if target not in path:
                found = cycle_from(start, [*path, target])
                if found:
                    return found
        return None

    cycles = [cycle for module in graph if (cycle := cycle_from(module, [module]))]
    assert cycles == []
