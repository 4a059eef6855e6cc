"""What a file or bundle is, as santactl fileinfo and santabundleservice say it: Mach-O headers,
bundle roots and the bundle hash, the code signature (CodeDirectory, cdhash, CMS chain, Team ID,
Signing ID) and santactl's text/JSON report.

Imports: the Rust engine (`santacore._core`), `santacore.errors`, and LIEF / asn1crypto /
cryptography inside the modules that parse load commands and signatures. Never the stores,
the network, configuration or the commands."""
