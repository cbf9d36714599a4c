"""Session set-up shared by every test module."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_CACHE: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    # the crash sweeps skip without strace on a developer machine; CI must run them
    if os.environ.get("CI") and shutil.which("strace") is None:
        raise pytest.UsageError("CI needs strace for the crash sweeps: scripts/install-strace.sh")
    # the schema memo (engine/_schema_memo.py) writes to the user's cache directory; the
    # suite (and every CLI process it starts, which inherits the environment) gets its own
    if "OPS_MANAGER_CACHE_DIR" not in os.environ:
        _CACHE.append(tempfile.mkdtemp(prefix="ops-manager-test-cache-"))
        os.environ["OPS_MANAGER_CACHE_DIR"] = _CACHE[0]


def pytest_unconfigure(config: pytest.Config) -> None:
    for path in _CACHE:
        shutil.rmtree(path, ignore_errors=True)
