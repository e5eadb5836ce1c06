//! The tree scorer's vector kernels: AVX2 and AVX-512 versions of the block paths, chosen at run
//! time by [`Isa`] (the everyday build targets baseline x86-64).
//!
//! Every kernel computes exactly what its portable version in `tree.rs` computes (the leaves a
//! row reaches, then `acc + scale * value` in f64 with no fused multiply-add), so results are
//! bit-identical whatever the CPU; the property test in `tree.rs` runs every level this CPU has.

use super::{BLOCK, Block, Lane, LeafMask, Masked, Perfect};

/// A level of vector instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Level {
    /// The portable loops (what the compiler makes of them for the build's target).
    Base,
    /// AVX2 and BMI1: 256-bit vectors and gathers.
    Avx2,
    /// AVX-512 (F, CD, BW, VL) on top of AVX2: 512-bit vectors, mask registers, lane permutes of
    /// 16 and 32 entries.
    Avx512,
}

/// The vector instructions the scorer uses: a token that only CPU detection makes ([`Isa::detect`],
/// and [`Isa::available`] in tests, which never goes above it), so a level this CPU lacks cannot
/// reach the `target_feature` kernels below, which are sound only at a level the CPU runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Isa(Level);

impl Isa {
    /// The level this token stands for.
    pub(super) fn level(self) -> Level {
        self.0
    }

    /// The best level this CPU runs, or a lower one named by `MLSHIP_ISA` (`base`, `avx2`), to
    /// compare them or to rule a level out; found once per process. The unsafe calls below rely
    /// on `Isa` values coming from here (or from [`Isa::available`], which never goes above it).
    pub(super) fn detect() -> Isa {
        static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| {
            let cap = match std::env::var("MLSHIP_ISA").as_deref() {
                Ok("base") => Level::Base,
                Ok("avx2") => Level::Avx2,
                _ => Level::Avx512,
            };
            Isa(Isa::cpu().min(cap))
        })
    }

    /// The best level this CPU runs.
    fn cpu() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("bmi1") {
                if has!("avx512f") && has!("avx512cd") && has!("avx512bw") && has!("avx512vl") {
                    return Level::Avx512;
                }
                return Level::Avx2;
            }
        }
        Level::Base
    }

    /// Whether this CPU's vector gathers are slow next to its permutes and blends, as on AMD's
    /// cores (Zen 4's AVX-512 included): perfect trees then take the AVX2 walk, which gathers
    /// least, at the AVX-512 level too (1.5x faster on the corpus forests on a Zen 4), and add
    /// their leaves' values with AVX2's scalar loads (the forest classifier 666 -> 558 µs).
    pub(super) fn slow_gathers() -> bool {
        static SLOW: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *SLOW.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                let id = std::arch::x86_64::__cpuid(0);
                let vendor: Vec<u8> = [id.ebx, id.edx, id.ecx]
                    .iter()
                    .flat_map(|w| w.to_le_bytes())
                    .collect();
                vendor == b"AuthenticAMD"
            }
            #[cfg(not(target_arch = "x86_64"))]
            false
        })
    }

    /// Whether perfect trees walk with the AVX2 kernel at this level.
    pub(super) fn avx2_walk(self) -> bool {
        self.0 == Level::Avx2 || (self.0 == Level::Avx512 && Isa::slow_gathers())
    }

    /// Every level this CPU runs, for tests that compare them.
    #[cfg(test)]
    pub(super) fn available() -> Vec<Isa> {
        [Level::Base, Level::Avx2, Level::Avx512]
            .into_iter()
            .filter(|l| *l <= Isa::detect().0)
            .map(Isa)
            .collect()
    }
}

/// [`super::load_block`] at the level `isa` (the compiler's own vectors of that level).
#[inline]
pub(super) fn load_block<T: Lane>(
    isa: Isa,
    cols: &[&[f64]],
    rows: std::ops::Range<usize>,
    xt: &mut [T],
    nan: &mut [bool; BLOCK],
) {
    #[cfg(target_arch = "x86_64")]
    if isa.0 >= Level::Avx2 {
        #[target_feature(enable = "avx2")]
        fn avx2<T: Lane>(
            cols: &[&[f64]],
            rows: std::ops::Range<usize>,
            xt: &mut [T],
            nan: &mut [bool; BLOCK],
        ) {
            super::load_block(cols, rows, xt, nan)
        }
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        fn avx512<T: Lane>(
            cols: &[&[f64]],
            rows: std::ops::Range<usize>,
            xt: &mut [T],
            nan: &mut [bool; BLOCK],
        ) {
            super::load_block(cols, rows, xt, nan)
        }
        // SAFETY: `isa` comes from `Isa::detect`: the CPU has what the chosen copy enables.
        #[allow(unsafe_code)]
        return unsafe {
            if isa.0 >= Level::Avx512 {
                avx512(cols, rows, xt, nan)
            } else {
                avx2(cols, rows, xt, nan)
            }
        };
    }
    let _ = isa;
    super::load_block(cols, rows, xt, nan)
}

