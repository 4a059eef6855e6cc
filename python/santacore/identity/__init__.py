"""What a file or bundle is, as santactl fileinfo and santabundleservice say it: Mach-O headers,
bundle roots and the bundle hash, the code signature (CodeDirectory, cdhash, CMS chain, Team ID,
Signing ID) and santactl's text/JSON report.

Modules: `bundle` (bundle roots, `hash_bundle`), `plists` (Info.plist values), `macho` (slice
layout, LIEF), `codesign/` (SuperBlob, CodeDirectory, code pages and special slots), `cms/` (CMS
parse, certificates, verification), `fileinfo` (what santactl fileinfo reports), `examine` (computing
it from a file's bytes), `source` (those bytes: a file, or a streamed member), `image` (a streamed
archive member's FileInfo: `file_info_from_image`, `BundleContext`), `report` (its text and JSON),
`constants`.

Imports: the Rust engine (`santacore._core`), `santacore.errors`; LIEF only in `macho`, asn1crypto and
cryptography only in `cms/`, and both only once a file is examined: importing `bundle` or `fileinfo`
loads neither. Never the stores, the network, configuration or the commands."""

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: start-up stays cheap
if TYPE_CHECKING:
    from santacore.identity.image import BundleContext, file_info_from_image

__all__ = ["BundleContext", "file_info_from_image"]


def __getattr__(name: str) -> object:
    # Loaded on first use: importing a submodule (bundle, fileinfo) must not load `image`.
    if name in __all__:
        from santacore.identity import image

        return getattr(image, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
