"""How a dump is compressed on its way to S3, and uncompressed on its way back.

pg_dump writes its custom format uncompressed and zstd compresses the stream on every core (the `zstandard`
package): pg_dump's own zlib at level 6 ran on one core and was most of a backup's time (docs/benchmarks.md). The
manifest says how a dump was compressed: "zstd" (format 2), or nothing, for a dump pg_dump compressed itself
(format 1, the backups made before), which pg_restore reads as it is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import BinaryIO

import zstandard

from webapp.backups import BackupError

ZSTD = "zstd"
MiB = 1024 * 1024


class Compressed:
    """The stream `source` compressed with zstd at `level`, read in blocks; workers on every core."""

    def __init__(self, source: BinaryIO, level: int):
        compressor = zstandard.ZstdCompressor(level=level, threads=-1)
        self._reader = compressor.stream_reader(source, read_size=MiB)

    def read(self, size: int) -> bytes:
        """Up to size bytes; fewer only at the end of the stream."""
        blocks, have = [], 0
        while have < size:
            block = self._reader.read(size - have)
            if not block:
                break
            blocks.append(block)
            have += len(block)
        return b"".join(blocks)


@contextlib.contextmanager
def uncompressing(manifest: dict, file: BinaryIO) -> Iterator[BinaryIO]:
    """Where to write a dump as it is stored so that `file` receives what pg_restore reads. A dump that does not
    uncompress, or ends before its last frame does, is refused once the download is done (its checksum, checked
    then, speaks first)."""
    compression = manifest.get("compression")
    if compression is None:
        yield file
        return
    if compression != ZSTD:
        raise BackupError(f"the backup's manifest names compression {compression!r}, which this version does not "
                          "read: restore it with the version that made it (app-version in the manifest)")
    sink = _Uncompressing(file)
    yield sink
    if sink.error is not None:
        raise BackupError(f"the dump does not uncompress ({sink.error}): it is damaged; restore another one")
    if not sink.complete:
        raise BackupError("the dump ends before its compressed data does: it was cut short when it was made; "
                          "restore another one")
    file.flush()


class _Uncompressing:
    """A file-like sink that uncompresses what is written to it into `file`, block by block."""

    def __init__(self, file: BinaryIO):
        self._file = file
        self._stream = zstandard.ZstdDecompressor().decompressobj()
        self.error: zstandard.ZstdError | None = None

    def write(self, data: bytes) -> None:
        if self.error is not None:
            return
        try:
            self._file.write(self._stream.decompress(data))
        except zstandard.ZstdError as err:
            self.error = err

    def flush(self) -> None:
        self._file.flush()

    @property
    def complete(self) -> bool:
        return self._stream.eof
