"""``ops-manager completion bash|zsh``: print a shell completion script."""

from __future__ import annotations

import argparse
import sys

from ops_manager.cli._parser import CommandParser
from ops_manager.errors import OpsError

HELP = """Print a completion script for bash or zsh, generated from the commands' own flag
declarations. bash: source <(ops-manager completion bash) (or save it under
~/.local/share/bash-completion/completions/ops-manager); zsh: source <(ops-manager completion
zsh), or save it as _ops-manager on your $fpath."""


def configure(p: CommandParser) -> None:
    """Declare the one positional argument: the shell."""
    p.add_argument("shell", nargs="?", metavar="SHELL", help="bash | zsh")


def run(args: argparse.Namespace) -> int:
    """Write the script for the requested shell to stdout."""
    from ops_manager.cli import COMMANDS
    from ops_manager.cli._completion import bash_script, command_flags, zsh_script

    if args.shell not in ("bash", "zsh"):
        raise OpsError("completion needs a shell: bash or zsh")
    listed = {name: entry for name, entry in COMMANDS.items() if name != "completion"}
    flags = command_flags(listed)
    if args.shell == "bash":
        sys.stdout.write(bash_script(flags))
    else:
        sys.stdout.write(zsh_script(flags, {name: s for name, (_, s) in listed.items()}))
    return 0
