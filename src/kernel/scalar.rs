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

/// One MD5 step on the state array `x` (a, b, c, d); roles rotate with `I`.
#[inline(always)]
fn step<const I: usize>(x: &mut [u32; 4], w: u32) {
    let t = (4 - I % 4) % 4;
    let (a, b, c, d) = (x[t], x[(t + 1) % 4], x[(t + 2) % 4], x[(t + 3) % 4]);
    // Everything that does not depend on `b` (the newest value) is summed first, behind an
    // optimization barrier, so that only the late part of F/G/H/I, one add, the rotate and
    // the final add stay on the critical path. (G's two terms have disjoint bits.)
    let early = a.wrapping_add(K[I]).wrapping_add(w);
    let sum = match I / 16 {
        0 => opaque(early).wrapping_add(d ^ (b & (c ^ d))),
        1 => opaque(early.wrapping_add(!d & c)).wrapping_add(d & b),
        2 => opaque(early).wrapping_add(b ^ (c ^ d)),
        _ => opaque(early).wrapping_add(c ^ (b | !d)),
    };
    x[t] = b.wrapping_add(sum.rotate_left(rot(I)));
}

/// The 64 steps on `s` with message words `w(0..16)`; returns the state *without* the final
/// feed-forward addition. `w` is evaluated with constant indices, so constant words fold.
#[inline(always)]
fn rounds(s: [u32; 4], w: impl Fn(usize) -> u32) -> [u32; 4] {
    let mut x = s;
    macro_rules! one {
        ($i:literal) => {
            step::<$i>(&mut x, w(widx($i)))
        };
    }
    for_each_step!(one);
    x
}

#[inline(always)]
fn add4(a: [u32; 4], b: [u32; 4]) -> [u32; 4] {
    [
        a[0].wrapping_add(b[0]),
        a[1].wrapping_add(b[1]),
        a[2].wrapping_add(b[2]),
        a[3].wrapping_add(b[3]),
    ]
}

