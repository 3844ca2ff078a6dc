//! The scalar chain: a hand-written MD5 compression with the state in registers, a table
//! hex encoder, and a steady-state loop that exploits the fixed period of the chain.
//!
//! After iteration 0 every append is exactly 32 bytes, so the buffered byte count `r`
//! alternates between `p` and `p + 32` (`p = len % 32`, fixed for the whole job). The
//! stream is seen as 32-byte "cells" aligned on block boundaries:
//! - `Cfull_i` = the last `p` bytes before hex `h_i`, then the first `32 - p` bytes of `h_i`;
//! - `Ctail_i` = the last `p` bytes of `h_i`, then `0x80`, then zeros.
//!
//! An "A" iteration (`r == p` before the append) finalizes `[Cfull | Ctail]` (plus a second
//! block of zeros and the length when `p >= 24`); a "B" iteration (`r == p + 32`) first
//! compresses the full block `[Cfull_{i-1} | Cfull_i]` into the running state and then
//! finalizes `[Ctail | zeros, length]`. The SIMD engines use the same cells.

use super::Hex;

/// The MD5 additive constants.
pub(crate) const K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// The MD5 initial state.
pub(crate) const IV: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

/// Rotation of step `i`.
pub(crate) const fn rot(i: usize) -> u32 {
    const R: [[u32; 4]; 4] = [
        [7, 12, 17, 22],
        [5, 9, 14, 20],
        [4, 11, 16, 23],
        [6, 10, 15, 21],
    ];
    R[i / 16][i % 4]
}

/// Message word used by step `i`.
pub(crate) const fn widx(i: usize) -> usize {
    match i / 16 {
        0 => i,
        1 => (5 * i + 1) % 16,
        2 => (3 * i + 5) % 16,
        _ => (7 * i) % 16,
    }
}

/// Invokes `$m!(i)` for every MD5 step `i` in order.
macro_rules! for_each_step {
    ($m:ident) => {
        $m!(0);
        $m!(1);
        $m!(2);
        $m!(3);
        $m!(4);
        $m!(5);
        $m!(6);
        $m!(7);
        $m!(8);
        $m!(9);
        $m!(10);
        $m!(11);
        $m!(12);
        $m!(13);
        $m!(14);
        $m!(15);
        $m!(16);
        $m!(17);
        $m!(18);
        $m!(19);
        $m!(20);
        $m!(21);
        $m!(22);
        $m!(23);
        $m!(24);
        $m!(25);
        $m!(26);
        $m!(27);
        $m!(28);
        $m!(29);
        $m!(30);
        $m!(31);
        $m!(32);
        $m!(33);
        $m!(34);
        $m!(35);
        $m!(36);
        $m!(37);
        $m!(38);
        $m!(39);
        $m!(40);
        $m!(41);
        $m!(42);
        $m!(43);
        $m!(44);
        $m!(45);
        $m!(46);
        $m!(47);
        $m!(48);
        $m!(49);
        $m!(50);
        $m!(51);
        $m!(52);
        $m!(53);
        $m!(54);
        $m!(55);
        $m!(56);
        $m!(57);
        $m!(58);
        $m!(59);
        $m!(60);
        $m!(61);
        $m!(62);
        $m!(63);
    };
}
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_imports))]
pub(crate) use for_each_step;

/// Hides `x` from the optimizer so that it cannot re-associate the additions around it.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn opaque(mut x: u32) -> u32 {
    // SAFETY: an empty asm block (a comment) that only claims to read and write one
    // register; it touches no memory and has no other effect.
    unsafe {
        core::arch::asm!("/* {0:e} */", inout(reg) x, options(pure, nomem, nostack, preserves_flags))
    };
    x
}

/// Hides `x` from the optimizer so that it cannot re-associate the additions around it.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn opaque(mut x: u32) -> u32 {
    // SAFETY: an empty asm block (a comment) that only claims to read and write one
    // register; it touches no memory and has no other effect.
    unsafe {
        core::arch::asm!("/* {0:w} */", inout(reg) x, options(pure, nomem, nostack, preserves_flags))
    };
    x
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline(always)]
fn opaque(x: u32) -> u32 {
    x
}

