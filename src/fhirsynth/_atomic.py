"""Atomic file writes: every output is written beside its destination and renamed into place.

A reader never sees a half-written file, and a failure leaves no temporary file behind.
:func:`check_output_path` refuses, before any work, a destination that cannot be created
(a regular file where a folder is needed, or a folder where a file is) and a file whose
folder does not exist.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from fhirsynth.errors import ConfigError

__all__ = ["PUBLICATION", "Publication", "atomic_path", "check_output_path", "set_release_modes",
           "write_bytes_atomic"]


def check_output_path(path: str | Path, *, kind: Literal["file", "folder"],
                      option: str = "--out", overwrite: bool | None = None) -> None:
    """Refuse an output ``path`` that cannot be written as a ``kind``.

    Parameters
    ----------
    path : str or Path
        The destination the user named.
    kind : {"file", "folder"}
        What will be written there.  A file's folder must exist (a mistyped path is not
        created); a folder is created with any missing parents.  An existing regular file
        in place of a folder is left to the caller (it knows whether an earlier output may
        be replaced).
    option : str
        The option named in the message.
    overwrite : bool, optional
        For a file: False refuses an existing one (the message names ``--overwrite``);
        None leaves that to the caller.

    Raises
    ------
    ConfigError
        A parent of ``path`` is an existing regular file (nothing can be created under it),
        ``kind`` is ``"file"`` and the folder of ``path`` does not exist, or ``path`` is an
        existing folder, or an existing file that ``overwrite`` False protects.
    """
    dest = Path(path)
    for parent in dest.parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise ConfigError(f"{option} ({dest}): {parent} is a file, not a folder, so "
                                  "nothing can be created under it")
            break
    if kind == "file" and not dest.parent.is_dir():
        # a mistyped folder is not created: the file would land somewhere unexpected
        raise ConfigError(f"the folder {dest.parent} of {option} does not exist; create it "
                          "first, or give an existing folder")
    if kind == "file" and dest.is_dir():
        raise ConfigError(f"{option} ({dest}) is a folder; give a file name")
    if kind == "file" and overwrite is False and os.path.lexists(dest):
        raise ConfigError(f"{option} ({dest}) already exists (use --overwrite to replace it)")


def temp_beside(dest: Path, *, private: bool = False) -> Path:
    """A new empty temporary file beside ``dest`` with the mode a plain ``open`` would give.

    ``mkstemp`` creates it 0600; every output then gets ``0666`` less the umask instead, so
    files written through a temporary name and files written directly (the FHIR NDJSON)
    carry the same permissions.  ``private`` (real patient data: the table ``fhirsynth
    ingest`` writes) keeps it 0600 whatever the umask.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    if private:
        os.chmod(tmp, 0o600)
        return Path(tmp)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    return Path(tmp)


def set_release_modes(tmp: Path, out: Path) -> None:
    """Give a release built in ``tmp`` (a ``mkdtemp`` folder, 0700) its final permissions.

    The folder gets the mode of the folder it replaces, else ``0777`` less the umask (as
    ``mkdir`` would), so that colleagues the umask lets read it can read the shareable
    release; ``internal/`` (the custodian's real-versus-synthetic reports) is 0700 whatever
    the umask.
    """
    if out.is_dir():
        mode = out.stat().st_mode & 0o7777
    else:
        mask = os.umask(0)
        os.umask(mask)
        mode = 0o777 & ~mask
    os.chmod(tmp, mode)
    internal = tmp / "internal"
    if internal.is_dir():
        os.chmod(internal, 0o700)


@contextmanager
def atomic_path(path: str | Path, *, private: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``
    (``private``: mode 0600, see :func:`temp_beside`)."""
    dest = Path(path)
    tmp_path = temp_beside(dest, private=private)
    try:
        yield tmp_path
        if private:  # (a writer that recreated the file gave it the umask's mode)
            os.chmod(tmp_path, 0o600)
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(path: str | Path, blob: bytes) -> Path:
    """Write ``blob`` to ``path`` through a synced temporary file; raises ``OSError``."""
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        fh.write(blob)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)


class Publication:
    """The moment a folder of outputs is moved into place, which a signal must not cut.

    Between renaming an earlier release aside and renaming the new one into place, an
    interrupt would leave neither; after the move, an interrupt would be reported as "no
    output was written" although the release is complete.  The CLI's signal handlers ask
    :meth:`defer` first: inside :meth:`moving` (and after it, once the outputs are in place)
    the signal is only remembered, and the command reports it when it ends, saying that
    the outputs are complete.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.moving_now = False
        self.published = False
        self.pending: type[BaseException] | None = None

    @contextmanager
    def moving(self) -> Iterator[None]:
        self.moving_now = True
        try:
            yield
            self.published = True
        finally:
            self.moving_now = False

    def defer(self, exc: type[BaseException]) -> bool:
        """Remember ``exc`` instead of raising it, when outputs are being or were placed."""
        if self.moving_now or self.published:
            self.pending = self.pending or exc
            return True
        return False


#: the process's one publication state (signals are process-wide too)
PUBLICATION = Publication()
