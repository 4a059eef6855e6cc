"""Santa's identifiers for a whole software catalog: every bundle and Mach-O inside many artifacts
(directories, bundles, loose Mach-O files, zip/tar/.pkg archives read in place) recorded in one
SQLite catalog keyed by each artifact's SHA-256 and size.

Modules: `model` (the records a scan produces: `ArtifactResult`, `BundleRecord`, `BinaryRecord`),
`store` (`CatalogStore`, the SQLite catalog and its schema), `scan` (`scan_artifact`: one artifact,
pure, safe in another process), `ondisk` (bundles, folders and Mach-O files on disk, through
`santacore.identity`), `archive` (archives read in place by the engine) with `tree` (Santa's
bundle-root rules over an archive's own tree), `discover` (which artifacts a command line names),
`runner` (the plan of what to scan, and a local scan over all cores, resumable).

Imports: the Rust engine, `santacore.identity`, `santacore.files`; never the commands, the sync
client or the santad stores. LIEF and cryptography load only when a Mach-O is examined."""
