"""The book's pages as ``_toc.yml`` lists them: one reader for every tool and test that needs them."""

from __future__ import annotations

from pathlib import Path

import yaml


def toc_files(toc_path: Path) -> list[str]:
    """Every ``file:`` entry of a Jupyter Book table of contents, the root first, in reading order."""
    toc = yaml.safe_load(Path(toc_path).read_text())
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(toc.get("parts", toc.get("chapters", [])))
    return files
