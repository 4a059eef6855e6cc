//! The sink on synthetic members: chunking, bounds, non-Mach-O.

use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::*;

fn stream(data: &[u8], chunk: usize) -> MemberImage {
    let mut sink = MemberSink::default();
    for c in data.chunks(chunk.max(1)) {
        sink.update(c);
    }
    sink.finish()
}

/// A thin x86_64 executable: header, one LC_CODE_SIGNATURE (0x1d), signature at `sig_at`.
fn thin_signed(total: usize, sig_at: u32, sig_len: u32) -> Vec<u8> {
    let mut v = vec![0u8; total];
    v[..4].copy_from_slice(&0xfeed_facfu32.to_le_bytes());
    v[4..8].copy_from_slice(&0x0100_0007u32.to_le_bytes());
    v[8..12].copy_from_slice(&3u32.to_le_bytes());
    v[12..16].copy_from_slice(&2u32.to_le_bytes());
    v[16..20].copy_from_slice(&1u32.to_le_bytes());
    v[20..24].copy_from_slice(&16u32.to_le_bytes());
    for (i, x) in [0x1d_u32, 16, sig_at, sig_len].iter().enumerate() {
        v[32 + 4 * i..36 + 4 * i].copy_from_slice(&x.to_le_bytes());
    }
    for (i, b) in v.iter_mut().enumerate().skip(48) {
        *b = (i % 251) as u8;
    }
    v
}

#[test]
fn any_chunking_gives_the_same_image() {
    let data = thin_signed(50_000, 40_000, 1000);
    let whole = stream(&data, data.len());
    assert!(whole.is_macho());
    assert_eq!(whole.sha256.as_slice(), Sha256::digest(&data).as_slice());
    assert_eq!(whole.sha1.unwrap().as_slice(), Sha1::digest(&data).as_slice());
    assert!(whole
        .ranges
        .iter()
        .any(|(s, b)| *s <= 40_000 && s + b.len() as u64 >= 41_000));
    let p = whole
        .page_hashes
        .iter()
        .find(|p| p.page_size == 4096 && p.hash_type == HashType::Sha256)
        .unwrap();
    assert_eq!(p.length, 40_000);
    assert_eq!(p.pages().nth(1).unwrap(), Sha256::digest(&data[4096..8192]).as_slice());
    for chunk in [1, 7, 4095, 4096, 4097, 65_536] {
        let img = stream(&data, chunk);
        assert_eq!(img.ranges, whole.ranges, "chunk {chunk}");
        assert_eq!(img.page_hashes.len(), whole.page_hashes.len());
        for (a, b) in img.page_hashes.iter().zip(&whole.page_hashes) {
            assert_eq!(a.hashes, b.hashes);
        }
    }
}

#[test]
fn non_macho_keeps_only_probes() {
    let data = vec![7u8; 10_000];
    let img = stream(&data, 333);
    assert!(!img.is_macho() && img.sha1.is_none());
    assert_eq!(img.captured_bytes(), 0);
    assert!(img.page_hashes.is_empty());
}

#[test]
fn captures_are_bounded() {
    let data = thin_signed(300_000, 1000, 250_000);
    let mut sink = MemberSink::new(100_000);
    for c in data.chunks(10_000) {
        sink.update(c);
    }
    let img = sink.finish();
    assert!(img.captured_bytes() <= 100_000 + HEAD_SIZE as u64 + 8);
    assert!(!img.unavailable.is_empty());
}

#[test]
fn signature_beyond_the_end_is_simply_not_kept() {
    let data = thin_signed(10_000, 4_000_000_000, 4_000_000);
    let img = stream(&data, 1000);
    assert!(img.is_macho());
    assert!(img.captured_bytes() < 20_000 + 2 * 10_000);
}

#[test]
fn signed_slices_hashed_are_capped() {
    // A fat table of 20 slices, each a signed thin header: only MAX_CODE_RANGES are hashed.
    let slice = thin_signed(8192, 6000, 100);
    let mut data = vec![0u8; 4096];
    data[..4].copy_from_slice(&0xcafe_babeu32.to_be_bytes());
    data[4..8].copy_from_slice(&20u32.to_be_bytes());
    for i in 0..20u32 {
        let at = 8 + 20 * i as usize;
        for (j, v) in [0x0100_0007u32, 3, 4096 + i * 8192, 8192, 12].iter().enumerate() {
            data[at + 4 * j..at + 4 * j + 4].copy_from_slice(&v.to_be_bytes());
        }
    }
    for _ in 0..20 {
        data.extend_from_slice(&slice);
    }
    let img = stream(&data, 5000);
    let ranges: std::collections::BTreeSet<u64> = img.page_hashes.iter().map(|p| p.offset).collect();
    assert_eq!(ranges.len(), MAX_CODE_RANGES);
    assert_eq!(img.unavailable.len(), 20 - MAX_CODE_RANGES);
    assert!(img.unavailable[0].reason.contains("signed code ranges"));
}
