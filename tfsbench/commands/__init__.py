"""One module per subcommand; each defines `register(subparsers: Subparsers) -> None`."""

from __future__ import annotations

import argparse
from typing import Any, Protocol


class Subparsers(Protocol):
    """What a command's `register` needs from the public return value of
    `ArgumentParser.add_subparsers()`: its `add_parser` (argparse's class for it is private)."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...
