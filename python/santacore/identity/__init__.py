"""What a file or bundle is, as santactl fileinfo and santabundleservice say it: Mach-O headers,
bundle roots and the bundle hash, the code signature (CodeDirectory, cdhash, CMS chain, Team ID,
Signing ID) and santactl's text/JSON report.

Modules: `bundle` (bundle roots, `hash_bundle`), `plists` (Info.plist values), `macho` (slice
layout, LIEF), `codesign/` (SuperBlob, CodeDirectory, code pages and special slots), `cms/` (CMS
parse, certificates, verification), `fileinfo` (what santactl fileinfo reports), `examine` (computing
it from a file), `report` (its text and JSON), `constants`.

Imports: the Rust engine (`santacore._core`), `santacore.errors`; LIEF only in `macho`, asn1crypto and
cryptography only in `cms/`, and both only once a file is examined: importing `bundle` or `fileinfo`
loads neither. Never the stores, the network, configuration or the commands."""
