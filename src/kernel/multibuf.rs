//! Multi-buffer driver shared by the SIMD engines: one job per 32-bit lane, lanes kept in a
//! lane-sliced ("transposed") layout, `groups` vectors of lanes in flight.
//!
//! All lanes of an engine run in lockstep through the same sequence of compressions: a lane is
//! brought (in scalar code) to the engine's current phase before it joins, so every slot is
//! the same block type for every lane ("A" iteration: final `[Cfull | Ctail]`, plus a
//! `[zeros | length]` block when some lane has `p >= 24`; "B" iteration: update
//! `[Cfull_prev | Cfull]` then final `[Ctail | zeros, length]`; see `scalar.rs`). Lanes differ
//! only in their byte offset `p`, which the kernels apply when they turn a new digest into
//! cells (a per-lane funnel shift plus a three-stage per-lane word barrel shift).

use super::scalar::{window, words_to_hex, ChainState};
use super::{Hex, JobInput};

/// The most lanes any engine uses (4 groups of 16).
pub(crate) const MAX_LANES: usize = 64;

// Rows of the lane table: each row holds one 32-bit word for every lane.
/// Running state (4 rows).
pub(crate) const R_S: usize = 0;
/// Cell buffers P, Q and T (8 rows each).
pub(crate) const R_P: usize = 4;
pub(crate) const R_Q: usize = 12;
pub(crate) const R_T: usize = 20;
/// Bit length of the message at the next final block (low, high).
pub(crate) const R_LEN: usize = 28;
/// `8 * (p % 4)`: the per-lane funnel shift.
pub(crate) const R_SHIFT: usize = 30;
/// Lane masks (0 or !0) for bits 0, 1, 2 of `p / 4`: the word barrel shift.
pub(crate) const R_QM: usize = 31;
/// Per word of a cell: the bytes below `p` (kept from the previous tail).
pub(crate) const R_LOW: usize = 34;
/// Per word of a cell: the 0x80 padding byte at byte `p`.
pub(crate) const R_PAD: usize = 42;
/// Lane mask: `p < 24` (the final fits in one block in "A" iterations).
pub(crate) const R_SHORT: usize = 50;
/// Scratch: words 14 and 15 of the "A" final block (2 rows), a digest (4 rows).
pub(crate) const R_W: usize = 51;
pub(crate) const R_D: usize = 53;
pub(crate) const NROWS: usize = 57;

/// Block types: "A" final `[P | T, length]`, second final block `[zeros, length]`, update
/// `[P | Q]`, "B" final `[T | zeros, length]`.
pub(crate) const BT_FA: u8 = 0;
pub(crate) const BT_F2B: u8 = 1;
pub(crate) const BT_U: u8 = 2;
pub(crate) const BT_FB: u8 = 3;

/// The lane-table row holding word `k` of block type `bt`, or `None` for a zero word.
pub(crate) const fn word_row(bt: u8, k: usize) -> Option<usize> {
    match bt {
        BT_FA => Some(if k < 8 {
            R_P + k
        } else if k < 14 {
            R_T + k - 8
        } else {
            R_W + k - 14
        }),
        BT_F2B => {
            if k >= 14 {
                Some(R_LEN + k - 14)
            } else {
                None
            }
        }
        BT_U => Some(if k < 8 { R_P + k } else { R_Q + k - 8 }),
        _ => {
            if k < 8 {
                Some(R_T + k)
            } else if k >= 14 {
                Some(R_LEN + k - 14)
            } else {
                None
            }
        }
    }
}

/// The same reference, hidden from the optimizer: loads through it are not merged with
/// loads through other references, so message words are read from the lane table where they
/// are used (as memory operands) instead of being kept live in registers and spilled.
// The asm block neither reads nor writes through the pointer: it only hides its value.
#[allow(clippy::pointers_in_nomem_asm_block)]
#[inline(always)]
pub(crate) fn fresh(rows: &Rows) -> &Rows {
    let mut p: *const Rows = rows;
    // SAFETY: an empty asm block (a comment) that claims to rewrite one register; it touches
    // no memory, and `p` comes back unchanged.
    unsafe {
        core::arch::asm!("/* {0} */", inout(reg) p, options(nomem, nostack, preserves_flags))
    };
    // SAFETY: `p` is still `rows`, a valid shared reference for the returned lifetime.
    unsafe { &*p }
}