/// [`Masked::add`] at the level `isa`.
#[inline]
pub(super) fn masked_add<T: Copy + PartialOrd, M: LeafMask>(
    isa: Isa,
    splits: &[(u32, T, u64)],
    xt: &[T],
    values: &[f64; 256],
    block: &mut [f64; BLOCK],
    scale: f64,
) {
    #[cfg(target_arch = "x86_64")]
    if isa.0 >= Level::Avx2 {
        #[target_feature(enable = "avx2,bmi1")]
        fn avx2<T: Copy + PartialOrd, M: LeafMask>(
            s: &[(u32, T, u64)],
            xt: &[T],
            values: &[f64; 256],
            block: &mut [f64; BLOCK],
            scale: f64,
        ) {
            Masked::add::<T, M>(s, xt, values, block, scale)
        }
        // SAFETY: `isa` comes from `Isa::detect`: the CPU has AVX2 and BMI1.
        #[allow(unsafe_code)]
        return unsafe { avx2::<T, M>(splits, xt, values, block, scale) };
    }
    let _ = isa;
    Masked::add::<T, M>(splits, xt, values, block, scale)
}

/// [`Masked::leaves`] at the level `isa` (trees of several values per leaf).
#[inline]
pub(super) fn masked_leaves<T: Copy + PartialOrd, M: LeafMask>(
    isa: Isa,
    splits: &[(u32, T, u64)],
    xt: &[T],
) -> [u8; BLOCK] {
    #[cfg(target_arch = "x86_64")]
    if isa.0 >= Level::Avx2 {
        #[target_feature(enable = "avx2,bmi1")]
        fn avx2<T: Copy + PartialOrd, M: LeafMask>(s: &[(u32, T, u64)], xt: &[T]) -> [u8; BLOCK] {
            Masked::leaves::<T, M>(s, xt)
        }
        // SAFETY: `isa` comes from `Isa::detect`: the CPU has AVX2 and BMI1.
        #[allow(unsafe_code)]
        return unsafe { avx2::<T, M>(splits, xt) };
    }
    let _ = isa;
    Masked::leaves::<T, M>(splits, xt)
}

/// The leaves of a block against a masked tree, in AVX-512; `None` below that level.
#[inline]
pub(super) fn masked_leaves512(isa: Isa, m: &Masked, xt: Block<'_>) -> Option<[u32; BLOCK]> {
    #[cfg(target_arch = "x86_64")]
    if isa.0 >= Level::Avx512 {
        let mut out = [0u32; BLOCK];
        // SAFETY: `isa` comes from `Isa::detect`: the CPU has AVX-512 F and CD.
        #[allow(unsafe_code)]
        unsafe {
            avx512::store_leaves(m, xt, &mut out)
        };
        return Some(out);
    }
    let _ = (isa, m, xt);
    None
}

/// [`Masked::add`] in AVX-512; `false` (nothing added) below that level.
#[inline]
pub(super) fn masked_add512(
    isa: Isa,
    m: &Masked,
    xt: Block<'_>,
    block: &mut [f64; BLOCK],
    scale: f64,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if isa.0 >= Level::Avx512 {
        // SAFETY: `isa` comes from `Isa::detect`: the CPU has AVX-512 F and CD.
        #[allow(unsafe_code)]
        unsafe {
            avx512::add(m, xt, block, scale)
        };
        return true;
    }
    let _ = (isa, m, xt, block, scale);
    false
}

/// `block[r * k + j] += scale * values[slots[r] * k + j]` for every block row `r` and `j < k`, in
/// AVX-512, for trees that fill a row's `k` accumulators (one value per leaf, or two); `false`
/// (nothing added) for other trees and below that level.
#[allow(clippy::too_many_arguments)]
pub(super) fn slot_add(
    isa: Isa,
    values: &[f64],
    slots: &[u32; BLOCK],
    block: &mut [f64],
    k: usize,
    width: usize,
    scale: f64,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if isa.0 >= Level::Avx512
        && !Isa::slow_gathers()
        && width == k
        && (k == 1 || k == 2)
        && !values.is_empty()
        && values.len() <= i32::MAX as usize
    {
        let block: &mut [f64] = &mut block[..BLOCK * k];
        // SAFETY: `isa` comes from `Isa::detect`: the CPU has AVX-512 F.
        #[allow(unsafe_code)]
        unsafe {
            avx512::slot_add(values, slots, block, k, scale)
        };
        return true;
    }
    #[cfg(target_arch = "x86_64")]
    if isa.0 >= Level::Avx2 && width == k && (k == 1 || k == 2) {
        // SAFETY: `isa` comes from `Isa::detect`: the CPU has AVX2.
        #[allow(unsafe_code)]
        unsafe {
            avx2::slot_add(values, slots, &mut block[..BLOCK * k], k, scale)
        };
        return true;
    }
    let _ = (isa, values, slots, block, k, width, scale);
    false
}

/// The slots of the `BLOCK` float32 rows of the column-major block `xt` in a perfect tree, with
/// vector gathers; `false` (nothing written) below AVX2.
pub(super) fn perfect_slots(isa: Isa, p: &Perfect, xt: &[f32], slots: &mut [u32; BLOCK]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if isa.0 >= Level::Avx2 {
        assert!(
            (p.max_feature + 1) * BLOCK <= xt.len()
                && p.feat.len() == (1 << p.depth) - 1
                && p.thr.len() == p.feat.len()
                && p.node.len() == p.feat.len()
                && (p.max_feature >= 8 || p.pairs.len() == p.feat.len()),
            "perfect tree reads past the block"
        );
        // SAFETY: `isa` comes from `Isa::detect`, so the CPU has what the walk's level needs; the
        // walks read `feat`, `thr`, `node` and `pairs` at indices below `2^depth - 1` and `xt`
        // below `(max_feature + 1) * BLOCK`, all asserted in bounds just above (see `gather_walk`).
        #[allow(unsafe_code)]
        unsafe {
            if isa.avx2_walk() {
                gather_walk(p, xt, slots)
            } else {
                avx512::gather_walk(p, xt, slots)
            }
        };
        return true;
    }
    let _ = (isa, p, xt, slots);
    false
}

