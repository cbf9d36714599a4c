"""Entry points on ``sys.path``, read without :mod:`importlib.metadata` and without pluggy.

Split out of :mod:`ops_manager.plugins` so that code which only needs to know *which*
plugins are installed (the alert config memo of :mod:`ops_manager.engine._schema_memo`)
can ask without importing pluggy or any plugin.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator


def entry_points(group: str) -> Iterator[tuple[str, str, str]]:
    """``(name, "module:attr", dist-info dir)`` of every entry point in ``group``."""
    for entry in sys.path:
        try:
            children = sorted(os.listdir(entry or "."))
        except OSError:
            continue  # a zip, a missing dir
        for child in children:
            if not child.endswith((".dist-info", ".egg-info")):
                continue
            dist_dir = os.path.join(entry or ".", child)
            try:
                with open(os.path.join(dist_dir, "entry_points.txt"), encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                continue
            section = None
            for raw in text.splitlines():
                line = raw.strip()
                if not line or line[0] in "#;":
                    continue
                if line.startswith("[") and line.endswith("]"):
                    section = line[1:-1].strip()
                elif section == group and "=" in line:
                    name, _, value = line.partition("=")
                    yield name.strip(), value.split("[", 1)[0].strip(), dist_dir


def dist_name_version(dist_dir: str) -> tuple[str, str]:
    """``(Name, Version)`` from a dist-info's ``METADATA`` (or an egg-info's ``PKG-INFO``)."""
    name = version = ""
    for metadata in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(dist_dir, metadata), encoding="utf-8") as f:
                for line in f:
                    if not line.strip():
                        break  # end of the headers
                    key, _, value = line.partition(":")
                    if key == "Name" and not name:
                        name = value.strip()
                    elif key == "Version" and not version:
                        version = value.strip()
        except OSError:
            continue
        break
    return name, version
