"""Where `examine` reads a file's bytes from: the file on disk (`FileSource`), or what a
streaming capture kept of an archive member (`santacore.identity.image.ImageSource`).

Identity needs only a few ranges of a Mach-O file (headers, load commands, signature,
`__info_plist`) and the hashes of its code pages; a `ByteSource` answers exactly those, so
the same code describes a file and a streamed member. No heavy imports here.
"""

from __future__ import annotations

import os
from typing import Protocol

from santacore import _core


class ByteSource(Protocol):
    """A file's bytes, read by range."""

    @property
    def name(self) -> str:
        """What error messages call the file."""
        ...

    @property
    def size(self) -> int: ...

    def read(self, offset: int, size: int) -> bytes:
        """Up to `size` bytes at `offset`: fewer only where the file ends (as a file read)."""
        ...

    def code_page_hashes(self, offset: int, length: int, page_size: int, hash_type: int) -> list[bytes]:
        """`_core.code_page_hashes` of `[offset, offset + length)`: ValueError if it cannot."""
        ...


class FileSource:
    """A file on disk, opened for each read (as `examine` always read it)."""

    def __init__(self, path: str | os.PathLike[str], size: int | None = None) -> None:
        self.path = os.fspath(path)
        self._size = size

    @property
    def name(self) -> str:
        return self.path

    @property
    def size(self) -> int:
        if self._size is None:
            self._size = os.stat(self.path).st_size
        return self._size

    def read(self, offset: int, size: int) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(size)

    def code_page_hashes(self, offset: int, length: int, page_size: int, hash_type: int) -> list[bytes]:
        return _core.code_page_hashes(self.path, offset=offset, length=length, page_size=page_size, hash_type=hash_type)


def as_source(where: str | os.PathLike[str] | ByteSource) -> ByteSource:
    """A path becomes a `FileSource`; a source stays itself."""
    if isinstance(where, (str, os.PathLike)):
        return FileSource(where)
    return where