pub(crate) type Rows = [[u32; MAX_LANES]; NROWS];

/// A SIMD kernel: runs iterations on the lane table.
pub(crate) trait Kernel: Copy {
    /// Lanes per vector.
    const WIDTH: usize;
    /// Vectors (groups) in flight at full throughput.
    const MAX_GROUPS: usize;
    /// Runs `n >= 1` iterations on lanes `0..groups * WIDTH`, the first one of phase B if
    /// `phase_b`. The lanes with `p >= 24` (two-block finals in "A" iterations) are all in
    /// the first `long_groups` groups.
    fn iters(&self, rows: &mut Rows, groups: usize, phase_b: bool, n: u64, long_groups: usize);
}

#[derive(Clone, Copy)]
struct Slot {
    job: usize,
    remaining: u64,
}

/// Puts a chain (whose next iteration has the engine's phase) into lane `l`.
fn load_lane(rows: &mut Rows, l: usize, st: &ChainState, phase_b: bool) {
    let win = window(st);
    let len = st.md5.len;
    let p = (len % 32) as u32;
    for i in 0..4 {
        rows[R_S + i][l] = st.md5.s[i];
    }
    for j in 0..8 {
        if phase_b {
            rows[R_P + j][l] = win[j];
            rows[R_Q + j][l] = win[8 + j];
        } else {
            rows[R_P + j][l] = win[8 + j];
            rows[R_Q + j][l] = 0;
        }
        rows[R_T + j][l] = win[16 + j];
    }
    let bits = len.wrapping_add(32).wrapping_mul(8);
    rows[R_LEN][l] = bits as u32;
    rows[R_LEN + 1][l] = (bits >> 32) as u32;
    let (q, sh) = ((p / 4) as usize, 8 * (p % 4));
    rows[R_SHIFT][l] = sh;
    for b in 0..3 {
        rows[R_QM + b][l] = if q >> b & 1 == 1 { !0 } else { 0 };
    }
    for j in 0..8 {
        let (low, pad) = match j.cmp(&q) {
            core::cmp::Ordering::Less => (!0, 0),
            core::cmp::Ordering::Equal => (((1u64 << sh) - 1) as u32, 0x80u32 << sh),
            core::cmp::Ordering::Greater => (0, 0),
        };
        rows[R_LOW + j][l] = low;
        rows[R_PAD + j][l] = pad;
    }
    rows[R_SHORT][l] = if p < 24 { !0 } else { 0 };
}

fn lane_len(rows: &Rows, l: usize) -> u64 {
    let bits = u64::from(rows[R_LEN][l]) | u64::from(rows[R_LEN + 1][l]) << 32;
    (bits / 8).wrapping_sub(32)
}

/// The cells of lane `l` as `[Cfull_{i-2} | Cfull_{i-1} | Ctail_{i-1}]`, when the next
/// iteration has phase `phase_b`.
fn lane_window(rows: &Rows, l: usize, phase_b: bool) -> [u32; 24] {
    let mut w = [0u32; 24];
    for j in 0..8 {
        if phase_b {
            w[j] = rows[R_P + j][l];
            w[8 + j] = rows[R_Q + j][l];
        } else {
            w[8 + j] = rows[R_P + j][l];
        }
        w[16 + j] = rows[R_T + j][l];
    }
    w
}

/// The chain in lane `l`, when the next iteration has phase `phase_b`.
fn lane_chain(rows: &Rows, l: usize, phase_b: bool) -> ChainState {
    let s = [
        rows[R_S][l],
        rows[R_S + 1][l],
        rows[R_S + 2][l],
        rows[R_S + 3][l],
    ];
    ChainState::from_window(s, lane_len(rows, l), &lane_window(rows, l, phase_b))
}

fn swap_lanes(rows: &mut Rows, a: usize, b: usize) {
    for row in rows.iter_mut() {
        row.swap(a, b);
    }
}

fn move_lane(rows: &mut Rows, from: usize, to: usize) {
    for row in rows.iter_mut() {
        row[to] = row[from];
    }
}

