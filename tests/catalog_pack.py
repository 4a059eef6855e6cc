"""Archives built by the catalog tests from real folders: zip, tar (any compression) and macOS
flat packages (xar with a gzip or pbzx cpio payload), written here in plain Python so the tests
need no macOS tool (`pkgbuild`, `mkbom`, `xar`). A Bom is not written: nothing reads it."""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import stat
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path
from xml.sax.saxutils import escape


def _walk(src: Path) -> list[Path]:
    """`src` and everything below it, parents first, in name order."""
    out = [src]
    for top, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(dirs + files):
            out.append(Path(top) / name)
    return out


def pack_zip(src: Path, out: Path) -> Path:
    """`src` (a folder) as `src.name/...` in a zip, symlinks stored as links (as `zip -y`)."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for p in _walk(src):
            name = str(p.relative_to(src.parent))
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                info = zipfile.ZipInfo(name)
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                z.writestr(info, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                z.write(p, name + "/")
            else:
                z.write(p, name)
    return out


def pack_tar(src: Path, out: Path, compression: str) -> Path:
    """`src` as `src.name/...` in a tar; `compression` is "", "gz", "bz2", "xz" or "zst"."""
    if compression == "zst":
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as t:
            t.add(src, arcname=src.name)
        import zstandard

        out.write_bytes(zstandard.ZstdCompressor().compress(raw.getvalue()))
        return out
    mode = f"w:{compression}" if compression else "w"
    with tarfile.open(out, mode) as t:  # type: ignore[call-overload]
        t.add(src, arcname=src.name)
    return out


def cpio_odc(src: Path) -> bytes:
    """`src`'s contents as Apple's payloads hold them: odc cpio, names "./...", "." first."""
    out = io.BytesIO()
    ino = 0
    for p in _walk(src):
        rel = p.relative_to(src)
        name = "." if str(rel) == "." else f"./{rel}"
        st = p.lstat()
        data = (
            os.readlink(p).encode() if stat.S_ISLNK(st.st_mode) else p.read_bytes() if stat.S_ISREG(st.st_mode) else b""
        )
        ino += 1
        out.write(cpio_header(name, st.st_mode, len(data), ino))
        out.write(data)
    out.write(cpio_header("TRAILER!!!", 0, 0, 0))
    return out.getvalue()


def cpio_header(name: str, mode: int, size: int, ino: int) -> bytes:
    encoded = name.encode() + b"\0"
    fields = (0, ino, mode, 0, 0, 1, 0)
    head = "070707" + "".join(f"{v:06o}" for v in fields) + f"{0:011o}" + f"{len(encoded):06o}" + f"{size:011o}"
    return head.encode() + encoded


def pbzx(data: bytes, chunk: int = 64 * 1024) -> bytes:
    """`data` in Apple's pbzx framing: xz chunks (a chunk that does not shrink is stored)."""
    out = [b"pbzx", struct.pack(">Q", chunk)]
    for i in range(0, len(data), chunk):
        piece = data[i : i + chunk]
        xz = lzma.compress(piece, format=lzma.FORMAT_XZ)
        body = xz if len(xz) < len(piece) else piece
        out.append(struct.pack(">QQ", 0x1000000 if i + chunk < len(data) else 0, len(body)))
        out.append(body)
    return b"".join(out)


def xar(files: list[tuple[str, str, bytes | None, str]]) -> bytes:
    """A xar archive of (path, type, data, encoding) members; `encoding` "gzip" stores the data
    zlib-compressed (xar's "application/x-gzip"), "raw" as is. Folders are listed as their own
    members (type "directory") before what is inside them."""
    heap = io.BytesIO()
    heap.write(b"\0" * 20)  # the TOC's SHA-1 goes first in the heap
    tree: dict[str, list[str]] = {"": []}
    xml_of: dict[str, str] = {}
    for ident, (path, kind, data, encoding) in enumerate(files, start=1):
        parent, _, name = path.rpartition("/")
        tree.setdefault(parent, []).append(path)
        tree.setdefault(path, [])
        body = ""
        if data is not None:
            stored = zlib.compress(data) if encoding == "gzip" else data
            style = "application/x-gzip" if encoding == "gzip" else "application/octet-stream"
            offset = heap.tell()
            heap.write(stored)
            body = (
                f"<data><length>{len(stored)}</length><offset>{offset}</offset><size>{len(data)}</size>"
                f'<encoding style="{style}"/></data>'
            )
        xml_of[path] = f'<file id="{ident}"><name>{escape(name)}</name><type>{kind}</type>{body}'

    def render(path: str) -> str:
        return xml_of[path] + "".join(render(c) for c in tree[path]) + "</file>"

    toc = (
        '<?xml version="1.0" encoding="UTF-8"?><xar><toc><checksum style="sha1"><offset>0</offset>'
        "<size>20</size></checksum>" + "".join(render(c) for c in tree[""]) + "</toc></xar>"
    ).encode()
    compressed = zlib.compress(toc)
    heap_bytes = bytearray(heap.getvalue())
    heap_bytes[:20] = hashlib.sha1(compressed).digest()
    header = struct.pack(">4sHHQQI", b"xar!", 28, 1, len(compressed), len(toc), 1)
    return header + compressed + bytes(heap_bytes)


def pack_pkg(src: Path, out: Path, payload: str = "gzip") -> Path:
    """A product archive with one component, `app.pkg`, whose Payload installs `src` into
    /Applications: so `src` appears at `app.pkg/Payload/<src.name>` in the package's tree."""
    # The payload's root is the install location; `src` goes below it by name.
    cpio = cpio_odc_below(src)
    body = gzip.compress(cpio) if payload == "gzip" else pbzx(cpio)
    distribution = b'<?xml version="1.0"?><installer-gui-script minSpecVersion="2"/>'
    info = b'<pkg-info identifier="test.app" version="1" install-location="/Applications"/>'
    out.write_bytes(
        xar(
            [
                ("Distribution", "file", distribution, "gzip"),
                ("app.pkg", "directory", None, "raw"),
                ("app.pkg/PackageInfo", "file", info, "gzip"),
                ("app.pkg/Payload", "file", body, "raw"),
            ]
        )
    )
    return out


def cpio_odc_below(src: Path) -> bytes:
    """cpio of a folder holding only `src` (a copy of it at `./<src.name>`)."""
    out = io.BytesIO()
    out.write(cpio_header(".", stat.S_IFDIR | 0o755, 0, 1))
    body = cpio_odc(src)
    # Re-root every name of `src`'s own cpio below its name.
    reader = io.BytesIO(body)
    while True:
        head = reader.read(76)
        namesize, size = int(head[59:65], 8), int(head[65:76], 8)
        name = reader.read(namesize)[:-1].decode()
        data = reader.read(size)
        if name == "TRAILER!!!":
            break
        new = f"./{src.name}" if name == "." else f"./{src.name}/{name[2:]}"
        out.write(cpio_header(new, int(head[18:24], 8), size, int(head[12:18], 8)) + data)
    out.write(cpio_header("TRAILER!!!", 0, 0, 0))
    return out.getvalue()
