"""argparse tuned to the contract's CLI conventions (``loop.md`` §0.1)."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any, NoReturn

from ops_manager.engine.settings import choice as choice
from ops_manager.engine.settings import nonneg_int as nonneg_int
from ops_manager.engine.settings import positive_int as positive_int
from ops_manager.engine.settings import require as require
from ops_manager.errors import OpsError


class CommandParser(argparse.ArgumentParser):
    """Long flags only, no prefix abbreviation, contract-style errors.

    Unknown argument: usage on stdout, ``error: unknown argument: <arg>`` on stderr, exit 1.
    A flag missing its value: ``error: <flag> requires a value``, exit 1.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        self._adding = False
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        """As argparse's; see :meth:`_get_formatter`."""
        self._adding = True
        try:
            return super().add_argument(*args, **kwargs)
        finally:
            self._adding = False

    def _get_formatter(self) -> argparse.HelpFormatter:
        # add_argument builds a formatter only to check a metavar tuple against nargs,
        # which does not depend on the width; argparse's default width asks the terminal
        # (importing shutil, with bz2 and lzma) for each of a command's ~40 flags. Help and
        # usage text still get the terminal's width.
        if self._adding:
            factory: Any = self.formatter_class  # typeshed's protocol only declares prog
            formatter: argparse.HelpFormatter = factory(prog=self.prog, width=80)
            return formatter
        return super()._get_formatter()

    def error(self, message: str) -> NoReturn:
        match = re.match(r"unrecognized arguments: (.*)", message)
        if match:
            self.print_usage(sys.stdout)
            raise OpsError(f"unknown argument: {match.group(1).split(' ')[0]}")
        match = re.match(r"argument (\S+?)(?:/\S+)?: expected one argument", message)
        if match:
            raise OpsError(f"{match.group(1)} requires a value")
        raise OpsError(message)