/// Takes jobs until one needs the SIMD lanes (and puts it in lane `l`); finishes the jobs that
/// end within the scalar iterations that bring them to the engine's phase.
fn take(
    jobs: &[JobInput<'_>],
    rows: &mut Rows,
    l: usize,
    phase_b: bool,
    next: &mut usize,
    done: &mut dyn FnMut(usize, &Hex),
) -> Option<Slot> {
    while let Some(job) = jobs.get(*next) {
        let index = *next;
        *next += 1;
        let mut st = ChainState::start(job.msg);
        let mut remaining = job.iterations.saturating_sub(1);
        if remaining > 0 && (st.md5.len % 64 >= 32) != phase_b {
            st.step();
            remaining -= 1;
        }
        if remaining == 0 {
            done(index, &words_to_hex(&st.pending));
            continue;
        }
        load_lane(rows, l, &st, phase_b);
        return Some(Slot {
            job: index,
            remaining,
        });
    }
    None
}

/// Runs every job on kernel `k`, calling `done` as each finishes.
pub(crate) fn run<K: Kernel>(k: K, jobs: &[JobInput<'_>], done: &mut dyn FnMut(usize, &Hex)) {
    let width = K::WIDTH;
    let mut groups = jobs.len().div_ceil(width).clamp(1, K::MAX_GROUPS);
    let mut rows: Rows = [[0; MAX_LANES]; NROWS];
    let mut slots: [Option<Slot>; MAX_LANES] = [None; MAX_LANES];
    let mut next = 0usize;
    let mut phase_b = false;

    for (l, slot) in slots.iter_mut().enumerate().take(groups * width) {
        *slot = take(jobs, &mut rows, l, phase_b, &mut next, done);
    }
    loop {
        let lanes = groups * width;
        let active = slots[..lanes].iter().filter(|s| s.is_some()).count();
        if active == 0 {
            break;
        }
        if next >= jobs.len() {
            if active == 1 {
                // A lone job runs at scalar speed.
                if let Some((l, Some(s))) =
                    slots[..lanes].iter().enumerate().find(|(_, s)| s.is_some())
                {
                    let st = lane_chain(&rows, l, phase_b);
                    done(s.job, &words_to_hex(&st.run(s.remaining)));
                }
                break;
            }
            let need = active.div_ceil(width);
            if need < groups {
                // Fewer groups: pack the active lanes at the front.
                let mut to = 0;
                for from in 0..lanes {
                    if let Some(s) = slots[from] {
                        if from != to {
                            move_lane(&mut rows, from, to);
                            slots[to] = Some(s);
                            slots[from] = None;
                        }
                        to += 1;
                    }
                }
                groups = need;
                continue;
            }
        }
        // Lanes with two-block finals first, so that only their groups pay for the extra block.
        let is_long = |rows: &Rows, slots: &[Option<Slot>], l: usize| {
            slots[l].is_some() && rows[R_SHORT][l] == 0
        };
        let (mut i, mut j) = (0, lanes - 1);
        while i < j {
            if is_long(&rows, &slots, i) {
                i += 1;
            } else if !is_long(&rows, &slots, j) {
                j -= 1;
            } else {
                swap_lanes(&mut rows, i, j);
                slots.swap(i, j);
            }
        }
        // Run until the next lane finishes, but never past a wrap of a length's low word.
        let mut n = u64::MAX;
        let mut long = 0;
        for (l, s) in slots[..lanes].iter().enumerate() {
            if let Some(s) = s {
                n = n.min(s.remaining);
                let lo = u64::from(rows[R_LEN][l]);
                n = n.min(((1u64 << 32) - lo).div_ceil(256));
                long += usize::from(rows[R_SHORT][l] == 0);
            }
        }
        let before: [u32; MAX_LANES] = rows[R_LEN];
        k.iters(&mut rows, groups, phase_b, n, long.div_ceil(width));
        phase_b ^= n % 2 == 1;
        for l in 0..lanes {
            // The kernel adds 256 bits to the low word per iteration; `n` was capped so that
            // it wraps at most once, at the very end.
            if u64::from(before[l]) + 256 * n >= 1 << 32 {
                rows[R_LEN + 1][l] = rows[R_LEN + 1][l].wrapping_add(1);
            }
            if let Some(s) = &mut slots[l] {
                s.remaining -= n;
                if s.remaining == 0 {
                    let st = lane_chain(&rows, l, phase_b);
                    done(s.job, &words_to_hex(&st.pending));
                    slots[l] = take(jobs, &mut rows, l, phase_b, &mut next, done);
                }
            }
        }
    }
}

/// The SIMD kernel body, shared by the AVX2 and AVX-512 modules. The invoking module
/// provides (all `#[inline]` and enabled for the same target features): the vector type `V`,
/// mask type `M`, `WIDTH`, `ld`/`st` (a lane-table row slice <-> vector), `add`, `or`,
/// `splat`, `zero`, `ff`/`fg`/`fh`/`fi`, `rotl::<S, 32 - S>`, `hex` (digest word -> two hex
/// words), `funnel` (`(hi << c) | (lo >> (32 - c))`, 0 shifts allowed), `mask_of`,
/// `sel(m, a, b)` (`m ? b : a`), `selz_not(m, b)` (`m ? 0 : b`), `or_and(s, t, m)` (`s | (t & m)`).
macro_rules! simd_kernel {
    ($feat:literal) => {
        use super::multibuf::{
            fresh, word_row, Rows, BT_F2B, BT_FA, BT_FB, BT_U, R_D, R_LEN, R_LOW, R_P, R_PAD, R_Q,
            R_QM, R_S, R_SHIFT, R_SHORT, R_T, R_W,
        };
        use super::scalar::{for_each_step, rot, widx, K};

        /// One compression of block type `BT` on `G` groups, interleaved, from the state in
        /// rows `S0..S0 + 4`; returns the new state (with the feed-forward).
        #[inline]
        #[target_feature(enable = $feat)]
        fn compress<const G: usize, const BT: u8, const S0: usize>(rows: &Rows) -> [[V; 4]; G] {
            let mut x = [[zero(); 4]; G];
            for g in 0..G {
                for i in 0..4 {
                    x[g][i] = ld(&rows[S0 + i], g);
                }
            }
            macro_rules! one {
                ($i:literal) => {{
                    let t = (4 - $i % 4) % 4;
                    let rr = fresh(rows);
                    for g in 0..G {
                        let y = &mut x[g];
                        let (a, b, c, d) = (y[t], y[(t + 1) % 4], y[(t + 2) % 4], y[(t + 3) % 4]);
                        let f = match $i / 16 {
                            0 => ff(b, c, d),
                            1 => fg(b, c, d),
                            2 => fh(b, c, d),
                            _ => fi(b, c, d),
                        };
                        let mut sum = add(a, splat(K[$i]));
                        if let Some(r) = word_row(BT, widx($i)) {
                            sum = add(sum, ld(&rr[r], g));
                        }
                        let sum = add(pin(sum), f);
                        y[t] = add(b, rotl::<{ rot($i) as i32 }, { 32 - rot($i) as i32 }>(sum));
                    }
                }};
            }
            for_each_step!(one);
            let rr = fresh(rows);
            for g in 0..G {
                for i in 0..4 {
                    x[g][i] = add(x[g][i], ld(&rr[S0 + i], g));
                }
            }
            x
        }

        /// Turns the digest of group `g` into the new `Cfull` (row `full`) and `Ctail`.
        #[inline]
        #[target_feature(enable = $feat)]
        fn cells(rows: &mut Rows, g: usize, dig: &[V; 4], full: usize, m: &[M; 3]) {
            let mut h = [zero(); 10];
            for j in 0..4 {
                let (a, b) = hex(dig[j]);
                h[2 * j + 1] = a;
                h[2 * j + 2] = b;
            }
            // h[1..9] are the hex words; h[0] = h[9] = 0.
            let cnt = ld(&rows[R_SHIFT], g);
            let mut x = [zero(); 16];
            for i in 0..9 {
                x[i] = funnel(h[i + 1], h[i], cnt);
            }
            // Word barrel shift by p / 4 (per lane): x[k] <- x[k - 1], x[k - 2], x[k - 4].
            for k in (0..10).rev() {
                x[k] = if k == 0 {
                    selz_not(m[0], x[0])
                } else {
                    sel(m[0], x[k], x[k - 1])
                };
            }
            for k in (0..12).rev() {
                x[k] = if k < 2 {
                    selz_not(m[1], x[k])
                } else {
                    sel(m[1], x[k], x[k - 2])
                };
            }
            for k in (0..16).rev() {
                x[k] = if k < 4 {
                    selz_not(m[2], x[k])
                } else {
                    sel(m[2], x[k], x[k - 4])
                };
            }
            for j in 0..8 {
                let t = ld(&rows[R_T + j], g);
                let nf = or_and(x[j], t, ld(&rows[R_LOW + j], g));
                let nt = or(x[8 + j], ld(&rows[R_PAD + j], g));
                st(&mut rows[full + j], g, nf);
                st(&mut rows[R_T + j], g, nt);
            }
        }

        #[inline]
        #[target_feature(enable = $feat)]
        fn advance_len<const G: usize>(rows: &mut Rows) {
            for g in 0..G {
                let lo = add(ld(&rows[R_LEN], g), splat(256));
                st(&mut rows[R_LEN], g, lo);
            }
        }

        /// An "A" iteration.
        #[inline]
        #[target_feature(enable = $feat)]
        fn iter_a<const G: usize>(
            rows: &mut Rows,
            m: &[[M; 3]; G],
            short: &[M; G],
            long_groups: usize,
        ) {
            for g in 0..G {
                for i in 0..2 {
                    let w = sel(short[g], ld(&rows[R_T + 6 + i], g), ld(&rows[R_LEN + i], g));
                    st(&mut rows[R_W + i], g, w);
                }
            }
            let mut dig = compress::<G, BT_FA, R_S>(rows);
            let lg = long_groups.min(G);
            // Groups without long lanes are done: their cells first, so that the out-of-order
            // core overlaps them with the (latency-bound) second final block of the others.
            for g in lg..G {
                cells(rows, g, &dig[g], R_Q, &m[g]);
            }
            if lg > 0 {
                for g in 0..lg {
                    for i in 0..4 {
                        st(&mut rows[R_D + i], g, dig[g][i]);
                    }
                }
                // The second final block, only on the groups that hold long lanes.
                macro_rules! second {
                    ($lg:literal) => {{
                        let d2 = compress::<$lg, BT_F2B, R_D>(rows);
                        for g in 0..$lg.min(G) {
                            for i in 0..4 {
                                dig[g][i] = sel(short[g], d2[g][i], dig[g][i]);
                            }
                        }
                    }};
                }
                match lg {
                    1 => second!(1),
                    2 => second!(2),
                    3 => second!(3),
                    _ => second!(4),
                }
                for g in 0..lg {
                    cells(rows, g, &dig[g], R_Q, &m[g]);
                }
            }
            advance_len::<G>(rows);
        }

        /// A "B" iteration.
        #[inline]
        #[target_feature(enable = $feat)]
        fn iter_b<const G: usize>(rows: &mut Rows, m: &[[M; 3]; G]) {
            let s = compress::<G, BT_U, R_S>(rows);
            for g in 0..G {
                for i in 0..4 {
                    st(&mut rows[R_S + i], g, s[g][i]);
                }
            }
            let dig = compress::<G, BT_FB, R_S>(rows);
            for g in 0..G {
                cells(rows, g, &dig[g], R_P, &m[g]);
            }
            advance_len::<G>(rows);
        }

        #[target_feature(enable = $feat)]
        fn iters_g<const G: usize>(
            rows: &mut Rows,
            mut phase_b: bool,
            mut n: u64,
            long_groups: usize,
        ) {
            let mut m = [[mask_of(zero()); 3]; G];
            let mut short = [mask_of(zero()); G];
            for g in 0..G {
                for b in 0..3 {
                    m[g][b] = mask_of(ld(&rows[R_QM + b], g));
                }
                short[g] = mask_of(ld(&rows[R_SHORT], g));
            }
            while n > 0 {
                if phase_b {
                    iter_b::<G>(rows, &m);
                } else {
                    iter_a::<G>(rows, &m, &short, long_groups);
                }
                phase_b = !phase_b;
                n -= 1;
            }
        }

        /// # Safety
        /// The CPU and OS must support the target features of this module.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn iters(
            rows: &mut Rows,
            groups: usize,
            phase_b: bool,
            n: u64,
            long_groups: usize,
        ) {
            match groups {
                1 => iters_g::<1>(rows, phase_b, n, long_groups),
                2 => iters_g::<2>(rows, phase_b, n, long_groups),
                3 => iters_g::<3>(rows, phase_b, n, long_groups),
                _ => iters_g::<4>(rows, phase_b, n, long_groups),
            }
        }
    };
}
pub(crate) use simd_kernel;
