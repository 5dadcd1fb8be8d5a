"""The package has no import circles (import-linter checks the layers; this checks that no two modules
need each other, directly or through others)."""

from __future__ import annotations

import grimp


def test_no_module_of_the_bot_imports_itself_through_others() -> None:
    graph = grimp.build_graph("bot")
    circles = sorted(
        {
            tuple(sorted((module, imported)))
            for module in graph.modules
            for imported in graph.find_modules_directly_imported_by(module)
            if graph.chain_exists(importer=imported, imported=module)
        }
    )
    assert circles == []
