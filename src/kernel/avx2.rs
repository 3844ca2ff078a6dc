//! AVX2 engine: 8 lanes per ymm vector, up to 3 groups in flight. Built with
//! `#[target_feature(enable = "avx2")]` only, so it contains no AVX-512 instruction
//! (`tests/check_avx2_no_avx512.sh` checks the binary).

use core::arch::x86_64::*;

use super::multibuf::{self, Kernel, MAX_LANES};

type V = __m256i;
type M = __m256i;
const WIDTH: usize = 8;

#[inline]
#[target_feature(enable = "avx2")]
fn ld(row: &[u32; MAX_LANES], g: usize) -> V {
    let lanes = &row[WIDTH * g..WIDTH * g + WIDTH];
    // SAFETY: `lanes` is 8 readable u32 (32 bytes); the load is unaligned.
    unsafe { _mm256_loadu_si256(lanes.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn st(row: &mut [u32; MAX_LANES], g: usize, v: V) {
    let lanes = &mut row[WIDTH * g..WIDTH * g + WIDTH];
    // SAFETY: `lanes` is 8 writable u32 (32 bytes); the store is unaligned.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) }
}

/// `v`, hidden from the optimizer (keeps `a + K + W` summed before `F` is added, off the
/// critical path).
#[inline]
#[target_feature(enable = "avx2")]
fn pin(mut v: V) -> V {
    // SAFETY: an empty asm block (a comment) that claims to rewrite one vector register; it
    // touches no memory and has no other effect.
    unsafe {
        core::arch::asm!("/* {0} */", inout(ymm_reg) v, options(pure, nomem, nostack, preserves_flags))
    };
    v
}

#[inline]
#[target_feature(enable = "avx2")]
fn add(a: V, b: V) -> V {
    _mm256_add_epi32(a, b)
}

#[inline]
#[target_feature(enable = "avx2")]
fn or(a: V, b: V) -> V {
    _mm256_or_si256(a, b)
}

#[inline]
#[target_feature(enable = "avx2")]
fn xor(a: V, b: V) -> V {
    _mm256_xor_si256(a, b)
}

#[inline]
#[target_feature(enable = "avx2")]
fn and(a: V, b: V) -> V {
    _mm256_and_si256(a, b)
}

#[inline]
#[target_feature(enable = "avx2")]
fn splat(x: u32) -> V {
    _mm256_set1_epi32(x as i32)
}

#[inline]
#[target_feature(enable = "avx2")]
fn zero() -> V {
    _mm256_setzero_si256()
}

#[inline]
#[target_feature(enable = "avx2")]
fn ff(b: V, c: V, d: V) -> V {
    xor(d, and(b, xor(c, d)))
}

#[inline]
#[target_feature(enable = "avx2")]
fn fg(b: V, c: V, d: V) -> V {
    or(and(b, d), _mm256_andnot_si256(d, c))
}

#[inline]
#[target_feature(enable = "avx2")]
fn fh(b: V, c: V, d: V) -> V {
    xor(b, xor(c, d))
}

#[inline]
#[target_feature(enable = "avx2")]
fn fi(b: V, c: V, d: V) -> V {
    xor(c, or(b, xor(d, splat(!0))))
}

#[inline]
#[target_feature(enable = "avx2")]
fn rotl<const S: i32, const R: i32>(x: V) -> V {
    or(_mm256_slli_epi32::<S>(x), _mm256_srli_epi32::<R>(x))
}

#[inline]
#[target_feature(enable = "avx2")]
fn hex(d: V) -> (V, V) {
    let digits = _mm256_setr_epi8(
        b'0' as i8, b'1' as i8, b'2' as i8, b'3' as i8, b'4' as i8, b'5' as i8, b'6' as i8,
        b'7' as i8, b'8' as i8, b'9' as i8, b'a' as i8, b'b' as i8, b'c' as i8, b'd' as i8,
        b'e' as i8, b'f' as i8, b'0' as i8, b'1' as i8, b'2' as i8, b'3' as i8, b'4' as i8,
        b'5' as i8, b'6' as i8, b'7' as i8, b'8' as i8, b'9' as i8, b'a' as i8, b'b' as i8,
        b'c' as i8, b'd' as i8, b'e' as i8, b'f' as i8,
    );
    let nib = splat(0x0f0f_0f0f);
    let hi = _mm256_shuffle_epi8(digits, and(_mm256_srli_epi32::<4>(d), nib));
    let lo = _mm256_shuffle_epi8(digits, and(d, nib));
    // Per 128-bit half: u0 = [lane0 w0, lane0 w1, lane1 w0, lane1 w1], u1 = lanes 2 and 3.
    let u0 = _mm256_castsi256_ps(_mm256_unpacklo_epi8(hi, lo));
    let u1 = _mm256_castsi256_ps(_mm256_unpackhi_epi8(hi, lo));
    (
        _mm256_castps_si256(_mm256_shuffle_ps::<0x88>(u0, u1)),
        _mm256_castps_si256(_mm256_shuffle_ps::<0xDD>(u0, u1)),
    )
}

#[inline]
#[target_feature(enable = "avx2")]
fn funnel(hi: V, lo: V, cnt: V) -> V {
    or(
        _mm256_sllv_epi32(hi, cnt),
        _mm256_srlv_epi32(lo, _mm256_sub_epi32(splat(32), cnt)),
    )
}

#[inline]
#[target_feature(enable = "avx2")]
fn mask_of(v: V) -> M {
    v
}

#[inline]
#[target_feature(enable = "avx2")]
fn sel(m: M, a: V, b: V) -> V {
    _mm256_blendv_epi8(a, b, m)
}

#[inline]
#[target_feature(enable = "avx2")]
fn selz_not(m: M, b: V) -> V {
    _mm256_andnot_si256(m, b)
}

#[inline]
#[target_feature(enable = "avx2")]
fn or_and(s: V, t: V, m: V) -> V {
    or(s, and(t, m))
}

multibuf::simd_kernel!("avx2");

/// The AVX2 kernel; only constructed when the CPU and OS support it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2 {
    _detected: (),
}

impl Avx2 {
    pub(crate) fn detect() -> Option<Avx2> {
        std::is_x86_feature_detected!("avx2").then_some(Avx2 { _detected: () })
    }
}

impl Kernel for Avx2 {
    const WIDTH: usize = WIDTH;
    const MAX_GROUPS: usize = 3;
    // Measured by `examples/kernel_bench.rs` on the reference machine.
    const GROUP_ITERATION_NS: u64 = 96;
    const LATENCY_ITERATION_NS: u64 = 167;

    fn iters(&self, rows: &mut Rows, groups: usize, phase_b: bool, n: u64, long_groups: usize) {
        // SAFETY: an `Avx2` only exists after `detect` found AVX2.
        unsafe { iters(rows, groups, phase_b, n, long_groups) }
    }
}
