"""The `ragqa` command: registers every command on the app and turns RagqaError into one clear line."""

from __future__ import annotations

import os
import sys

from ragqa.cli import render
from ragqa.cli.app import app
from ragqa.errors import RagqaError

# isort: split
# Importing a command module registers its commands; ingest, search, ... come first in `ragqa --help`.
from ragqa.cli import commands  # noqa: F401

# isort: split
from ragqa.cli import answer, doctor, evaluate, graph, models, serve  # noqa: F401

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except RagqaError as e:
        render.error(str(e))
        sys.exit(1)
    except KeyboardInterrupt:
        render.interrupted()
        sys.exit(130)
    except Exception as e:
        if os.environ.get("RAGQA_DEBUG"):
            raise
        render.error(f"{type(e).__name__}: {e} (set RAGQA_DEBUG=1 for the traceback)")
        sys.exit(1)