/// The slots of every perfect-walk kernel this CPU runs (AVX2's, AVX-512's), whichever
/// [`perfect_slots`] would choose, for tests that compare them with the portable walk.
#[cfg(test)]
pub(super) fn perfect_slots_each(p: &Perfect, xt: &[f32]) -> Vec<[u32; BLOCK]> {
    let mut out = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        assert!(
            (p.max_feature + 1) * BLOCK <= xt.len()
                && p.feat.len() == (1 << p.depth) - 1
                && (p.max_feature >= 8 || p.pairs.len() == p.feat.len()),
            "perfect tree reads past the block"
        );
        let isa = Isa::detect();
        if isa.0 >= Level::Avx2 {
            let mut s = [0u32; BLOCK];
            // SAFETY: the CPU has AVX2 (`Isa::detect`); bounds as asserted above.
            #[allow(unsafe_code)]
            unsafe {
                gather_walk(p, xt, &mut s)
            };
            out.push(s);
        }
        if isa.0 >= Level::Avx512 {
            let mut s = [0u32; BLOCK];
            // SAFETY: the CPU has AVX-512 F (`Isa::detect`); bounds as asserted above.
            #[allow(unsafe_code)]
            unsafe {
                avx512::gather_walk(p, xt, &mut s)
            };
            out.push(s);
        }
    }
    let _ = (p, xt);
    out
}

/// [`perfect_slots`]' AVX2 walk: per level, each vector of eight rows finds its nodes' features
/// and thresholds, then its rows' values, and steps `i = 2i + 1 + (x > t)`.
///
/// AVX2's gathers are slow where it matters most (AMD's cores take about one element per cycle),
/// so the walk gathers as little as it can: a level of up to 32 nodes is held in registers and
/// read with lane permutes (one, two or four vectors, chosen between by the index's bits; more
/// vectors were slower than gathering); deeper levels gather a node's feature and threshold
/// together as one 64-bit entry (four entries per gather: half the elements of two separate
/// gathers). A tree over at most 8 features picks each row's value from its eight feature vectors
/// with three rounds of blends on the feature's bits instead of gathering it, and takes its
/// deeper levels two at a time: one 16-byte load per row brings a node and both its children
/// (`pairs`), so the second level needs no memory at all (the corpus forest 17% faster than
/// with two gathered levels on a Zen 4).
///
/// Bounds: node indices start at 0 and take `depth` steps, so they stay below `2^depth - 1 =
/// feat.len()` while they are used (as in [`Perfect::leaves`]); the AVX2 walk keeps a row's
/// place within its level instead (below `2^level`) and reads the level's entries of `node`,
/// `node_fid` and `pairs` (as long as `feat`) from its first node, `2^level - 1`, on; a level's
/// eight-wide loads start at most `2^level - 8` past its first node and read `fid` and
/// `thr_pad`, which hold 8 entries past the last node; a row's value index is `column + r` with
/// `column <= max_feature * BLOCK` and `r < BLOCK`, below `(max_feature + 1) * BLOCK <=
/// xt.len()`, which `Perfect::build` keeps within i32. The caller asserts these.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn gather_walk(p: &Perfect, xt: &[f32], slots: &mut [u32; BLOCK]) {
    if p.max_feature < 8 {
        avx2::walk::<true>(p, xt, slots)
    } else {
        avx2::walk::<false>(p, xt, slots)
    }
}

