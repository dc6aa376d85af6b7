"""A deployment's secret kept in a file of its data folder, made once by whichever process needs it
first.

Several processes of a deployment start together and each may find the file missing. Each writes
its candidate to a file of its own (mode 0600) and links it into place: a link is atomic and never
replaces a file another process linked first, so every process ends up reading the same secret,
and none reads a file half written (as `open(O_EXCL)` and then writing would let it).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable


def configured(value: str, variable: str) -> bytes:
    """A secret given in the environment instead (processes on several hosts without one data
    folder share it so): at least 32 characters."""
    if len(value) < 32:
        raise RuntimeError(f"{variable} must have at least 32 characters")
    return value.encode("utf-8")


def made_once(path: str | os.PathLike, make: Callable[[], bytes]) -> bytes:
    """The file's bytes; if there is no file yet, `make()`'s, written there first."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(make())
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first: theirs is the deployment's
        finally:
            os.unlink(tmp)
    return path.read_bytes()
