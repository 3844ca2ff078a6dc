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

use super::lanes::{Chain, Driver, Events};
use super::scalar::{Cells, Cursor};
use super::Hex;

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

/// The lane table on a cache-line boundary: every row is then 4 cache lines, and no vector
/// load or store of a group straddles two of them.
#[repr(C, align(64))]
struct Table(Rows);

/// A SIMD kernel: runs iterations on the lane table.
pub(crate) trait Kernel: Copy + Send + 'static {
    /// Lanes per vector.
    const WIDTH: usize;
    /// Vectors (groups) in flight at full throughput.
    const MAX_GROUPS: usize;
    /// Runs `n >= 1` iterations on lanes `0..groups * WIDTH`, the first one of phase B if
    /// `phase_b`. The lanes with `p >= 24` (two-block finals in "A" iterations) are all in
    /// the first `long_groups` groups.
    fn iters(&self, rows: &mut Rows, groups: usize, phase_b: bool, n: u64, long_groups: usize);
    /// One iteration (1.5 blocks) in ns: per group at full throughput, and the floor that a
    /// lone group's dependency chain sets.
    const GROUP_ITERATION_NS: u64;
    const LATENCY_ITERATION_NS: u64;

    /// Estimated time of one iteration on `groups` groups, `long_groups` of them with lanes
    /// whose "A" finals take two blocks, in ns: groups run in parallel up to the throughput
    /// of the vector units, and a long group does half a block more (2 blocks, not 1.5).
    fn iteration_ns(groups: usize, long_groups: usize) -> u64 {
        let base = Self::LATENCY_ITERATION_NS.max(Self::GROUP_ITERATION_NS * groups as u64);
        base + base * long_groups as u64 / (3 * groups as u64)
    }
}

/// A job in a lane: its caller's tag and the iterations it has left.
#[derive(Clone, Copy)]
struct Slot {
    tag: u64,
    remaining: u64,
}