/// The AVX2 walk's parts, one copy per kind of tree (few features or not) and level width.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use std::arch::x86_64::*;

    use super::super::{BLOCK, Perfect};

    /// Vectors of 8 rows in a block.
    const V: usize = BLOCK / 8;

    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn walk<const FEW: bool>(p: &Perfect, xt: &[f32], slots: &mut [u32; BLOCK]) {
        let mut idx = [_mm256_setzero_si256(); V];
        // The top four levels at once, when the tree has them.
        let from = if p.depth >= 4 {
            top4(p, xt, &mut idx);
            4
        } else {
            0
        };
        let mut level = from;
        while level < p.depth {
            match level {
                0..=3 => permuted::<1, FEW>(p, xt, level, &mut idx),
                4 => permuted::<2, FEW>(p, xt, level, &mut idx),
                5 => permuted::<4, FEW>(p, xt, level, &mut idx),
                _ if FEW && level + 1 < p.depth => {
                    paired(p, xt, level, &mut idx);
                    level += 1;
                }
                _ => gathered::<FEW>(p, xt, level, &mut idx),
            }
            level += 1;
        }
        // After the last level, a row's place in it is its slot.
        for (v, chunk) in slots.chunks_exact_mut(8).enumerate() {
            // SAFETY: `chunk` holds eight u32, what an unaligned 256-bit store writes.
            unsafe { _mm256_storeu_si256(chunk.as_mut_ptr().cast(), idx[v]) };
        }
    }

    /// The top four levels (nodes 0 to 14) without looking anything up per row: each node's
    /// column and threshold are the same for every row, so all fifteen comparisons are made on
    /// every row (a load and a compare each), and the row's path picks its four with blends:
    /// level 1 by the first comparison, level 2 by the first two, level 3 by all three.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn top4(p: &Perfect, xt: &[f32], idx: &mut [__m256i; V]) {
        assert!(
            p.depth >= 4 && p.fid.len() >= 15 && (p.max_feature + 1) * BLOCK <= xt.len(),
            "a tree of four levels over the block"
        );
        let col: [usize; 15] = std::array::from_fn(|n| p.fid[n] as usize * BLOCK);
        let thr: [__m256; 15] = std::array::from_fn(|n| _mm256_set1_ps(p.thr_pad[n]));
        for (v, i) in idx.iter_mut().enumerate() {
            // All ones where the row goes right at node `n` (never for NaN: the node walk
            // scores such rows again).
            let c: [__m256; 15] = std::array::from_fn(|n| {
                // SAFETY: `col[n] <= max_feature * BLOCK` and `8v + 8 <= BLOCK`, inside `xt`.
                let x = unsafe { _mm256_loadu_ps(xt.as_ptr().add(col[n] + 8 * v)) };
                _mm256_cmp_ps::<_CMP_GT_OQ>(x, thr[n])
            });
            let b = |x, y, m| _mm256_blendv_ps(x, y, m);
            let m0 = c[0];
            let m1 = b(c[1], c[2], m0);
            let m2 = b(b(c[3], c[4], m1), b(c[5], c[6], m1), m0);
            let m3 = b(
                b(b(c[7], c[8], m2), b(c[9], c[10], m2), m1),
                b(b(c[11], c[12], m2), b(c[13], c[14], m2), m1),
                m0,
            );
            // Node 15 + 8 b0 + 4 b1 + 2 b2 + b3, from masks of -1 (right) or 0.
            let (m0, m1, m2, m3) = (
                _mm256_castps_si256(m0),
                _mm256_castps_si256(m1),
                _mm256_castps_si256(m2),
                _mm256_castps_si256(m3),
            );
            let right = _mm256_add_epi32(
                _mm256_add_epi32(_mm256_slli_epi32::<3>(m0), _mm256_slli_epi32::<2>(m1)),
                _mm256_add_epi32(_mm256_slli_epi32::<1>(m2), m3),
            );
            *i = _mm256_sub_epi32(_mm256_setzero_si256(), right);
        }
    }

    /// The rows of vector `v` at features `f` (ids when `FEW`, block columns otherwise).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn value<const FEW: bool>(p: &Perfect, xt: &[f32], v: usize, f: __m256i) -> __m256 {
        if FEW {
            // Feature vectors past the last feature repeat it (never picked).
            let x: [__m256; 8] = std::array::from_fn(|g| {
                // SAFETY: `g.min(max_feature) * BLOCK + 8v + 8 <= xt.len()` (see `gather_walk`).
                unsafe { _mm256_loadu_ps(xt.as_ptr().add(g.min(p.max_feature) * BLOCK + 8 * v)) }
            });
            let (m0, m1, m2) = (
                _mm256_castsi256_ps(_mm256_slli_epi32::<31>(f)),
                _mm256_castsi256_ps(_mm256_slli_epi32::<30>(f)),
                _mm256_castsi256_ps(_mm256_slli_epi32::<29>(f)),
            );
            let (a, b, c, d) = (
                _mm256_blendv_ps(x[0], x[1], m0),
                _mm256_blendv_ps(x[2], x[3], m0),
                _mm256_blendv_ps(x[4], x[5], m0),
                _mm256_blendv_ps(x[6], x[7], m0),
            );
            _mm256_blendv_ps(_mm256_blendv_ps(a, b, m1), _mm256_blendv_ps(c, d, m1), m2)
        } else {
            let b: [i32; 8] = std::array::from_fn(|r| (8 * v + r) as i32);
            // SAFETY: `b` holds eight i32; the gather reads in bounds (see `gather_walk`).
            unsafe {
                let lane = _mm256_loadu_si256(b.as_ptr().cast());
                _mm256_i32gather_ps::<4>(xt.as_ptr(), _mm256_add_epi32(lane, f))
            }
        }
    }

    /// One step: `j = 2j + (x > t)`, `j` a row's place within its level (never right for NaN;
    /// such rows are scored again by the node walk).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn step(j: __m256i, x: __m256, t: __m256) -> __m256i {
        let right = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GT_OQ>(x, t));
        _mm256_sub_epi32(_mm256_add_epi32(j, j), right)
    }

    /// A level of up to `8 * C` nodes read from `C` vectors by lane permutes: bit 3 of the index
    /// within the level picks between vectors 0 and 1 (and 2 and 3), bit 4 between those pairs.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn permuted<const C: usize, const FEW: bool>(
        p: &Perfect,
        xt: &[f32],
        level: u32,
        idx: &mut [__m256i; V],
    ) {
        let start = (1usize << level) - 1;
        let block = _mm256_set1_epi32(BLOCK as i32);
        // SAFETY: `fid` and `thr_pad` hold every node and 8 more; vector `c < C` starts at node
        // `start + 8c`, at most `start + 2^level - 8` (or `start` when `C` is 1).
        let (tf, tt): ([__m256i; C], [__m256; C]) = unsafe {
            (
                std::array::from_fn(|c| {
                    let ids = _mm256_loadu_si256(p.fid.as_ptr().add(start + 8 * c).cast());
                    if FEW {
                        ids
                    } else {
                        _mm256_mullo_epi32(ids, block)
                    }
                }),
                std::array::from_fn(|c| _mm256_loadu_ps(p.thr_pad.as_ptr().add(start + 8 * c))),
            )
        };
        for (v, i) in idx.iter_mut().enumerate() {
            let j = *i;
            let pick = |c: usize| {
                (
                    _mm256_castsi256_ps(_mm256_permutevar8x32_epi32(tf[c], j)),
                    _mm256_permutevar8x32_ps(tt[c], j),
                )
            };
            let (mut f, mut t) = pick(0);
            if C >= 2 {
                let b3 = _mm256_castsi256_ps(_mm256_slli_epi32::<28>(j));
                let (f1, t1) = pick(1);
                f = _mm256_blendv_ps(f, f1, b3);
                t = _mm256_blendv_ps(t, t1, b3);
                if C == 4 {
                    let b4 = _mm256_castsi256_ps(_mm256_slli_epi32::<27>(j));
                    let ((f2, t2), (f3, t3)) = (pick(2), pick(3));
                    f = _mm256_blendv_ps(f, _mm256_blendv_ps(f2, f3, b3), b4);
                    t = _mm256_blendv_ps(t, _mm256_blendv_ps(t2, t3, b3), b4);
                }
            }
            *i = step(*i, value::<FEW>(p, xt, v, _mm256_castps_si256(f)), t);
        }
    }

    /// [`super::slot_add`] in AVX2: four accumulators per vector. Slots are clamped to the last
    /// value (as the AVX-512 kernel's indices are), so none can read outside `values`; a scale
    /// of 1 (forests) skips the product, which would change nothing.
    #[target_feature(enable = "avx2")]
    pub(super) fn slot_add(
        values: &[f64],
        slots: &[u32; BLOCK],
        block: &mut [f64],
        k: usize,
        scale: f64,
    ) {
        assert!(block.len() == BLOCK * k && (k == 1 || k == 2) && values.len() >= k);
        let last = _mm256_set1_epi32((values.len() / k - 1).min(i32::MAX as usize) as i32);
        let ptr = values.as_ptr();
        let scale_v = _mm256_set1_pd(scale);
        // Eight rows at a time: their slots clamped and made offsets into `values` in one
        // vector, then read as scalars.
        for (s, out) in slots.chunks_exact(8).zip(block.chunks_exact_mut(8 * k)) {
            let mut at = [0u32; 8];
            // SAFETY: `s` and `at` hold eight u32, what unaligned 256-bit loads and stores use.
            unsafe {
                let slot = _mm256_min_epu32(_mm256_loadu_si256(s.as_ptr().cast()), last);
                let offset = if k == 1 {
                    slot
                } else {
                    _mm256_add_epi32(slot, slot)
                };
                _mm256_storeu_si256(at.as_mut_ptr().cast(), offset);
            }
            let at = at.map(|o| o as usize);
            // SAFETY: `at[r] + k <= values.len()`, by the clamp above.
            let four = |q: usize| unsafe {
                if k == 1 {
                    _mm256_set_pd(
                        *ptr.add(at[4 * q + 3]),
                        *ptr.add(at[4 * q + 2]),
                        *ptr.add(at[4 * q + 1]),
                        *ptr.add(at[4 * q]),
                    )
                } else {
                    _mm256_insertf128_pd::<1>(
                        _mm256_castpd128_pd256(_mm_loadu_pd(ptr.add(at[2 * q]))),
                        _mm_loadu_pd(ptr.add(at[2 * q + 1])),
                    )
                }
            };
            for (q, out) in out.chunks_exact_mut(4).enumerate() {
                let v = four(q);
                // SAFETY: `out` holds four f64, what an unaligned 256-bit load and store use.
                unsafe {
                    let acc = _mm256_loadu_pd(out.as_ptr());
                    // A product, then a sum, each rounded, as the portable loops compute them.
                    let add = if scale == 1.0 {
                        v
                    } else {
                        _mm256_mul_pd(scale_v, v)
                    };
                    _mm256_storeu_pd(out.as_mut_ptr(), _mm256_add_pd(acc, add));
                }
            }
        }
    }

    /// Two deeper levels of a tree over at most 8 features: each row's node and both its
    /// children from one 16-byte entry of `pairs` (three thresholds, three features), loaded row
    /// by row (AMD's gathers are slower than these loads) and transposed into vectors; the
    /// second level's threshold and feature are picked by the first level's comparison.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn paired(p: &Perfect, xt: &[f32], level: u32, idx: &mut [__m256i; V]) {
        let pairs = &p.pairs[(1usize << level) - 1..];
        for (v, i) in idx.iter_mut().enumerate() {
            let mut at = [0u32; 8];
            // SAFETY: `at` holds eight u32, what an unaligned 256-bit store writes.
            unsafe { _mm256_storeu_si256(at.as_mut_ptr().cast(), *i) };
            // SAFETY: a row's place in the level is below `pairs.len()` (see `gather_walk`),
            // and an entry is 16 bytes, what an unaligned 128-bit load reads.
            let row = |r: usize| unsafe {
                _mm_castsi128_ps(_mm_loadu_si128(pairs.as_ptr().add(at[r] as usize).cast()))
            };
            let pair =
                |r: usize| _mm256_insertf128_ps::<1>(_mm256_castps128_ps256(row(r)), row(r + 4));
            let (a, b, c, d) = (pair(0), pair(1), pair(2), pair(3));
            let (ab0, ab1) = (_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
            let (cd0, cd1) = (_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
            let lo = |x: __m256, y: __m256| {
                _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(x), _mm256_castps_pd(y)))
            };
            let hi = |x: __m256, y: __m256| {
                _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(x), _mm256_castps_pd(y)))
            };
            let (t, tl, tr) = (lo(ab0, cd0), hi(ab0, cd0), lo(ab1, cd1));
            let f = _mm256_castps_si256(hi(ab1, cd1));
            let right = _mm256_cmp_ps::<_CMP_GT_OQ>(value::<true>(p, xt, v, f), t);
            let next = _mm256_sub_epi32(_mm256_add_epi32(*i, *i), _mm256_castps_si256(right));
            let t2 = _mm256_blendv_ps(tl, tr, right);
            let f2 = _mm256_castps_si256(_mm256_blendv_ps(
                _mm256_castsi256_ps(_mm256_srli_epi32::<8>(f)),
                _mm256_castsi256_ps(_mm256_srli_epi32::<16>(f)),
                right,
            ));
            *i = step(next, value::<true>(p, xt, v, f2), t2);
        }
    }

    /// A deeper level: each row's node gathered as one 64-bit entry (feature, threshold).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn gathered<const FEW: bool>(p: &Perfect, xt: &[f32], level: u32, idx: &mut [__m256i; V]) {
        let table = &(if FEW { &p.node_fid } else { &p.node })[(1usize << level) - 1..];
        for (v, i) in idx.iter_mut().enumerate() {
            // SAFETY: in bounds, see `gather_walk` (`node` and `node_fid` are as long as `feat`).
            let (lo, hi) = unsafe {
                (
                    _mm256_castsi256_ps(_mm256_i32gather_epi64::<8>(
                        table.as_ptr(),
                        _mm256_castsi256_si128(*i),
                    )),
                    _mm256_castsi256_ps(_mm256_i32gather_epi64::<8>(
                        table.as_ptr(),
                        _mm256_extracti128_si256::<1>(*i),
                    )),
                )
            };
            // Per 128-bit half, the low (feature) or high (threshold) words of lo's two entries,
            // then hi's; the 64-bit permute puts rows 0 to 7 back in order.
            let f = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_castps_si256(
                _mm256_shuffle_ps::<0b10_00_10_00>(lo, hi),
            ));
            let t = _mm256_castsi256_ps(_mm256_permute4x64_epi64::<0b11_01_10_00>(
                _mm256_castps_si256(_mm256_shuffle_ps::<0b11_01_11_01>(lo, hi)),
            ));
            *i = step(*i, value::<FEW>(p, xt, v, f), t);
        }
    }
}