/// The rotated term of MD5 step `I`: the new value of `a` is `b + term`.
///
/// `late` says which input arrives last: normally `b` (the previous step's output), but
/// for the first steps after a digest the message word comes from that digest's hex and
/// arrives after the state; then the word is added last instead.
#[inline(always)]
fn term<const I: usize>(a: u32, b: u32, c: u32, d: u32, w: u32, late: bool) -> u32 {
    // Everything that does not depend on the late input is summed first, behind an
    // optimization barrier, so that only the late part of F/G/H/I, one add, the rotate and
    // the final add stay on the critical path. (G's two terms have disjoint bits.)
    let early = if late {
        a.wrapping_add(K[I])
    } else {
        lea3::<I>(a, w)
    };
    let sum = match I / 16 {
        0 => opaque(early).wrapping_add(d ^ (b & (c ^ d))),
        1 => opaque(early.wrapping_add(!d & c)).wrapping_add(d & b),
        2 => opaque(early).wrapping_add(b ^ (c ^ d)),
        _ => opaque(early).wrapping_add(c ^ (b | !d)),
    };
    let sum = if late {
        opaque(sum).wrapping_add(w)
    } else {
        sum
    };
    sum.rotate_left(rot(I))
}

/// `a + w + K[I]`, off the critical path, as one instruction: a three-operand `lea`, which
/// LLVM's generic x86-64 tuning otherwise splits in two (`lea` + `add`). Fewer instructions
/// per step leave the execution ports freer for the critical chain.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn lea3<const I: usize>(a: u32, w: u32) -> u32 {
    let r: u32;
    // SAFETY: `lea` only computes an address (no memory access, no flags). The 64-bit
    // registers may hold anything above bit 31, but the 32-bit result keeps only the low
    // 32 bits of the sum, which depend only on the low 32 bits of `a` and `w`.
    unsafe {
        core::arch::asm!(
            "lea {r:e}, [{a:r} + {w:r} + {k}]",
            r = lateout(reg) r,
            a = in(reg) a,
            w = in(reg) w,
            k = const K[I] as i32,
            options(pure, nomem, nostack, preserves_flags)
        )
    };
    r
}

/// `a + w + K[I]`, hidden from the optimizer like the `x86_64` version.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn lea3<const I: usize>(a: u32, w: u32) -> u32 {
    opaque(a.wrapping_add(K[I]).wrapping_add(w))
}

/// Index in the state array `x` = (a, b, c, d) of the `a` of step `I` (roles rotate).
const fn role(i: usize) -> usize {
    (4 - i % 4) % 4
}

/// Steps `lo..hi` on `x` with message words `w(0..16)`; bit `i` of `late` marks a step
/// whose word arrives after the state (see [`term`]). `lo`, `hi` and `late` must be
/// constants after inlining (callers pass literals and `Q` expressions) so that it all folds.
///
/// Each new state word goes through [`opaque`]: otherwise LLVM's x86 backend re-derives
/// some state words as long sums of earlier rotated terms (one add per step back), which
/// cost about a tenth more instructions in the steady-state loop.
#[inline(always)]
fn steps(x: &mut [u32; 4], lo: usize, hi: usize, late: u64, w: impl Fn(usize) -> u32) {
    macro_rules! one {
        ($i:literal) => {
            if lo <= $i && $i < hi {
                let t = role($i);
                let (a, b, c, d) = (x[t], x[(t + 1) % 4], x[(t + 2) % 4], x[(t + 3) % 4]);
                let late = late >> $i & 1 != 0;
                x[t] = opaque(b.wrapping_add(term::<$i>(a, b, c, d, w(widx($i)), late)));
            }
        };
    }
    for_each_step!(one);
}

/// Steps `lo..64` from the partial state `x` and the feed-forward with `s`: the
/// compression of `s` whose steps `0..lo` gave `x`. `late` as for [`steps`].
///
/// The feed-forward is folded into the last four steps: the output of step `i >= 60` is
/// `s[t] + b + term`, summed as `(s[t] + b) + term`, and `s[t] + b` is ready a step early
/// (`b` is the previous step's output), so the digest word is ready when the step is, one
/// add sooner than adding `s` after step 63. Steps 61..63 still need the raw outputs.
#[inline(always)]
fn finish(
    s: [u32; 4],
    mut x: [u32; 4],
    lo: usize,
    late: u64,
    w: impl Fn(usize) -> u32,
) -> [u32; 4] {
    steps(&mut x, lo, 60, late, &w);
    let mut out = [0u32; 4];
    macro_rules! last {
        ($i:literal) => {{
            let t = role($i);
            let (a, b, c, d) = (x[t], x[(t + 1) % 4], x[(t + 2) % 4], x[(t + 3) % 4]);
            let r = term::<$i>(a, b, c, d, w(widx($i)), false);
            out[t] = opaque(s[t].wrapping_add(b)).wrapping_add(r);
            opaque(b.wrapping_add(r))
        }};
    }
    x[role(60)] = last!(60);
    x[role(61)] = last!(61);
    x[role(62)] = last!(62);
    let _raw63 = last!(63); // the raw state is not needed after the last step
    out
}