/// Puts a chain (whose next iteration has the lanes' phase) into lane `l`.
fn load_lane(rows: &mut Rows, l: usize, c: &Cursor) {
    for i in 0..4 {
        rows[R_S + i][l] = c.s[i];
    }
    for j in 0..8 {
        rows[R_P + j][l] = c.cells.p[j];
        rows[R_Q + j][l] = c.cells.q[j];
        rows[R_T + j][l] = c.cells.t[j];
    }
    rows[R_LEN][l] = c.bits as u32;
    rows[R_LEN + 1][l] = (c.bits >> 32) as u32;
    let p = c.p();
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

/// The chain in lane `l` (the inverse of [`load_lane`]).
fn lane_cursor(rows: &Rows, l: usize) -> Cursor {
    let mut c = Cursor {
        s: [0; 4],
        cells: Cells::default(),
        bits: u64::from(rows[R_LEN][l]) | u64::from(rows[R_LEN + 1][l]) << 32,
    };
    for i in 0..4 {
        c.s[i] = rows[R_S + i][l];
    }
    for j in 0..8 {
        c.cells.p[j] = rows[R_P + j][l];
        c.cells.q[j] = rows[R_Q + j][l];
        c.cells.t[j] = rows[R_T + j][l];
    }
    c
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

/// The running jobs of a SIMD engine: a lone job on the scalar chain (it is faster there than
/// one lane of a vector), two or more in lanes that all run in lockstep, in as few groups as
/// hold them.
pub(crate) struct Simd<K: Kernel> {
    k: K,
    rows: Box<Table>,
    slots: [Option<Slot>; MAX_LANES],
    /// Jobs in lanes.
    active: usize,
    /// Groups in use (vectors of `K::WIDTH` lanes).
    groups: usize,
    /// Whether the lanes' next iteration is a "B" one.
    phase_b: bool,
    /// The lone job, on the scalar chain (only while no lane is in use).
    solo: Option<Chain>,
}

impl<K: Kernel> Simd<K> {
    pub(crate) fn new(k: K) -> Simd<K> {
        Simd {
            k,
            rows: Box::new(Table([[0; MAX_LANES]; NROWS])),
            slots: [None; MAX_LANES],
            active: 0,
            groups: 1,
            phase_b: false,
            solo: None,
        }
    }

    /// Puts `job` in the lowest free lane, first bringing it to the lanes' phase with one
    /// scalar iteration; returns its hex instead if that iteration was its last.
    fn load(&mut self, mut job: Chain, left: &mut u64) -> Option<Hex> {
        if self.active == 0 {
            self.phase_b = job.cursor.phase_b();
        } else if job.cursor.phase_b() != self.phase_b {
            if let Some(hex) = job.advance(1, left) {
                return Some(hex);
            }
        }
        let l = (self.slots.iter().position(Option::is_none))
            .expect("a free lane: jobs start only below the capacity");
        self.groups = self.groups.max(l / K::WIDTH + 1);
        load_lane(&mut self.rows.0, l, &job.cursor);
        self.slots[l] = Some(Slot {
            tag: job.tag,
            remaining: job.remaining,
        });
        self.active += 1;
        None
    }

    /// Moves the last job in a lane to the scalar chain.
    fn unload_last(&mut self) {
        if let Some(l) = self.slots.iter().position(Option::is_some) {
            if let Some(slot) = self.slots[l].take() {
                self.active = 0;
                self.solo = Some(Chain {
                    tag: slot.tag,
                    cursor: lane_cursor(&self.rows.0, l),
                    remaining: slot.remaining,
                });
            }
        }
    }

    /// Packs the jobs into the first lanes when they fit in fewer groups.
    fn shrink(&mut self) {
        let need = self.active.div_ceil(K::WIDTH).max(1);
        if need >= self.groups {
            return;
        }
        let mut to = 0;
        for from in 0..self.groups * K::WIDTH {
            if let Some(s) = self.slots[from] {
                if from != to {
                    move_lane(&mut self.rows.0, from, to);
                    self.slots[to] = Some(s);
                    self.slots[from] = None;
                }
                to += 1;
            }
        }
        self.groups = need;
    }

    /// Puts the lanes with two-block finals first, so that only their groups pay for the
    /// extra block; returns how many groups hold them.
    fn long_lanes_first(&mut self) -> usize {
        let lanes = self.groups * K::WIDTH;
        let is_long = |rows: &Rows, slots: &[Option<Slot>], l: usize| {
            slots[l].is_some() && rows[R_SHORT][l] == 0
        };
        let (mut i, mut j) = (0, lanes - 1);
        while i < j {
            if is_long(&self.rows.0, &self.slots, i) {
                i += 1;
            } else if !is_long(&self.rows.0, &self.slots, j) {
                j -= 1;
            } else {
                swap_lanes(&mut self.rows.0, i, j);
                self.slots.swap(i, j);
            }
        }
        let long = (0..lanes)
            .filter(|&l| is_long(&self.rows.0, &self.slots, l))
            .count();
        long.div_ceil(K::WIDTH)
    }

    /// Runs the lanes until the next one finishes, or for about `left` ns (at least one
    /// iteration).
    fn step_lanes(&mut self, left: &mut u64, events: &mut dyn Events) {
        self.shrink();
        let long_groups = self.long_lanes_first();
        let lanes = self.groups * K::WIDTH;
        // Never past a wrap of a length's low word.
        let mut n = u64::MAX;
        for (l, s) in self.slots[..lanes].iter().enumerate() {
            if let Some(s) = s {
                n = n.min(s.remaining);
                let lo = u64::from(self.rows.0[R_LEN][l]);
                n = n.min(((1u64 << 32) - lo).div_ceil(256));
            }
        }
        let cost = K::iteration_ns(self.groups, long_groups);
        n = n.min((*left / cost).max(1));
        *left = left.saturating_sub(n.saturating_mul(cost));
        let before: [u32; MAX_LANES] = self.rows.0[R_LEN];
        self.k
            .iters(&mut self.rows.0, self.groups, self.phase_b, n, long_groups);
        self.phase_b ^= n % 2 == 1;
        for (l, &lo) in before.iter().enumerate().take(lanes) {
            // The kernel adds 256 bits to the low word per iteration; `n` was capped so that
            // it wraps at most once, at the very end.
            if u64::from(lo) + 256 * n >= 1 << 32 {
                self.rows.0[R_LEN + 1][l] = self.rows.0[R_LEN + 1][l].wrapping_add(1);
            }
            if let Some(s) = &mut self.slots[l] {
                s.remaining -= n;
                if s.remaining == 0 {
                    let tag = s.tag;
                    self.slots[l] = None;
                    self.active -= 1;
                    events.finished(tag, &lane_cursor(&self.rows.0, l).hex());
                }
            }
        }
    }
}

impl<K: Kernel> Driver for Simd<K> {
    fn capacity(&self) -> usize {
        K::WIDTH * K::MAX_GROUPS
    }

    fn running(&self) -> usize {
        self.active + usize::from(self.solo.is_some())
    }

    fn start(&mut self, job: Chain, left: &mut u64) -> Option<Hex> {
        if self.running() == 0 {
            self.solo = Some(job);
            return None;
        }
        if let Some(solo) = self.solo.take() {
            // The first job in a lane sets the phase: it cannot finish on the way.
            self.load(solo, left);
        }
        self.load(job, left)
    }

    fn remove(&mut self, tag: u64) -> bool {
        if self.solo.is_some_and(|s| s.tag == tag) {
            self.solo = None;
            return true;
        }
        match self
            .slots
            .iter()
            .position(|s| s.is_some_and(|s| s.tag == tag))
        {
            Some(l) => {
                self.slots[l] = None;
                self.active -= 1;
                true
            }
            None => false,
        }
    }

    fn step(&mut self, left: &mut u64, events: &mut dyn Events) {
        if self.active == 1 {
            self.unload_last();
        }
        if let Some(solo) = &mut self.solo {
            if let Some(hex) = solo.advance(u64::MAX, left) {
                events.finished(solo.tag, &hex);
                self.solo = None;
            }
        } else if self.active > 0 {
            self.step_lanes(left, events);
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