/// The AVX-512 kernels: 16 float32 rows per vector, `BLOCK / 16` vectors per block.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    use std::arch::x86_64::*;

    use super::super::{BLOCK, Block, Masked, Perfect};

    /// Vectors of 16 rows in a block.
    const V: usize = BLOCK / 16;

    /// The leaf of each block row (16 per vector) in a masked tree: every split a row fails
    /// (`x > t`) clears its left subtree's leaves from the row's mask (in mask registers, one
    /// instruction per vector), and the leaf is the lowest bit left.
    ///
    /// Bounds: each split's column is at most `(n_features - 1) * BLOCK`, and the slice below
    /// is checked against `xt`; the loads read 16 of its `BLOCK` values.
    #[inline]
    #[target_feature(enable = "avx512f,avx512cd")]
    fn leaves(m: &Masked, xt: Block<'_>) -> [__m512i; V] {
        match xt {
            Block::F32(xt) => leaves32(m, xt),
            Block::F64(xt) => leaves64(m, xt),
        }
    }

    /// [`leaves`] of a float64 block against `split64`: eight rows per vector and 64-bit masks
    /// (whatever the tree's width), two vectors per 16 rows.
    #[inline]
    #[target_feature(enable = "avx512f,avx512cd")]
    fn leaves64(m: &Masked, xt: &[f64]) -> [__m512i; V] {
        let mut mask = [_mm512_set1_epi64(-1); 2 * V];
        for &(c, t, keep) in &m.split64 {
            let col: &[f64; BLOCK] = xt[c as usize..][..BLOCK]
                .try_into()
                .expect("a block column");
            let (t, keep) = (_mm512_set1_pd(t), _mm512_set1_epi64(keep as i64));
            for (j, mask) in mask.iter_mut().enumerate() {
                // SAFETY: `col` holds `BLOCK = 8 * 2V` values; this reads 8 from `8 j`.
                let x = unsafe { _mm512_loadu_pd(col[8 * j..].as_ptr()) };
                let right = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(x, t);
                *mask = _mm512_mask_and_epi64(*mask, right, *mask, keep);
            }
        }
        lowest64(mask)
    }

    /// The index of each row's lowest set bit, from eight-row vectors of 64-bit masks, in
    /// vectors of 16 rows: 63 - lzcnt(m & -m).
    #[inline]
    #[target_feature(enable = "avx512f,avx512cd")]
    fn lowest64(mask: [__m512i; 2 * V]) -> [__m512i; V] {
        let leaf = mask.map(|m| {
            let low = _mm512_and_si512(m, _mm512_sub_epi64(_mm512_setzero_si512(), m));
            _mm512_cvtepi64_epi32(_mm512_sub_epi64(
                _mm512_set1_epi64(63),
                _mm512_lzcnt_epi64(low),
            ))
        });
        std::array::from_fn(|j| {
            _mm512_inserti64x4::<1>(_mm512_castsi256_si512(leaf[2 * j]), leaf[2 * j + 1])
        })
    }

    /// [`leaves`] of a float32 block against `split32`, 16 rows per vector.
    #[inline]
    #[target_feature(enable = "avx512f,avx512cd")]
    fn leaves32(m: &Masked, xt: &[f32]) -> [__m512i; V] {
        if m.narrow {
            let mut mask = [_mm512_set1_epi32(-1); V];
            for &(c, t, keep) in &m.split32 {
                let col: &[f32; BLOCK] = xt[c as usize..][..BLOCK]
                    .try_into()
                    .expect("a block column");
                let (t, keep) = (_mm512_set1_ps(t), _mm512_set1_epi32(keep as u32 as i32));
                for (j, mask) in mask.iter_mut().enumerate() {
                    // SAFETY: `col` holds `BLOCK = 16 * V` values; this reads 16 from `16 j`.
                    let x = unsafe { _mm512_loadu_ps(col[16 * j..].as_ptr()) };
                    let right = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, t);
                    *mask = _mm512_mask_and_epi32(*mask, right, *mask, keep);
                }
            }
            // The lowest set bit's index: 31 - lzcnt(m & -m) (-1 for an empty mask, which a
            // row that reaches a leaf never has).
            mask.map(|m| {
                let low = _mm512_and_si512(m, _mm512_sub_epi32(_mm512_setzero_si512(), m));
                _mm512_sub_epi32(_mm512_set1_epi32(31), _mm512_lzcnt_epi32(low))
            })
        } else {
            // 64-bit masks: eight rows per vector, two vectors per 16 compared rows.
            let mut mask = [_mm512_set1_epi64(-1); 2 * V];
            for &(c, t, keep) in &m.split32 {
                let col: &[f32; BLOCK] = xt[c as usize..][..BLOCK]
                    .try_into()
                    .expect("a block column");
                let (t, keep) = (_mm512_set1_ps(t), _mm512_set1_epi64(keep as i64));
                for j in 0..V {
                    // SAFETY: `col` holds `BLOCK = 16 * V` values; this reads 16 from `16 j`.
                    let x = unsafe { _mm512_loadu_ps(col[16 * j..].as_ptr()) };
                    let right = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, t);
                    let (lo, hi) = (right as u8, (right >> 8) as u8);
                    mask[2 * j] = _mm512_mask_and_epi64(mask[2 * j], lo, mask[2 * j], keep);
                    mask[2 * j + 1] =
                        _mm512_mask_and_epi64(mask[2 * j + 1], hi, mask[2 * j + 1], keep);
                }
            }
            lowest64(mask)
        }
    }

    /// `block[r * k + j] += scale * values[slots[r] * k + j]` for every block row `r` and `j < k`
    /// (`k` is 1 or 2, `block` holds `BLOCK * k` values), eight values per vector. Indices are
    /// clamped to the last value, so no slot can read outside `values`.
    #[target_feature(enable = "avx512f")]
    pub(super) fn slot_add(
        values: &[f64],
        slots: &[u32; BLOCK],
        block: &mut [f64],
        k: usize,
        scale: f64,
    ) {
        assert!(
            !values.is_empty()
                && (k == 1 || k == 2)
                && block.len() == BLOCK * k
                && values.len() <= i32::MAX as usize
        );
        let last = _mm512_set1_epi32(values.len() as i32 - 1);
        let scale = _mm512_set1_pd(scale);
        // For two values per row, each 16 slots give two vectors of eight indices (rows 0-3, 4-7
        // of a vector of 8 slots): 2 s, 2 s + 1 for each.
        let pairs = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
        let odd = _mm512_set_epi32(1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0);
        for (c, chunk) in slots.chunks_exact(8).enumerate() {
            // SAFETY: `chunk` holds eight u32, what an unaligned 256-bit load reads.
            let s8 = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) };
            let s = _mm512_castsi256_si512(s8);
            // Sixteen indices: eight for one value per row, or eight pairs (rows 0-7) for two.
            let idx = if k == 1 {
                s
            } else {
                let twice = _mm512_permutexvar_epi32(pairs, s);
                _mm512_add_epi32(_mm512_add_epi32(twice, twice), odd)
            };
            let idx = _mm512_min_epu32(idx, last);
            let halves = [
                _mm512_castsi512_si256(idx),
                _mm512_extracti64x4_epi64::<1>(idx),
            ];
            for (h, half) in halves.into_iter().take(k).enumerate() {
                // SAFETY: indices are clamped to `values.len() - 1` just above.
                let v = unsafe { _mm512_i32gather_pd::<8>(half, values.as_ptr()) };
                let at = c * 8 * k + h * 8;
                add_scaled(&mut block[at..at + 8], scale, v);
            }
        }
    }

    /// `out[i] += scale[i] * v[i]` for the eight values of `out`: a product, then a sum, each
    /// rounded, as the portable loops compute them.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn add_scaled(out: &mut [f64], scale: __m512d, v: __m512d) {
        assert!(out.len() == 8, "eight accumulators");
        // SAFETY: `out` holds eight f64, what an unaligned 512-bit load and store use.
        unsafe {
            let acc = _mm512_loadu_pd(out.as_ptr());
            _mm512_storeu_pd(
                out.as_mut_ptr(),
                _mm512_add_pd(acc, _mm512_mul_pd(scale, v)),
            );
        }
    }

    /// Writes the leaf of each block row into `out`.
    #[target_feature(enable = "avx512f,avx512cd")]
    pub(super) fn store_leaves(m: &Masked, xt: Block<'_>, out: &mut [u32; BLOCK]) {
        for (o, l) in out.chunks_exact_mut(16).zip(leaves(m, xt)) {
            // SAFETY: `o` holds the 16 u32 an unaligned 512-bit store writes.
            unsafe { _mm512_storeu_si512(o.as_mut_ptr().cast(), l) };
        }
    }

    /// [`Masked::add`]: each row's leaf value, times `scale`, added to its accumulator. Leaf
    /// values come from lane permutes (up to 16 leaves) or a gather from the 256 padded values
    /// (indices masked to 0..255, so an impossible empty mask still reads inside them).
    #[target_feature(enable = "avx512f,avx512cd")]
    pub(super) fn add(m: &Masked, xt: Block<'_>, block: &mut [f64; BLOCK], scale: f64) {
        let leaves = leaves(m, xt);
        let values: &[f64; 256] = m.values[..256].try_into().expect("256 padded values");
        // SAFETY: `values` holds 256 f64; these read the first sixteen.
        let (v0, v1) = unsafe {
            (
                _mm512_loadu_pd(values.as_ptr()),
                _mm512_loadu_pd(values[8..].as_ptr()),
            )
        };
        let scale = _mm512_set1_pd(scale);
        let byte = _mm256_set1_epi32(255);
        for (j, leaf) in leaves.into_iter().enumerate() {
            let halves = [
                _mm512_castsi512_si256(leaf),
                _mm512_extracti64x4_epi64::<1>(leaf),
            ];
            for (h, half) in halves.into_iter().enumerate() {
                let v = if m.n_leaves <= 8 {
                    _mm512_permutexvar_pd(_mm512_cvtepu32_epi64(half), v0)
                } else if m.n_leaves <= 16 {
                    _mm512_permutex2var_pd(v0, _mm512_cvtepu32_epi64(half), v1)
                } else {
                    // SAFETY: indices are masked to 0..=255, inside `values`.
                    unsafe {
                        _mm512_i32gather_pd::<8>(_mm256_and_si256(half, byte), values.as_ptr())
                    }
                };
                add_scaled(&mut block[16 * j + 8 * h..16 * j + 8 * h + 8], scale, v);
            }
        }
    }

    /// [`super::gather_walk`] in 16-row vectors: the top four levels (nodes 0 to 14) are one
    /// permute, the fifth (15 to 30) a two-table permute, the sixth (31 to 62) two of those and a
    /// masked blend; deeper nodes' columns and thresholds are gathered together from `node`
    /// (eight 64-bit entries per gather). Bounds as in [`super::gather_walk`] (the caller asserts
    /// them); `top_feat` and `top_thr` hold 64 entries.
    #[target_feature(enable = "avx512f")]
    pub(super) fn gather_walk(p: &Perfect, xt: &[f32], slots: &mut [u32; BLOCK]) {
        let iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        let lane: [__m512i; V] =
            std::array::from_fn(|v| _mm512_add_epi32(iota, _mm512_set1_epi32(16 * v as i32)));
        let one = _mm512_set1_epi32(1);
        let bit5 = _mm512_set1_epi32(32);
        // The columns (even 32-bit halves) and thresholds (odd) of sixteen gathered nodes.
        let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
        let odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
        // SAFETY: `top_feat` and `top_thr` hold 64 values of 32 bits: four 512-bit loads each.
        let (tf, tt): ([__m512i; 4], [__m512; 4]) = unsafe {
            (
                std::array::from_fn(|q| _mm512_loadu_si512(p.top_feat[16 * q..].as_ptr().cast())),
                std::array::from_fn(|q| _mm512_loadu_ps(p.top_thr[16 * q..].as_ptr())),
            )
        };
        let mut idx = [_mm512_setzero_si512(); V];
        for level in 0..p.depth {
            for v in 0..V {
                let i = idx[v];
                let (f, t) = match level {
                    0..=3 => (
                        _mm512_permutexvar_epi32(i, tf[0]),
                        _mm512_permutexvar_ps(i, tt[0]),
                    ),
                    4 => (
                        _mm512_permutex2var_epi32(tf[0], i, tf[1]),
                        _mm512_permutex2var_ps(tt[0], i, tt[1]),
                    ),
                    5 => {
                        let hi = _mm512_test_epi32_mask(i, bit5);
                        (
                            _mm512_mask_blend_epi32(
                                hi,
                                _mm512_permutex2var_epi32(tf[0], i, tf[1]),
                                _mm512_permutex2var_epi32(tf[2], i, tf[3]),
                            ),
                            _mm512_mask_blend_ps(
                                hi,
                                _mm512_permutex2var_ps(tt[0], i, tt[1]),
                                _mm512_permutex2var_ps(tt[2], i, tt[3]),
                            ),
                        )
                    }
                    // SAFETY: in bounds, see `super::gather_walk` (`node` is as long as `feat`).
                    _ => unsafe {
                        let lo =
                            _mm512_i32gather_epi64::<8>(_mm512_castsi512_si256(i), p.node.as_ptr());
                        let hi = _mm512_i32gather_epi64::<8>(
                            _mm512_extracti64x4_epi64::<1>(i),
                            p.node.as_ptr(),
                        );
                        (
                            _mm512_permutex2var_epi32(lo, even, hi),
                            _mm512_castsi512_ps(_mm512_permutex2var_epi32(lo, odd, hi)),
                        )
                    },
                };
                // SAFETY: in bounds, see `super::gather_walk`.
                let x =
                    unsafe { _mm512_i32gather_ps::<4>(_mm512_add_epi32(lane[v], f), xt.as_ptr()) };
                // Set where `x > t` (never for NaN; such rows are scored again by the node walk).
                let right = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, t);
                let next = _mm512_add_epi32(_mm512_add_epi32(i, i), one);
                idx[v] = _mm512_mask_add_epi32(next, right, next, one);
            }
        }
        let inner = _mm512_set1_epi32(p.feat.len() as i32);
        for (v, chunk) in slots.chunks_exact_mut(16).enumerate() {
            // SAFETY: `chunk` holds sixteen u32, what an unaligned 512-bit store writes.
            unsafe {
                _mm512_storeu_si512(chunk.as_mut_ptr().cast(), _mm512_sub_epi32(idx[v], inner))
            };
        }
    }
}
