//! Milvus's shard hashes: murmur3 (x86, 32-bit, seed 0) of an Int64 key's 8
//! little-endian bytes, masked to 31 bits; CRC32 (IEEE) of a VarChar key's first 100
//! bytes. The same key lands on the same shard as in Milvus.

/// Murmur3 x86 32-bit with seed 0.
pub fn murmur3_32(data: &[u8]) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h: u32 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k: u32 = 0;
        for (i, b) in tail.iter().enumerate() {
            k |= u32::from(*b) << (8 * i);
        }
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The hash of an Int64 primary key (Milvus's `Hash32Int64`).
pub fn hash_int64(v: i64) -> u32 {
    murmur3_32(&v.to_le_bytes()) & 0x7fff_ffff
}

/// The hash of a VarChar primary key (Milvus's `HashString2Uint32`).
pub fn hash_varchar(v: &str) -> u32 {
    let b = v.as_bytes();
    crc32fast::hash(&b[..b.len().min(100)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_reference_values() {
        // Published test vectors of MurmurHash3_x86_32 with seed 0.
        assert_eq!(murmur3_32(b""), 0);
        assert_eq!(murmur3_32(b"hello"), 0x248b_fa47);
        assert_eq!(murmur3_32(b"Hello, world!"), 0xc036_3e43);
        assert_eq!(murmur3_32(&[0, 0, 0, 0]), 0x2362_f9de);
    }

    #[test]
    fn crc32_reference_values() {
        assert_eq!(hash_varchar("123456789"), 0xcbf4_3926);
        let long = "x".repeat(150);
        assert_eq!(hash_varchar(&long), hash_varchar(&"x".repeat(100)));
    }
}