/// The `late` mask for a compression whose words `first..end` come from the hex of a digest
/// still being computed, while its state is ready: step `first` waits for the hex of digest
/// word 0, and step `first + 2` is the first to need digest word 1, the last one ready
/// (three steps after word 0, see [`finish`]); in between, the state is again the late input.
const fn late_words(first: usize, end: usize) -> u64 {
    let m = 1u64 << first;
    if first + 2 < end {
        m | 1 << (first + 2)
    } else {
        m
    }
}

/// A full MD5 compression with feed-forward. `w` is evaluated with constant indices, so
/// constant words fold.
#[inline(always)]
pub(crate) fn compress(s: [u32; 4], w: impl Fn(usize) -> u32) -> [u32; 4] {
    finish(s, s, 0, 0, w)
}

/// A 64-byte block as 16 little-endian words.
#[inline(always)]
fn block_words(block: &[u8; 64]) -> [u32; 16] {
    let mut w = [0u32; 16];
    for (wi, chunk) in w.iter_mut().zip(block.chunks_exact(4)) {
        *wi = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    w
}

/// A generic streaming MD5 (used for iteration 0 and for setting up lanes).
#[derive(Clone, Copy)]
pub(crate) struct Md5 {
    pub(crate) s: [u32; 4],
    /// Bytes appended so far; `len % 64` of them are in `buf`.
    pub(crate) len: u64,
    pub(crate) buf: [u8; 64],
}

impl Md5 {
    pub(crate) fn new() -> Md5 {
        Md5 {
            s: IV,
            len: 0,
            buf: [0; 64],
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        let r = (self.len % 64) as usize;
        self.len = self.len.wrapping_add(data.len() as u64);
        if r > 0 {
            let take = (64 - r).min(data.len());
            self.buf[r..r + take].copy_from_slice(&data[..take]);
            data = &data[take..];
            if r + take < 64 {
                return;
            }
            let w = block_words(&self.buf);
            self.s = compress(self.s, |i| w[i]);
        }
        let mut blocks = data.chunks_exact(64);
        for block in &mut blocks {
            let mut b = [0u8; 64];
            b.copy_from_slice(block);
            let w = block_words(&b);
            self.s = compress(self.s, |i| w[i]);
        }
        let rest = blocks.remainder();
        self.buf[..rest.len()].copy_from_slice(rest);
    }

    /// The digest (as four little-endian state words) of a copy of this state.
    pub(crate) fn digest(&self) -> [u32; 4] {
        let r = (self.len % 64) as usize;
        let mut b = [0u8; 64];
        b[..r].copy_from_slice(&self.buf[..r]);
        b[r] = 0x80;
        let bits = self.len.wrapping_mul(8);
        let mut s = self.s;
        if r >= 56 {
            let w = block_words(&b);
            s = compress(s, |i| w[i]);
            b = [0u8; 64];
        }
        b[56..].copy_from_slice(&bits.to_le_bytes());
        let w = block_words(&b);
        compress(s, |i| w[i])
    }
}

/// Two hex digits per byte value, first digit in the low byte.
static HEX_LUT: [u16; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = DIGITS[i >> 4] as u16 | (DIGITS[i & 15] as u16) << 8;
        i += 1;
    }
    t
};

/// Lowercase hex of a digest, as 8 little-endian words of ASCII.
#[inline(always)]
pub(crate) fn hex_words(d: [u32; 4]) -> [u32; 8] {
    let lut = |v: u32| HEX_LUT[(v & 255) as usize] as u32;
    let mut h = [0u32; 8];
    for j in 0..4 {
        h[2 * j] = lut(d[j]) | lut(d[j] >> 8) << 16;
        h[2 * j + 1] = lut(d[j] >> 16) | lut(d[j] >> 24) << 16;
    }
    h
}

pub(crate) fn words_to_hex(h: &[u32; 8]) -> Hex {
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(h) {
        o.copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// A chain between iterations: the running MD5 state (with its buffered bytes) and the
/// hex digest produced by the last iteration, not yet appended.
#[derive(Clone, Copy)]
pub(crate) struct ChainState {
    pub(crate) md5: Md5,
    pub(crate) pending: [u32; 8],
}

/// The 96-byte window of the stream around the pending hex, as 24 words:
/// `[Cfull_{i-2} | Cfull_{i-1} | Ctail_{i-1}]` (see the module docs). The first cell is only
/// meaningful when the next iteration is a "B" one.
fn window(st: &ChainState) -> [u32; 24] {
    let len = st.md5.len;
    let p = (len % 32) as usize;
    let r = (len % 64) as usize;
    let mut win = [0u8; 96];
    let start = 32 + p - r;
    win[start..start + r].copy_from_slice(&st.md5.buf[..r]);
    win[32 + p..64 + p].copy_from_slice(&words_to_hex(&st.pending));
    win[64 + p] = 0x80;
    let mut w = [0u32; 24];
    for (wi, c) in w.iter_mut().zip(win.chunks_exact(4)) {
        *wi = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    w
}

impl ChainState {
    /// Iteration 0: the running state after `msg`, and the hex of its digest.
    pub(crate) fn start(msg: &[u8]) -> ChainState {
        let mut md5 = Md5::new();
        md5.update(msg);
        ChainState {
            pending: hex_words(md5.digest()),
            md5,
        }
    }

    /// One iteration by the generic path.
    #[cfg(test)]
    pub(crate) fn step(&mut self) {
        self.md5.update(&words_to_hex(&self.pending));
        self.pending = hex_words(self.md5.digest());
    }

    /// Runs `n` more iterations with the fast steady-state loop; returns the last hex.
    pub(crate) fn run(&self, n: u64) -> [u32; 8] {
        if n == 0 {
            return self.pending;
        }
        Cursor::from_chain(self).advance(n)
    }
}

/// Measured by `examples/kernel_bench.rs` (`scalar` mode) on the reference machine.
const SCALAR_ITERATION_NS: u64 = 112;
const SCALAR_LONG_ITERATION_NS: u64 = 143;

/// The 32-byte cells around a chain's pending hex (see the module docs).
#[derive(Clone, Copy, Default)]
pub(crate) struct Cells {
    pub(crate) p: [u32; 8],
    pub(crate) q: [u32; 8],
    pub(crate) t: [u32; 8],
}

/// A chain between iterations in the form the fast loop and the SIMD lanes work on: the
/// running state `s`, the cells and the bit length at the next final block. Before an "A"
/// iteration `P` = `Cfull_{i-1}` (`Q` is unused); before a "B" iteration `P` = `Cfull_{i-2}`
/// and `Q` = `Cfull_{i-1}`; `T` = `Ctail_{i-1}` in both. A lane of the lane table holds the
/// same words, so a chain moves between the scalar loop and a lane by copying them.
#[derive(Clone, Copy)]
pub(crate) struct Cursor {
    pub(crate) s: [u32; 4],
    pub(crate) cells: Cells,
    pub(crate) bits: u64,
}

impl Cursor {
    pub(crate) fn from_chain(st: &ChainState) -> Cursor {
        let win = window(st);
        let mut cells = Cells::default();
        if st.md5.len % 64 >= 32 {
            cells.p.copy_from_slice(&win[0..8]);
            cells.q.copy_from_slice(&win[8..16]);
        } else {
            cells.p.copy_from_slice(&win[8..16]);
        }
        cells.t.copy_from_slice(&win[16..24]);
        Cursor {
            s: st.md5.s,
            cells,
            bits: st.md5.len.wrapping_add(32).wrapping_mul(8),
        }
    }

    /// Bytes appended so far (modulo 2^61, which keeps every bit MD5 uses).
    fn len(&self) -> u64 {
        (self.bits / 8).wrapping_sub(32)
    }

    /// The byte offset of the pending hex in its cell (`len % 32`), fixed for the whole chain.
    pub(crate) fn p(&self) -> u32 {
        (self.len() % 32) as u32
    }

    /// Whether the next iteration is a "B" one.
    pub(crate) fn phase_b(&self) -> bool {
        self.len() % 64 >= 32
    }

    /// The pending hex: the last iteration's result.
    pub(crate) fn hex(&self) -> Hex {
        let mut win = [0u32; 24];
        if self.phase_b() {
            win[0..8].copy_from_slice(&self.cells.p);
            win[8..16].copy_from_slice(&self.cells.q);
        } else {
            win[8..16].copy_from_slice(&self.cells.p);
        }
        win[16..24].copy_from_slice(&self.cells.t);
        let mut bytes = [0u8; 96];
        for (c, w) in bytes.chunks_exact_mut(4).zip(&win) {
            c.copy_from_slice(&w.to_le_bytes());
        }
        let p = self.p() as usize;
        let mut hex = [0u8; 32];
        hex.copy_from_slice(&bytes[32 + p..64 + p]);
        hex
    }

    /// Estimated time of one iteration on the scalar chain, in ns: 1.5 blocks, or 2 when the
    /// "A" finals take two blocks (`p >= 24`).
    pub(crate) fn iteration_ns(&self) -> u64 {
        if self.p() >= 24 {
            SCALAR_LONG_ITERATION_NS
        } else {
            SCALAR_ITERATION_NS
        }
    }

    /// Runs `n >= 1` more iterations with the fast steady-state loop, in place; returns the
    /// last hex.
    pub(crate) fn advance(&mut self, n: u64) -> [u32; 8] {
        debug_assert!(n > 0);
        match self.p() / 4 {
            0 => run_loop::<0>(self, n),
            1 => run_loop::<1>(self, n),
            2 => run_loop::<2>(self, n),
            3 => run_loop::<3>(self, n),
            4 => run_loop::<4>(self, n),
            5 => run_loop::<5>(self, n),
            6 => run_loop::<6>(self, n),
            _ => run_loop::<7>(self, n),
        }
    }
}

/// `HEX_SHIFTED[s][k][v]` = the two hex digits of byte `v` (first digit lowest), shifted
/// left by `8 * s + 16 * k` bits: the hex of a 16-bit half of a digest word, already placed
/// at byte offset `s` of a 64-bit window, is one OR of two loads (see [`shifted_hex`]).
static HEX_SHIFTED: [[[u64; 256]; 2]; 4] = {
    let mut t = [[[0u64; 256]; 2]; 4];
    let mut s = 0;
    while s < 4 {
        let mut k = 0;
        while k < 2 {
            let mut v = 0;
            while v < 256 {
                t[s][k][v] = (HEX_LUT[v] as u64) << (8 * s + 16 * k);
                v += 1;
            }
            k += 1;
        }
        s += 1;
    }
    t
};

/// The hex of digest `d` seen through the cells' byte shift `s` (`lut` = `HEX_SHIFTED[s]`):
/// `x[m]` = bytes `[4m - s, 4m - s + 4)` of the hex (zero outside), `m = 0..=8`.
///
/// This sits on the critical path between a digest and the next compression, so each word
/// costs one byte extraction, two parallel loads and two ORs; the high half of hex word
/// `m - 1` (which is ready first) is ORed in last.
#[inline(always)]
fn shifted_hex(d: [u32; 4], lut: &[[u64; 256]; 2]) -> [u32; 9] {
    let shifted = |m: usize| {
        let v = d[m / 2] >> (16 * (m % 2));
        lut[0][(v & 255) as usize] | lut[1][(v >> 8 & 255) as usize]
    };
    let mut x = [0u32; 9];
    let mut spill = 0;
    for (m, xm) in x.iter_mut().enumerate().take(8) {
        let w = shifted(m);
        *xm = w as u32 | spill;
        spill = (w >> 32) as u32;
    }
    x[8] = spill;
    x
}

/// The new `(Cfull, Ctail)` from the shifted hex `x` (see [`shifted_hex`]) and the previous
/// `Ctail`, for `p = 4 * Q + sh / 8`.
#[inline(always)]
fn build<const Q: usize>(x: &[u32; 9], t_old: &[u32; 8], sh: u32) -> ([u32; 8], [u32; 8]) {
    let mut full = [0u32; 8];
    let mut tail = [0u32; 8];
    let low = ((1u64 << sh) - 1) as u32;
    for j in 0..8 {
        full[j] = if j < Q {
            t_old[j]
        } else if j == Q {
            x[0] | (t_old[Q] & low)
        } else {
            x[j - Q]
        };
        tail[j] = if j < Q {
            x[8 - Q + j]
        } else if j == Q {
            x[8] | 0x80 << sh
        } else {
            0
        };
    }
    (full, tail)
}

/// The digest of an "A" iteration: the final of `[Cfull | Ctail]` (`c.p`, `c.t`) from the
/// running state `s`, whose steps `0..lo` are already in `x`; `late` as for [`steps`]. When
/// `p >= 24` (`Q >= 6`) the padding spills into a second block of zeros and the length.
#[inline(always)]
fn digest_a<const Q: usize>(
    s: [u32; 4],
    x: [u32; 4],
    lo: usize,
    late: u64,
    c: &Cells,
    bits: u64,
) -> [u32; 4] {
    let (len_lo, len_hi) = (bits as u32, (bits >> 32) as u32);
    if Q >= 6 {
        let t = finish(s, x, lo, late, |i| if i < 8 { c.p[i] } else { c.t[i - 8] });
        finish(t, t, 0, 0, |i| match i {
            14 => len_lo,
            15 => len_hi,
            _ => 0,
        })
    } else {
        finish(s, x, lo, late, |i| match i {
            0..=7 => c.p[i],
            14 => len_lo,
            15 => len_hi,
            _ => c.t[i - 8],
        })
    }
}

/// The digest of a "B" iteration: the final of `[Ctail | zeros, length]` (`t`) from the
/// running state `s`, whose steps `0..lo` over `t` are already in `x`.
#[inline(always)]
fn digest_b(s: [u32; 4], x: [u32; 4], lo: usize, t: &[u32; 8], bits: u64) -> [u32; 4] {
    let (len_lo, len_hi) = (bits as u32, (bits >> 32) as u32);
    finish(s, x, lo, 0, |i| match i {
        0..=7 => t[i],
        14 => len_lo,
        15 => len_hi,
        _ => 0,
    })
}

/// The steady-state loop, two iterations (A then B) per turn; `Q = p / 4`.
///
/// The chain is latency-bound: each digest's hex feeds the next compression. What one turn
/// must do after the previous turn's hex is known:
/// 1. A digest `Da = compress(s, [P | T])` (`P`, `T` = the current `Cfull`, `Ctail`);
/// 2. B full block `s' = compress(s, [P | P'])` with `P'` = the new `Cfull` from A's hex;
/// 3. B digest `Db = compress(s', [T' | 0, len])` with `T'` = the new `Ctail`.
///
/// These share work:
/// - 1 and 2 start from the same `s` with the same words 0..7 (`P`), and `P'[j] = T[j]` for
///   `j < Q` (`P'` starts with the last `p` bytes of the previous hex, which end `T`; see
///   [`build`]): their steps 0..8+Q are the same, done once.
/// - 3 and the next turn's 1 start from the same `s'` with the same words 0..Q (`T'[j]`,
///   as the next `P` starts with the `p` bytes of `T'`): steps 0..Q are done once, in 3.
///
/// So a turn's critical path is `(64 - Q) + (56 - Q) + 64` steps instead of 192, plus two
/// hex encodings (and the 64 steps of the A digest's second block when `p >= 24`). Only
/// the first words from a hex wait for it (the rest of the state is ready), hence the
/// `late` masks; the digest's word 0 is ready three steps before its word 1, so the steps
/// that use only word 0's hex overlap the digest's last steps.
#[inline(never)]
fn run_loop<const Q: usize>(cursor: &mut Cursor, mut n: u64) -> [u32; 8] {
    let Cursor {
        mut s,
        cells: mut c,
        mut bits,
    } = *cursor;
    let p = cursor.p();
    let sh = 8 * (p % 4);
    let lut = &HEX_SHIFTED[(p % 4) as usize];
    debug_assert!(n > 0);
    // The last digest (its plain hex is the result; every path below sets it, as n > 0).
    let mut d = [0u32; 4];
    if cursor.phase_b() {
        // One B iteration to align on turns (`c.q` holds the second `Cfull`).
        s = compress(s, |i| if i < 8 { c.p[i] } else { c.q[i - 8] });
        d = digest_b(s, s, 0, &c.t, bits);
        (c.p, c.t) = build::<Q>(&shifted_hex(d, lut), &c.t, sh);
        bits = bits.wrapping_add(256);
        n -= 1;
    }
    if n > 0 {
        // `pre` = steps 0..Q of the next A digest (and B full block), from `s` over `c.p`.
        let mut pre = s;
        steps(&mut pre, 0, Q, 0, |i| c.p[i]);
        while n >= 2 {
            // Steps Q..8+Q, shared by the A digest and the B full block; from step Q on, the
            // words come from the last hex.
            let mut x = pre;
            let late = late_words(Q, 8);
            steps(&mut x, Q, 8 + Q, late, |i| {
                if i < 8 {
                    c.p[i]
                } else {
                    c.t[i - 8]
                }
            });
            let da = digest_a::<Q>(s, x, 8 + Q, late, &c, bits);
            let (full, tail) = build::<Q>(&shifted_hex(da, lut), &c.t, sh);
            // B full block, from step 8+Q on, where its words come from A's hex.
            let late = late_words(8 + Q, 16);
            let s2 = finish(
                s,
                x,
                8 + Q,
                late,
                |i| if i < 8 { c.p[i] } else { full[i - 8] },
            );
            // Steps 0..Q of the B digest, shared by the next A digest.
            pre = s2;
            steps(&mut pre, 0, Q, 0, |i| tail[i]);
            d = digest_b(s2, pre, Q, &tail, bits.wrapping_add(256));
            (c.p, c.t) = build::<Q>(&shifted_hex(d, lut), &tail, sh);
            s = s2;
            bits = bits.wrapping_add(512);
            n -= 2;
        }
        if n == 1 {
            // A last A iteration: its cells become `Q` and `T` of a "B" position.
            d = digest_a::<Q>(s, pre, Q, 0, &c, bits);
            (c.q, c.t) = build::<Q>(&shifted_hex(d, lut), &c.t, sh);
            bits = bits.wrapping_add(256);
        }
    }
    *cursor = Cursor { s, cells: c, bits };
    hex_words(d)
}

/// md5chain(msg, iterations) on the scalar path.
pub fn md5_chain(msg: &[u8], iterations: u64) -> Hex {
    let st = ChainState::start(msg);
    words_to_hex(&st.run(iterations.saturating_sub(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chain by the generic path only: `Md5::update` and `Md5::digest`, one iteration
    /// at a time.
    fn generic(msg: &[u8], iterations: u64) -> Hex {
        let mut st = ChainState::start(msg);
        for _ in 1..iterations {
            st.step();
        }
        words_to_hex(&st.pending)
    }

    /// The chain on the `md-5` crate: independent of this file's compression, which the
    /// generic path and the fast loop share.
    fn reference(msg: &[u8], iterations: u64) -> Hex {
        use md5::Digest;
        let mut state = md5::Md5::new();
        state.update(msg);
        let mut hex = [0u8; 32];
        hex::encode_to_slice(state.clone().finalize(), &mut hex).unwrap();
        for _ in 1..iterations {
            state.update(hex);
            hex::encode_to_slice(state.clone().finalize(), &mut hex).unwrap();
        }
        hex
    }

    #[test]
    fn generic_path_matches_md5_crate() {
        for len in 0..=80usize {
            let msg: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            assert_eq!(generic(&msg, 40), reference(&msg, 40), "len {len}");
        }
    }

    #[test]
    fn known_vector() {
        assert_eq!(
            &md5_chain(b"Hello World", 1_000_000),
            b"1e4110cf294414bc2ac346ad274a7af3"
        );
    }

    /// Every message length 0..=80 covers every `p` (so every `Q` and byte shift), both
    /// phases at the start of the fast loop, and `p >= 24` (two-block A finals); the
    /// iteration counts cover a lone A or B iteration, odd and even tails, and many turns.
    #[test]
    fn fast_loop_matches_generic_path() {
        for len in 0..=80usize {
            let msg: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            for iterations in [1, 2, 3, 4, 5, 17, 1000, 1001] {
                assert_eq!(
                    md5_chain(&msg, iterations),
                    generic(&msg, iterations),
                    "len {len}, {iterations} iterations"
                );
            }
        }
    }

    /// `run` from a state in the middle of a chain (either phase), as the SIMD engines call
    /// it for a lane left alone.
    #[test]
    fn run_from_any_state_matches_generic_path() {
        for len in [0usize, 11, 24, 31, 32, 45, 63, 64] {
            let msg = vec![b'x'; len];
            let mut st = ChainState::start(&msg);
            for k in 0..4 {
                for n in [0u64, 1, 2, 3, 8] {
                    let mut g = st;
                    for _ in 0..n {
                        g.step();
                    }
                    assert_eq!(st.run(n), g.pending, "len {len}, after {k}, run {n}");
                }
                st.step();
            }
        }
    }
}
