//! The one hash of account names: the writer's dictionary keys its maps
//! by it, with the names kept elsewhere (no allocation per name) and
//! compared on a match. (The import's account cache finds its entries by
//! the ids the dictionary gives.)

/// A fast hash of account names, seeded at random per process run so that
/// a crafted file cannot make names collide on purpose. It reads eight bytes
/// at a time and mixes with a folded multiply (the high and low halves of a
/// 128-bit product), as foldhash and wyhash do.
#[derive(Debug)]
pub(crate) struct NameHasher {
    seed: u64,
}

impl NameHasher {
    pub(crate) fn new() -> NameHasher {
        use std::hash::{BuildHasher, Hasher};
        // std's RandomState is seeded from the operating system.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u8(0);
        NameHasher {
            seed: hasher.finish(),
        }
    }

    #[inline]
    pub(crate) fn hash(&self, name: &[u8]) -> u64 {
        const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
        const TAIL: u64 = 0xA076_1D64_78BD_642F;
        fn folded_multiply(a: u64, b: u64) -> u64 {
            let product = u128::from(a) * u128::from(b);
            (product as u64) ^ ((product >> 64) as u64)
        }
        let mut state = self.seed ^ (name.len() as u64).wrapping_mul(MULTIPLIER);
        let mut words = name.chunks_exact(8);
        for word in &mut words {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            state = folded_multiply(state ^ u64::from_le_bytes(bytes), MULTIPLIER);
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut bytes = [0u8; 8];
            bytes
                .get_mut(..rest.len())
                .unwrap_or_default()
                .copy_from_slice(rest);
            state = folded_multiply(state ^ u64::from_le_bytes(bytes), TAIL);
        }
        folded_multiply(state, MULTIPLIER ^ TAIL)
    }
}

/// Hashes the keys of maps keyed by a [`NameHasher`] hash, which are hashes
/// already, by passing them through.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; this path is never taken, but stays
        // correct if it were.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

pub(crate) type PassThroughState = std::hash::BuildHasherDefault<PassThrough>;
