"""Where in a TOML file a problem is, named as people read the file: ``rules[0] ('sre-prod').actions[1]``."""

from __future__ import annotations


def location(loc: tuple[int | str, ...], data: object) -> str:
    """The place of a pydantic error location ``loc`` in the parsed file ``data``; a table with a
    ``name`` is named after its index, so ``clouds[1] ('eu-nl').password`` says which one."""
    text = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                text += f" ({node['name']!r})"
        else:
            text += ("." if text else "") + part
            node = node.get(part) if isinstance(node, dict) else None
    return text
