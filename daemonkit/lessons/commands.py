"""Sub-commands of this package. Placeholder until the feature lands."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this module's sub-commands to the CLI (none yet)."""
