"""``ops-manager completion bash|zsh`` and the reusable progress line (issue 16)."""

from __future__ import annotations

import io
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ops_manager.cli import COMMANDS, main
from ops_manager.cli._progress import ProgressLine, progress_line
from tests.fleet_fixtures import make_fleet_repo

CLI = Path(sys.executable).parent / "ops-manager"


def script(capsys: pytest.CaptureFixture[str], shell: str) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def test_bash_script_is_valid_and_lists_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = script(capsys, "bash")
    path = tmp_path / "ops-manager.bash"
    path.write_text(text)
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    for name in COMMANDS:
        assert f" {name}" in text
    for flag in ("--repo", "--format", "--deterministic-order", "--max-parallel", "--pretty"):
        assert flag in text


def _complete(path: Path, *words: str) -> list[str]:
    """What bash offers for the last of ``words`` (run through the generated function)."""
    cword = len(words)
    body = (
        f"source {path}; COMP_WORDS=(ops-manager {' '.join(words)}); COMP_CWORD={cword};"
        ' _ops_manager; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    out = subprocess.run(["bash", "-c", body], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_bash_completes_commands_and_their_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.bash"
    path.write_text(script(capsys, "bash"))
    assert _complete(path, "fleet-st") == ["fleet-status"]
    assert _complete(path, "status", "--fo") == ["--format"]
    # a flag only fleet-reconcile has is not offered for status
    assert _complete(path, "status", "--max-") == []
    assert "--max-parallel" in _complete(path, "fleet-reconcile", "--max-")
    assert _complete(path, "completion", "") == ["bash", "zsh"]


def test_zsh_script_names_commands_and_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = script(capsys, "zsh")
    assert text.startswith("#compdef ops-manager")
    for name in COMMANDS:
        assert f"'{name}:" in text
    assert "'--format:value:_files'" in text and "'--pretty'" in text
    zsh = shutil.which("zsh")
    if zsh:
        path = tmp_path / "_ops-manager"
        path.write_text(text)
        assert subprocess.run([zsh, "-n", str(path)], capture_output=True).returncode == 0


def test_completion_needs_a_known_shell(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "fish"]) == 1
    assert capsys.readouterr() == ("", "error: completion needs a shell: bash or zsh\n")
    assert main(["completion"]) == 1


def test_progress_line_verb_and_silence_off_a_terminal() -> None:
    stream = io.StringIO()
    ticks = iter([0.0, 0.5, 1.0])
    line = ProgressLine(stream, clock=lambda: next(ticks), verb="supervised")
    line(1, 2, 0)
    line(2, 2, 1)
    line.finish()
    assert stream.getvalue() == (
        "\rsupervised 1/2 loops (0 failed) 0.5s\x1b[K\rsupervised 2/2 loops (1 failed) 1.0s\x1b[K\n"
    )
    assert progress_line(io.StringIO()) is None


def test_fleet_reconcile_progress_on_a_terminal_only(tmp_path: Path) -> None:
    repo = make_fleet_repo(tmp_path / "fleet", ["a", "b", "c"], without_artifacts=["c"])
    argv = [str(CLI), "fleet-reconcile", "--repo", str(repo)]
    code, out, err = _stderr_on_a_terminal(argv)
    assert code == 0
    assert b"reconciled 3/3 loops (1 failed)" in err
    assert out.startswith(b"{")
    piped = subprocess.run(argv, capture_output=True, timeout=120)
    assert piped.returncode == 0 and piped.stderr == b""


def _stderr_on_a_terminal(argv: list[str]) -> tuple[int, bytes, bytes]:
    """Run ``argv`` with stderr on a pseudo-terminal; ``(exit code, stdout, stderr)``."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=slave, timeout=120)
    finally:
        os.close(slave)
    err = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        err += data
    os.close(master)
    return proc.returncode, proc.stdout, err


def test_supervise_once_progress_on_a_terminal_only(tmp_path: Path) -> None:
    repo = make_fleet_repo(tmp_path / "fleet", ["a", "b", "c"], without_artifacts=["c"])
    argv = [str(CLI), "supervise", "--repo", str(repo), "--once"]
    code, out, err = _stderr_on_a_terminal(argv)
    assert code == 0
    assert b"reconciled 3/3 loops (1 failed)" in err
    # the structured tick line still follows, on a line of its own
    assert err.rstrip().splitlines()[-1].lstrip().startswith(b"{")
    assert out.startswith(b"ops-manager supervise: metrics on http://127.0.0.1:")
    piped = subprocess.run(argv, capture_output=True, timeout=120)
    assert piped.returncode == 0
    assert b"\r" not in piped.stderr and b"reconciled 3/3" not in piped.stderr
    assert len(piped.stderr.splitlines()) == 1  # only the JSON tick line
