//! AVX-512 engine: 16 lanes per zmm vector, up to 4 groups in flight. F/G/H/I are one
//! VPTERNLOGD each, rotates are VPROLD, hex encoding is VPMULTISHIFTQB + VPERMB (VBMI), the
//! per-lane byte shift is VPSHLDVD (VBMI2).

// The AVX-512 intrinsics are stable since Rust 1.89: the crate needs `rust-version >= 1.89`
// (clippy checks their use against the declared MSRV).

use core::arch::x86_64::*;

use super::multibuf::{self, Kernel, MAX_LANES};

type V = __m512i;
type M = __mmask16;
const WIDTH: usize = 16;

#[inline]
#[target_feature(enable = "avx512f")]
fn ld(row: &[u32; MAX_LANES], g: usize) -> V {
    let lanes = &row[WIDTH * g..WIDTH * g + WIDTH];
    // SAFETY: `lanes` is 16 readable u32 (64 bytes); the load is unaligned.
    unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn st(row: &mut [u32; MAX_LANES], g: usize, v: V) {
    let lanes = &mut row[WIDTH * g..WIDTH * g + WIDTH];
    // SAFETY: `lanes` is 16 writable u32 (64 bytes); the store is unaligned.
    unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), v) }
}

/// `v`, hidden from the optimizer (keeps `a + K + W` summed before `F` is added, off the
/// critical path).
#[inline]
#[target_feature(enable = "avx512f")]
fn pin(mut v: V) -> V {
    // SAFETY: an empty asm block (a comment) that claims to rewrite one vector register; it
    // touches no memory and has no other effect.
    unsafe {
        core::arch::asm!("/* {0} */", inout(zmm_reg) v, options(pure, nomem, nostack, preserves_flags))
    };
    v
}

#[inline]
#[target_feature(enable = "avx512f")]
fn add(a: V, b: V) -> V {
    _mm512_add_epi32(a, b)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn or(a: V, b: V) -> V {
    _mm512_or_si512(a, b)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn splat(x: u32) -> V {
    _mm512_set1_epi32(x as i32)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn zero() -> V {
    _mm512_setzero_si512()
}

#[inline]
#[target_feature(enable = "avx512f")]
fn ff(b: V, c: V, d: V) -> V {
    _mm512_ternarylogic_epi32::<0xCA>(b, c, d)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn fg(b: V, c: V, d: V) -> V {
    _mm512_ternarylogic_epi32::<0xE4>(b, c, d)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn fh(b: V, c: V, d: V) -> V {
    _mm512_ternarylogic_epi32::<0x96>(b, c, d)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn fi(b: V, c: V, d: V) -> V {
    _mm512_ternarylogic_epi32::<0x39>(b, c, d)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn rotl<const S: i32, const R: i32>(x: V) -> V {
    _mm512_rol_epi32::<S>(x)
}

/// Bit offsets of the nibbles, high nibble first, for bytes 0-1 and 2-3 of both dwords of a
/// qword (VPMULTISHIFTQB controls).
const HEX_CTRL: [u64; 2] = [
    u64::from_le_bytes([4, 0, 12, 8, 36, 32, 44, 40]),
    u64::from_le_bytes([20, 16, 28, 24, 52, 48, 60, 56]),
];

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
fn hex(d: V) -> (V, V) {
    let digits = _mm512_set4_epi32(
        i32::from_le_bytes(*b"cdef"),
        i32::from_le_bytes(*b"89ab"),
        i32::from_le_bytes(*b"4567"),
        i32::from_le_bytes(*b"0123"),
    );
    let lo = _mm512_multishift_epi64_epi8(_mm512_set1_epi64(HEX_CTRL[0] as i64), d);
    let hi = _mm512_multishift_epi64_epi8(_mm512_set1_epi64(HEX_CTRL[1] as i64), d);
    (
        _mm512_permutexvar_epi8(lo, digits),
        _mm512_permutexvar_epi8(hi, digits),
    )
}

#[inline]
#[target_feature(enable = "avx512f,avx512vbmi2")]
fn funnel(hi: V, lo: V, cnt: V) -> V {
    _mm512_shldv_epi32(hi, lo, cnt)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn mask_of(v: V) -> M {
    _mm512_test_epi32_mask(v, v)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn sel(m: M, a: V, b: V) -> V {
    _mm512_mask_mov_epi32(a, m, b)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn selz_not(m: M, b: V) -> V {
    _mm512_maskz_mov_epi32(!m, b)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn or_and(s: V, t: V, m: V) -> V {
    _mm512_ternarylogic_epi32::<0xF8>(s, t, m)
}

multibuf::simd_kernel!("avx512f,avx512bw,avx512vbmi,avx512vbmi2");

/// The AVX-512 kernel; only constructed when the CPU and OS support it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512 {
    _detected: (),
}

impl Avx512 {
    pub(crate) fn detect() -> Option<Avx512> {
        let ok = std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vbmi")
            && std::is_x86_feature_detected!("avx512vbmi2");
        ok.then_some(Avx512 { _detected: () })
    }
}

impl Kernel for Avx512 {
    const WIDTH: usize = WIDTH;
    const MAX_GROUPS: usize = 4;
    // Measured by `examples/kernel_bench.rs` on the reference machine.
    const GROUP_ITERATION_NS: u64 = 101;
    const LATENCY_ITERATION_NS: u64 = 170;

    fn iters(&self, rows: &mut Rows, groups: usize, phase_b: bool, n: u64, long_groups: usize) {
        // SAFETY: an `Avx512` only exists after `detect` found every feature `iters` needs.
        unsafe { iters(rows, groups, phase_b, n, long_groups) }
    }
}
