"""Reading a policy file: bounded in size before any parsing happens.

A policy is a few kilobytes. Parsing YAML costs far more memory and time than the text
itself (10 MB took a minute and 700 MB), and a path such as ``/dev/zero`` never ends, so
at most :data:`MAX_POLICY_BYTES` + 1 bytes are ever read, and a larger file is refused
before it is parsed.
"""

from __future__ import annotations

import os
import stat

from .._errors import PolicyError, PolicyIssue

__all__ = ["MAX_POLICY_BYTES", "read_policy_text"]

#: The largest policy file accepted: 1 MiB.
MAX_POLICY_BYTES = 1 << 20


def _refuse(source: str, message: str) -> PolicyError:
    return PolicyError([PolicyIssue(source, None, "", message)])


def read_policy_text(source: str) -> str:
    """Read a policy file as text, refusing one larger than :data:`MAX_POLICY_BYTES`.

    Regular files and pipes (``failover check <(envsubst < routes.yaml)``) are read;
    directories and devices are refused.

    Raises:
        FileNotFoundError: there is no such file.
        PolicyError: too large, not a file, unreadable or not UTF-8.
    """
    try:
        with open(source, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if stat.S_ISDIR(mode):
                raise _refuse(source, "is a directory, not a policy file")
            if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
                raise _refuse(source, "is not a regular file (a device?); give a policy file")
            data = handle.read(MAX_POLICY_BYTES + 1)
    except (FileNotFoundError, PolicyError):
        raise
    except IsADirectoryError:
        raise _refuse(source, "is a directory, not a policy file") from None
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise _refuse(source, f"cannot read: {why}") from None
    if len(data) > MAX_POLICY_BYTES:
        raise _refuse(source, "the file is larger than 1 MiB, the most a policy may be")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _refuse(source, "not UTF-8 text") from None
