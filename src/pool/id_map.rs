//! Maps keyed by ids the pool assigns itself (sequential integers): a
//! multiplicative hash is enough, as no HashDoS is possible, and it is far
//! cheaper than SipHash on every job. (`RandomState` would also ask the kernel
//! for random keys, which without getrandom, Linux < 3.17, makes Rust's std keep
//! /dev/urandom open for the rest of the host's life.)

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
pub type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