/// A full MD5 compression with feed-forward.
#[inline(always)]
pub(crate) fn compress(s: [u32; 4], w: impl Fn(usize) -> u32) -> [u32; 4] {
    add4(s, rounds(s, w))
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

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn hex_to_words(h: &Hex) -> [u32; 8] {
    let mut w = [0u32; 8];
    for (wi, c) in w.iter_mut().zip(h.chunks_exact(4)) {
        *wi = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    w
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
pub(crate) fn window(st: &ChainState) -> [u32; 24] {
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
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn step(&mut self) {
        self.md5.update(&words_to_hex(&self.pending));
        self.pending = hex_words(self.md5.digest());
    }

    /// Rebuilds a chain from cells (the inverse of [`window`]): `len` bytes appended so far,
    /// `win` = `[Cfull_{i-2} | Cfull_{i-1} | Ctail_{i-1}]`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn from_window(s: [u32; 4], len: u64, win: &[u32; 24]) -> ChainState {
        let p = (len % 32) as usize;
        let r = (len % 64) as usize;
        let mut bytes = [0u8; 96];
        for (c, w) in bytes.chunks_exact_mut(4).zip(win) {
            c.copy_from_slice(&w.to_le_bytes());
        }
        let mut buf = [0u8; 64];
        let start = 32 + p - r;
        buf[..r].copy_from_slice(&bytes[start..start + r]);
        let mut hex = [0u8; 32];
        hex.copy_from_slice(&bytes[32 + p..64 + p]);
        ChainState {
            md5: Md5 { s, len, buf },
            pending: hex_to_words(&hex),
        }
    }

    /// Runs `n` more iterations with the fast steady-state loop; returns the last hex.
    pub(crate) fn run(&self, n: u64) -> [u32; 8] {
        if n == 0 {
            return self.pending;
        }
        let len = self.md5.len;
        let p = (len % 32) as u32;
        let win = window(self);
        let mut cells = Cells {
            p: [0; 8],
            q: [0; 8],
            t: [0; 8],
        };
        let phase_b = len % 64 >= 32;
        if phase_b {
            cells.p.copy_from_slice(&win[0..8]);
            cells.q.copy_from_slice(&win[8..16]);
        } else {
            cells.p.copy_from_slice(&win[8..16]);
        }
        cells.t.copy_from_slice(&win[16..24]);
        let bits = len.wrapping_add(32).wrapping_mul(8);
        match p / 4 {
            0 => run_loop::<0>(self.md5.s, cells, bits, p, phase_b, n),
            1 => run_loop::<1>(self.md5.s, cells, bits, p, phase_b, n),
            2 => run_loop::<2>(self.md5.s, cells, bits, p, phase_b, n),
            3 => run_loop::<3>(self.md5.s, cells, bits, p, phase_b, n),
            4 => run_loop::<4>(self.md5.s, cells, bits, p, phase_b, n),
            5 => run_loop::<5>(self.md5.s, cells, bits, p, phase_b, n),
            6 => run_loop::<6>(self.md5.s, cells, bits, p, phase_b, n),
            _ => run_loop::<7>(self.md5.s, cells, bits, p, phase_b, n),
        }
    }
}

#[derive(Clone, Copy)]
struct Cells {
    p: [u32; 8],
    q: [u32; 8],
    t: [u32; 8],
}

/// The new `(Cfull, Ctail)` from hex `h` and the previous `Ctail`, for `p = 4 * Q + sh / 8`.
#[inline(always)]
fn build<const Q: usize>(h: &[u32; 8], t_old: &[u32; 8], sh: u32) -> ([u32; 8], [u32; 8]) {
    // x[m] = bytes [4m - s, 4m - s + 4) of h (zero outside), s = sh / 8.
    let hw = |m: usize| {
        if (1..=8).contains(&m) {
            h[m - 1] as u64
        } else {
            0
        }
    };
    let x = |m: usize| (((hw(m + 1) << 32) | hw(m)) >> (32 - sh)) as u32;
    let mut full = [0u32; 8];
    let mut tail = [0u32; 8];
    let low = ((1u64 << sh) - 1) as u32;
    for j in 0..8 {
        full[j] = if j < Q {
            t_old[j]
        } else if j == Q {
            x(0) | (t_old[Q] & low)
        } else {
            x(j - Q)
        };
        tail[j] = if j < Q {
            x(8 - Q + j)
        } else if j == Q {
            x(8) | 0x80 << sh
        } else {
            0
        };
    }
    (full, tail)
}

#[inline(never)]
fn run_loop<const Q: usize>(
    mut s: [u32; 4],
    mut c: Cells,
    mut bits: u64,
    p: u32,
    mut phase_b: bool,
    mut n: u64,
) -> [u32; 8] {
    let sh = 8 * (p % 4);
    let long = p >= 24;
    let mut h = [0u32; 8];
    while n > 0 {
        let (lo, hi) = (bits as u32, (bits >> 32) as u32);
        if !phase_b {
            let dig = if long {
                let t = compress(s, |i| if i < 8 { c.p[i] } else { c.t[i - 8] });
                compress(t, |i| match i {
                    14 => lo,
                    15 => hi,
                    _ => 0,
                })
            } else {
                compress(s, |i| match i {
                    0..=7 => c.p[i],
                    14 => lo,
                    15 => hi,
                    _ => c.t[i - 8],
                })
            };
            h = hex_words(dig);
            (c.q, c.t) = build::<Q>(&h, &c.t, sh);
        } else {
            s = compress(s, |i| if i < 8 { c.p[i] } else { c.q[i - 8] });
            let dig = compress(s, |i| match i {
                0..=7 => c.t[i],
                14 => lo,
                15 => hi,
                _ => 0,
            });
            h = hex_words(dig);
            (c.p, c.t) = build::<Q>(&h, &c.t, sh);
        }
        bits = bits.wrapping_add(256);
        phase_b = !phase_b;
        n -= 1;
    }
    h
}

/// md5chain(msg, iterations) on the scalar path.
pub fn md5_chain(msg: &[u8], iterations: u64) -> Hex {
    let st = ChainState::start(msg);
    words_to_hex(&st.run(iterations.saturating_sub(1)))
}
