//! `TreeEnsemble`: one IR and one scorer for every tree model (single trees, forests, boosting).

use crate::numeric::{argmax, expit, softmax_in_place};
use crate::{Error, Label, Matrix, Output, Predictions, Result, Scores};

mod simd;

use simd::Isa;

/// A node of a tree. Leaves point into [`Tree::values`] through `left`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Node {
    pub feature: u32,
    pub threshold: f64,
    pub left: u32,
    pub right: u32,
    pub flags: u8,
    /// Categorical splits: index of the bitset of categories that go left.
    pub bitset: u32,
}

impl Node {
    pub const LEAF: u8 = 1;
    pub const MISSING_LEFT: u8 = 2;
    pub const CATEGORICAL: u8 = 4;
    /// Numeric splits: zero (|x| <= 1e-35) is missing too, and goes the missing way (LightGBM's
    /// `zero_as_missing`).
    pub const MISSING_ZERO: u8 = 8;
    /// Categorical splits: the bitset lists the categories that go right, and every other
    /// category goes left (XGBoost's lists).
    pub const CATEGORIES_RIGHT: u8 = 16;

    /// A leaf whose values start at `value_offset` in the tree's value table.
    pub fn leaf(value_offset: u32) -> Node {
        Node {
            feature: 0,
            threshold: 0.0,
            left: value_offset,
            right: 0,
            flags: Node::LEAF,
            bitset: 0,
        }
    }

    pub fn is_leaf(&self) -> bool {
        self.flags & Node::LEAF != 0
    }
}

/// One tree: its nodes (root first) and the values of its leaves, `width` per leaf. Its fields
/// are read through methods and set only by [`Tree::new`] and [`Tree::with_linear`], which choose
/// the scoring layout from them: the layout cannot go stale.
#[derive(Clone, Debug, PartialEq)]
pub struct Tree {
    nodes: Vec<Node>,
    values: Vec<f64>,
    /// How many accumulator slots a leaf adds to, starting at `output`.
    width: usize,
    output: usize,
    /// Bitsets of categorical splits: bit `c % 32` of word `c / 32` is category `c`; categories
    /// past the last word are not in the set.
    cat_bitsets: Vec<Vec<u32>>,
    /// Linear leaves (LightGBM's linear trees), by value offset, for single-value leaves: a row
    /// adds the leaf's linear model of its features, or `values` where one of them is NaN.
    linear: Vec<LinearLeaf>,
    /// How the block paths score it, chosen from the fields above when they are set.
    layout: Layout,
    /// Some split reads zero as missing: the general node walk handles it.
    zero_missing: bool,
}

/// A tree's scoring layout.
#[derive(Clone, Debug, PartialEq)]
enum Layout {
    /// Bit masks over its leaves: at most 64 leaves and numeric splits.
    Masked(Masked),
    /// A perfect binary tree: shallow, numeric splits (boxed: its register tables are large).
    Perfect(Box<Perfect>),
    /// The node walk (categorical splits, deep trees, linear leaves).
    Nodes,
}

impl Tree {
    /// The nodes, root first.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The leaves' values, `width` per leaf.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// How many accumulator slots a leaf adds to.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The first accumulator slot a leaf adds to.
    pub fn output(&self) -> usize {
        self.output
    }

    /// The categorical splits' bitsets.
    pub fn cat_bitsets(&self) -> &[Vec<u32>] {
        &self.cat_bitsets
    }

    /// The linear leaves, by value offset (empty for constant leaves).
    pub fn linear(&self) -> &[LinearLeaf] {
        &self.linear
    }
}

/// A leaf's linear model: `constant + Σ coefficient * x[feature]`, in that order.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearLeaf {
    pub constant: f64,
    pub terms: Vec<(u32, f64)>,
}

/// What LightGBM counts as zero for `zero_as_missing` (its `kZeroThreshold`).
const ZERO: f64 = 1e-35;

/// Deeper trees are walked node by node; a perfect layout would not fit in cache.
const MAX_PERFECT_DEPTH: u32 = 12;

/// A tree padded to a perfect binary tree in breadth-first order: a row reaches its leaf in exactly
/// `depth` steps of `i = 2i + 1 + (x > threshold)`, with no branch and no test for leaves.
/// Leaves above the last level become pass-through nodes (threshold +inf: always left) whose
/// descendants all map to the same leaf. Rows with a NaN take the node walk instead.
#[derive(Clone, Debug, PartialEq)]
struct Perfect {
    depth: u32,
    /// Splits in f32 (float32-cast ensembles): `f64(x) <= t` exactly when `x <= floor32(t)`
    /// for an f32 input `x`, where `floor32(t)` is the largest f32 not above `t`. Features are
    /// given as where their values start in a column-major block (`feature * BLOCK`).
    split32: Vec<(u32, f32)>,
    split64: Vec<(u32, f64)>,
    /// `split32` as two arrays of i32 block columns and f32 thresholds, for vector gathers.
    feat: Vec<i32>,
    thr: Vec<f32>,
    /// `feat` and `thr` together, a 64-bit entry per node (column low, threshold bits high):
    /// one gather of eight entries where two of eight values each would be needed.
    node: Vec<i64>,
    /// Each node's feature (its index, not its block column) and threshold, then eight padding
    /// entries (feature 0, +inf), so that eight-wide loads from any level's start stay inside:
    /// the AVX2 walk permutes a level's entries from registers and, for trees over few features,
    /// picks a row's value from its features' vectors by the feature's bits instead of gathering.
    fid: Vec<i32>,
    thr_pad: Vec<f32>,
    /// `fid` and `thr` as one 64-bit entry per node (feature low, threshold bits high).
    node_fid: Vec<i64>,
    /// For trees over at most 8 features, per inner node `n` whose children are inner nodes:
    /// the threshold bits of `n`, of its left child and of its right child, then the three
    /// features as bytes (`n`'s lowest). The AVX2 walk reads two levels with one load per row.
    pairs: Vec<[u32; 4]>,
    /// The first 64 entries of `feat` and `thr` (padded with column 0 and +inf): the top six
    /// levels, which vector permutes read instead of gathers.
    top_feat: [i32; 64],
    top_thr: [f32; 64],
    /// For each of the `2^depth` slots of the last level, the node index of its leaf.
    leaf: Vec<u32>,
    /// The leaf values of each slot (`width` per slot), so the hot loop reads them directly.
    slot_values: Vec<f64>,
    /// The largest feature index of any split (0 for a single leaf).
    max_feature: usize,
}

/// Rows walked together through a perfect tree: their loads overlap instead of waiting in turn.
const LANES: usize = 6;

/// Rows scored together: the column-major copy of a block, its leaf masks and accumulators.
/// 96 rows keep six AVX-512 vectors of a perfect walk in flight (48 were 10 to 20% slower on
/// the corpus forests, 192 twice as slow on boosting, whose masks no longer fit in registers).
const BLOCK: usize = 16 * LANES;

/// A tree of at most 64 leaves and numeric splits, scored without a branch over a block of rows
/// (QuickScorer's bit vectors, run over rows instead of over thresholds): leaves are numbered
/// left to right, every split a row fails (`x > t`: it goes right) clears the bits of the leaves
/// of its left subtree, and the leaf the row reaches is the lowest bit left set. Every split is
/// tested for every row, so the loops are straight lines the compiler vectorises; rows with a NaN
/// take the node walk instead.
#[derive(Clone, Debug, PartialEq)]
struct Masked {
    /// `(column, threshold, mask of the leaves that remain when x > threshold)`, in f32
    /// (see [`Perfect::split32`]) and in f64; `column` is where the feature's values start in a
    /// column-major block (`feature * BLOCK`).
    split32: Vec<(u32, f32, u64)>,
    split64: Vec<(u32, f64, u64)>,
    /// The leaves' values, left to right, `width` per leaf, padded with zeros to 65 leaves
    /// (256 single values).
    values: Vec<f64>,
    /// At most 32 leaves: the masks fit in 32 bits (twice the rows per vector).
    narrow: bool,
    n_leaves: u32,
}

/// A value of a column-major block: f32 for float32 ensembles, f64 otherwise.
trait Lane: Copy + PartialOrd {
    const ZERO: Self;
    fn from_f64(v: f64) -> Self;
    /// The block, by its type (for the kernels written for each).
    fn block(xt: &[Self]) -> Block<'_>;
}

/// A column-major block of either type.
enum Block<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

impl Lane for f32 {
    const ZERO: f32 = 0.0;
    #[inline(always)]
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    fn block(xt: &[f32]) -> Block<'_> {
        Block::F32(xt)
    }
}

impl Lane for f64 {
    const ZERO: f64 = 0.0;
    #[inline(always)]
    fn from_f64(v: f64) -> f64 {
        v
    }
    fn block(xt: &[f64]) -> Block<'_> {
        Block::F64(xt)
    }
}

/// Copies the rows `rows` (at most `BLOCK`) of `cols` into the column-major block `xt`, with zeros
/// past them, and marks in `nan` the rows with a missing value.
#[inline(always)]
fn load_block<T: Lane>(
    cols: &[&[f64]],
    rows: std::ops::Range<usize>,
    xt: &mut [T],
    nan: &mut [bool; BLOCK],
) {
    let m = rows.len();
    for (c, dst) in cols.iter().zip(xt.chunks_exact_mut(BLOCK)) {
        let c = &c[rows.clone()];
        for ((d, z), &v) in dst.iter_mut().zip(nan.iter_mut()).zip(c) {
            *d = T::from_f64(v);
            *z |= v.is_nan();
        }
        dst[m..].fill(T::ZERO);
    }
}

/// A word of leaf bits.
trait LeafMask: Copy + std::ops::BitAnd<Output = Self> {
    const ALL: Self;
    fn from_u64(m: u64) -> Self;
    /// The index of the lowest bit set: the mask's width when none is.
    fn lowest(self) -> u8;
}

impl LeafMask for u32 {
    const ALL: u32 = u32::MAX;
    fn from_u64(m: u64) -> u32 {
        m as u32
    }
    #[inline(always)]
    fn lowest(self) -> u8 {
        self.trailing_zeros() as u8
    }
}

impl LeafMask for u64 {
    const ALL: u64 = u64::MAX;
    fn from_u64(m: u64) -> u64 {
        m
    }
    #[inline(always)]
    fn lowest(self) -> u8 {
        self.trailing_zeros() as u8
    }
}

impl Masked {
    const MAX_LEAVES: u32 = 64;

    fn build(nodes: &[Node], values: &[f64], width: usize) -> Option<Masked> {
        let mut m = Masked {
            split32: Vec::new(),
            split64: Vec::new(),
            values: Vec::new(),
            narrow: false,
            n_leaves: 0,
        };
        if width == 0 {
            return None;
        }
        let leaves = m.number(nodes, values, width, 0, 0, &mut 0)?;
        m.narrow = leaves <= 32;
        m.n_leaves = leaves;
        // Padding past leaf 64, the lowest bit of an empty mask (32 for narrow masks); single
        // values to 256, so that a leaf's `u8` index needs no bounds check.
        m.values
            .resize(if width == 1 { 256 } else { 65 * width }, 0.0);
        Some(m)
    }

    /// Numbers the leaves below `node` from `*next` on, recording each split's mask; returns the
    /// count of leaves so far, or `None` for more than 64 leaves, a split we cannot mask, or a
    /// malformed tree (children must follow their parent).
    fn number(
        &mut self,
        nodes: &[Node],
        values: &[f64],
        width: usize,
        node: usize,
        level: u32,
        next: &mut u32,
    ) -> Option<u32> {
        let n = nodes.get(node)?;
        if level >= Self::MAX_LEAVES || n.flags & (Node::CATEGORICAL | Node::MISSING_ZERO) != 0 {
            return None;
        }
        if n.is_leaf() {
            if *next >= Self::MAX_LEAVES {
                return None;
            }
            let off = n.left as usize;
            self.values.extend_from_slice(values.get(off..off + width)?);
            *next += 1;
            return Some(*next);
        }
        if n.left as usize <= node || n.right as usize <= node {
            return None;
        }
        let at = self.split64.len();
        let column = n.feature.checked_mul(BLOCK as u32)?;
        self.split32.push((column, f32_floor(n.threshold), 0));
        self.split64.push((column, n.threshold, 0));
        let lo = *next;
        self.number(nodes, values, width, n.left as usize, level + 1, next)?;
        let hi = *next;
        // Bits lo..hi are the left subtree's leaves: a row that goes right cannot end there.
        let left = (u64::MAX >> (64 - (hi - lo))) << lo;
        self.split32[at].2 = !left;
        self.split64[at].2 = !left;
        self.number(nodes, values, width, n.right as usize, level + 1, next)
    }

    /// The leaves of the `BLOCK` rows of `xt`, a column-major block (`BLOCK` values per
    /// feature), against `splits` (`split32` for f32 rows, `split64` for f64 rows).
    #[inline(always)]
    fn leaves<T: Copy + PartialOrd, M: LeafMask>(
        splits: &[(u32, T, u64)],
        xt: &[T],
    ) -> [u8; BLOCK] {
        let mut m = [M::ALL; BLOCK];
        for &(f, t, keep) in splits {
            let col: &[T; BLOCK] = xt[f as usize..][..BLOCK]
                .try_into()
                .expect("a block column");
            let keep = M::from_u64(keep);
            for (m, &v) in m.iter_mut().zip(col) {
                *m = *m & if v > t { keep } else { M::ALL };
            }
        }
        let mut leaves = [0u8; BLOCK];
        for (l, m) in leaves.iter_mut().zip(m) {
            *l = m.lowest();
        }
        leaves
    }

    /// Adds `scale` times each block row's leaf values to its accumulators (`k` per row,
    /// this tree's `width` from `col`).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn accumulate<T: Lane>(
        &self,
        isa: Isa,
        splits: &[(u32, T, u64)],
        xt: &[T],
        block: &mut [f64],
        k: usize,
        col: usize,
        width: usize,
        scale: f64,
    ) {
        // The vector kernels read `split32` for a float32 block, `split64` for a float64 one.
        if width == 1 && k == 1 {
            let values: &[f64; 256] = self.values[..256].try_into().expect("256 leaves");
            let block: &mut [f64; BLOCK] = block.try_into().expect("one output per row");
            if simd::masked_add512(isa, self, T::block(xt), block, scale) {
                return;
            }
            if self.narrow {
                simd::masked_add::<T, u32>(isa, splits, xt, values, block, scale);
            } else {
                simd::masked_add::<T, u64>(isa, splits, xt, values, block, scale);
            }
            return;
        }
        let leaves = match simd::masked_leaves512(isa, self, T::block(xt)) {
            Some(leaves) if simd::slot_add(isa, &self.values, &leaves, block, k, width, scale) => {
                return;
            }
            Some(leaves) => leaves,
            None if self.narrow => simd::masked_leaves::<T, u32>(isa, splits, xt).map(u32::from),
            None => simd::masked_leaves::<T, u64>(isa, splits, xt).map(u32::from),
        };
        for (r, leaf) in leaves.into_iter().enumerate() {
            // An empty mask (which no row that reaches a leaf has) reads the padding.
            let leaf = (leaf as usize).min(64);
            let vals = &self.values[leaf * width..(leaf + 1) * width];
            for (o, v) in block[r * k + col..r * k + col + width].iter_mut().zip(vals) {
                *o += scale * v;
            }
        }
    }

    /// Adds `scale` times the leaf value of each block row to its accumulator (single-output
    /// trees, `values` padded to 256 leaves). A row's lowest bit is always one of its tree's
    /// leaves (see `Masked`); an empty mask (32 or 64, past the leaves, where the padding is)
    /// only comes from a NaN row, which the node walk scores again.
    #[inline(always)]
    fn add<T: Copy + PartialOrd, M: LeafMask>(
        splits: &[(u32, T, u64)],
        xt: &[T],
        values: &[f64; 256],
        block: &mut [f64; BLOCK],
        scale: f64,
    ) {
        let leaves = Self::leaves::<T, M>(splits, xt);
        for (o, leaf) in block.iter_mut().zip(leaves) {
            *o += scale * values[usize::from(leaf)];
        }
    }
}

/// `exp` of every value with a log link (decided once: a per-row choice lets the compiler
/// compute `exp` for every row and throw it away).
fn log_link(mut values: Vec<f64>, exp: bool) -> Vec<f64> {
    if exp {
        for v in &mut values {
            *v = v.exp();
        }
    }
    values
}

/// The largest f32 not above `t`: for an f32 input `x`, `f64(x) <= t` exactly when `x <= f32_floor(t)`.
fn f32_floor(t: f64) -> f32 {
    let f = t as f32;
    if f64::from(f) > t { f.next_down() } else { f }
}

impl Perfect {
    fn build(nodes: &[Node], values: &[f64], width: usize) -> Option<Perfect> {
        if nodes
            .iter()
            .any(|n| n.flags & (Node::CATEGORICAL | Node::MISSING_ZERO) != 0)
        {
            return None;
        }
        let depth = depth_of(nodes, 0, 0)?;
        if depth > MAX_PERFECT_DEPTH {
            return None;
        }
        let inner = (1usize << depth) - 1;
        let mut p = Perfect {
            depth,
            split32: vec![(0, f32::INFINITY); inner],
            split64: vec![(0, f64::INFINITY); inner],
            feat: Vec::new(),
            thr: Vec::new(),
            node: Vec::new(),
            fid: Vec::new(),
            thr_pad: Vec::new(),
            node_fid: Vec::new(),
            pairs: Vec::new(),
            top_feat: [0; 64],
            top_thr: [f32::INFINITY; 64],
            leaf: vec![0; inner + 1],
            slot_values: Vec::new(),
            max_feature: 0,
        };
        p.fill(nodes, 0, 0, 0);
        p.max_feature = p
            .split64
            .iter()
            .map(|(f, _)| *f as usize)
            .max()
            .unwrap_or(0);
        // A block's columns are indexed with i32 by the gathers.
        if (p.max_feature + 1) * BLOCK > i32::MAX as usize {
            return None;
        }
        p.fid = p.split32.iter().map(|(f, _)| *f as i32).collect();
        p.thr_pad = p.split32.iter().map(|(_, t)| *t).collect();
        p.node_fid = p
            .split32
            .iter()
            .map(|(f, t)| (i64::from(t.to_bits()) << 32) | i64::from(*f))
            .collect();
        if p.max_feature < 8 {
            let at = |n: usize| p.split32.get(n).copied().unwrap_or((0, f32::INFINITY));
            p.pairs = (0..inner)
                .map(|n| {
                    let (a, b, c) = (at(n), at(2 * n + 1), at(2 * n + 2));
                    [
                        a.1.to_bits(),
                        b.1.to_bits(),
                        c.1.to_bits(),
                        a.0 | (b.0 << 8) | (c.0 << 16),
                    ]
                })
                .collect();
        }
        p.fid.extend([0; 8]);
        p.thr_pad.extend([f32::INFINITY; 8]);
        for (f, _) in &mut p.split32 {
            *f *= BLOCK as u32;
        }
        for (f, _) in &mut p.split64 {
            *f *= BLOCK as u32;
        }
        p.feat = p.split32.iter().map(|(f, _)| *f as i32).collect();
        p.thr = p.split32.iter().map(|(_, t)| *t).collect();
        p.node = p
            .split32
            .iter()
            .map(|(f, t)| (i64::from(t.to_bits()) << 32) | i64::from(*f))
            .collect();
        for (i, (f, t)) in p.split32.iter().take(64).enumerate() {
            p.top_feat[i] = *f as i32;
            p.top_thr[i] = *t;
        }
        let mut sv = Vec::with_capacity(p.leaf.len() * width);
        for &l in &p.leaf {
            let off = nodes[l as usize].left as usize;
            sv.extend_from_slice(values.get(off..off + width)?);
        }
        p.slot_values = sv;
        Some(p)
    }

    fn fill(&mut self, nodes: &[Node], node: usize, pos: usize, level: u32) {
        if level == self.depth {
            let inner = self.split64.len();
            self.leaf[pos - inner] = node as u32;
            return;
        }
        let n = &nodes[node];
        if n.is_leaf() {
            self.fill(nodes, node, 2 * pos + 1, level + 1);
            self.fill(nodes, node, 2 * pos + 2, level + 1);
        } else {
            self.split32[pos] = (n.feature, f32_floor(n.threshold));
            self.split64[pos] = (n.feature, n.threshold);
            self.fill(nodes, n.left as usize, 2 * pos + 1, level + 1);
            self.fill(nodes, n.right as usize, 2 * pos + 2, level + 1);
        }
    }

    /// Leaves of the `LANES` rows from `start` of the column-major block `xt` (`BLOCK` values
    /// per feature), against `splits` (`split32` for f32 rows, `split64` for f64 rows).
    #[inline(always)]
    fn leaves<T: Copy + PartialOrd>(
        &self,
        splits: &[(u32, T)],
        xt: &[T],
        start: usize,
    ) -> [usize; LANES] {
        assert!(
            (self.max_feature + 1) * BLOCK <= xt.len()
                && start + LANES <= BLOCK
                && splits.len() == (1 << self.depth) - 1,
            "perfect tree reads past the block"
        );
        let mut idx = [0usize; LANES];
        for _ in 0..self.depth {
            for r in 0..LANES {
                // SAFETY: after fewer than `depth` steps of `i = 2i + 1 + b`, `i < 2^depth - 1 =
                // splits.len()` (asserted above; see `Perfect`); every split's column is at most
                // `max_feature * BLOCK`, and the assert keeps it plus `start + r < BLOCK` inside
                // `xt`.
                #[allow(unsafe_code)]
                let (f, t) = unsafe { *splits.get_unchecked(idx[r]) };
                #[allow(unsafe_code)]
                let v = unsafe { *xt.get_unchecked(f as usize + start + r) };
                idx[r] = 2 * idx[r] + 1 + usize::from(v > t);
            }
        }
        idx.map(|i| i - splits.len())
    }
}

impl Perfect {
    /// Adds `scale` times the values of each block row's slot to its accumulators (`k` per
    /// row, this tree's `width` from `col`).
    #[inline(never)]
    fn accumulate(
        &self,
        slots: &[u32; BLOCK],
        block: &mut [f64],
        k: usize,
        col: usize,
        width: usize,
        scale: f64,
    ) {
        let values = &self.slot_values;
        if width == 1 && k == 1 {
            let block: &mut [f64; BLOCK] = block.try_into().expect("one output per row");
            for (o, &slot) in block.iter_mut().zip(slots) {
                *o += scale * values[slot as usize];
            }
        } else if width == 2 && k == 2 {
            // Binary forests: both class probabilities.
            for (o, &slot) in block.chunks_exact_mut(2).zip(slots) {
                let v = &values[2 * slot as usize..2 * slot as usize + 2];
                o[0] += scale * v[0];
                o[1] += scale * v[1];
            }
        } else {
            for (r, &slot) in slots.iter().enumerate() {
                let slot = slot as usize;
                let out = &mut block[r * k + col..r * k + col + width];
                for (o, v) in out
                    .iter_mut()
                    .zip(&values[slot * width..(slot + 1) * width])
                {
                    *o += scale * v;
                }
            }
        }
    }
}

/// The depth below `node`, or `None` for a malformed tree (children must follow their parent).
fn depth_of(nodes: &[Node], node: usize, level: u32) -> Option<u32> {
    let n = nodes.get(node)?;
    if n.is_leaf() {
        return Some(level);
    }
    if level > MAX_PERFECT_DEPTH || n.left as usize <= node || n.right as usize <= node {
        return None;
    }
    Some(depth_of(nodes, n.left as usize, level + 1)?.max(depth_of(
        nodes,
        n.right as usize,
        level + 1,
    )?))
}

impl Tree {
    pub fn new(
        nodes: Vec<Node>,
        values: Vec<f64>,
        width: usize,
        output: usize,
        cat_bitsets: Vec<Vec<u32>>,
    ) -> Tree {
        // Each tree takes the layout that scores it faster on this CPU, per row (measured by
        // `bench/score_vs_sklearn.sh`): with AVX-512, about 0.2 ns per split of a narrow mask,
        // 0.5 of a wide one, against 1.9 per level of a perfect walk; where the perfect walk
        // takes the AVX2 kernel (AVX2 only, or AVX-512 with slow gathers; measured on an AMD
        // Zen 4), about 1 ns plus 0.25 to 0.4 per level against 0.14 ns per split of either
        // mask in AVX2, or 0.12 and 0.15 per split of a narrow and a wide mask in AVX-512.
        let walk_cheaper = |m: &Masked, p: &Perfect| match simd::Isa::detect().level() {
            simd::Level::Avx2 => m.split64.len() * 14 > 100 + p.depth as usize * 25,
            simd::Level::Avx512 if simd::Isa::slow_gathers() => {
                m.split64.len() * if m.narrow { 12 } else { 15 } > 10 + p.depth as usize * 40
            }
            _ => m.split64.len() * if m.narrow { 2 } else { 5 } + 6 > p.depth as usize * 19,
        };
        let layout = match (
            Masked::build(&nodes, &values, width),
            Perfect::build(&nodes, &values, width),
        ) {
            (Some(m), Some(p)) if walk_cheaper(&m, &p) => Layout::Perfect(Box::new(p)),
            (Some(m), _) => Layout::Masked(m),
            (None, Some(p)) => Layout::Perfect(Box::new(p)),
            (None, None) => Layout::Nodes,
        };
        let zero_missing = nodes.iter().any(|n| n.flags & Node::MISSING_ZERO != 0);
        Tree {
            zero_missing,
            nodes,
            values,
            width,
            output,
            cat_bitsets,
            linear: Vec::new(),
            layout,
        }
    }

    /// The tree with linear leaves, one per value (see [`Tree::linear`]); it is walked node by
    /// node.
    pub fn with_linear(mut self, linear: Vec<LinearLeaf>) -> Tree {
        if !linear.is_empty() {
            self.layout = Layout::Nodes;
        }
        self.linear = linear;
        self
    }

    /// The value of the leaf at value offset `off` for `row` (single-value leaves).
    fn linear_value(&self, off: usize, row: &[f64]) -> f64 {
        let l = &self.linear[off];
        let mut v = l.constant;
        for &(f, c) in &l.terms {
            let x = row[f as usize];
            if x.is_nan() {
                return self.values[off];
            }
            v += c * x;
        }
        v
    }
}

/// How an ensemble turns its accumulated leaf values into an answer.
#[derive(Clone, Debug, PartialEq)]
pub enum TreeHead {
    /// The mean of the trees' values is the prediction; with `exp`, `exp` of it (log link).
    Regression { exp: bool },
    /// Boosting regressors: `base + scale * Σ leaves`, with an optional log link.
    BoostRegression { base: f64, scale: f64, exp: bool },
    /// Forests of classifiers: leaves hold class probabilities, averaged over the trees.
    ForestClassifier { classes: Vec<Label> },
    /// Boosting classifiers: `raw = base + scale * Σ leaves`, then the link.
    BoostClassifier {
        classes: Vec<Label>,
        base: Vec<f64>,
        scale: f64,
        link: BoostLink,
        /// Binary rule: `raw >= 0` (GradientBoosting) or `raw > 0` (HistGradientBoosting) is the positive class.
        positive_at_zero: bool,
    },
}

impl TreeHead {
    /// A head that only adds the leaves (no base, a scale of 1), for `n_outputs` sums: for
    /// formats whose own head reads [`TreeEnsemble::sums`] (ONNX's post transforms, PMML's
    /// segmentations).
    pub fn sums_only(n_outputs: usize) -> TreeHead {
        if n_outputs == 1 {
            TreeHead::BoostRegression {
                base: 0.0,
                scale: 1.0,
                exp: false,
            }
        } else {
            TreeHead::BoostClassifier {
                classes: (0..n_outputs as i64).map(Label::Int).collect(),
                base: vec![0.0; n_outputs],
                scale: 1.0,
                link: BoostLink::Softmax,
                positive_at_zero: false,
            }
        }
    }
}

/// The inverse link of a boosting classifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoostLink {
    /// `expit(raw)`.
    Logistic,
    /// `expit(2 raw)` (exponential loss).
    Exponential,
    /// Softmax over the classes.
    Softmax,
}

/// An ensemble of trees, checked when built: scoring cannot index out of bounds or loop.
#[derive(Clone, Debug, PartialEq)]
pub struct TreeEnsemble {
    n_features: usize,
    /// Width of the accumulator: 1 for regression and binary boosting, the number of classes otherwise.
    n_outputs: usize,
    trees: Vec<Tree>,
    /// scikit-learn's trees compare `float32(x)`; histogram boosting compares the float64.
    cast_f32: bool,
    head: TreeHead,
    /// Known categories of categorical features (by feature index), for histogram boosting.
    known_categories: Vec<Option<[u32; 8]>>,
}

/// Row `i` of the columns `cols` into `buf`, as the trees compare it: cast to float32 and
/// back when the ensemble compares in float32.
fn row_of<'b>(cols: &[&[f64]], i: usize, cast_f32: bool, buf: &'b mut Vec<f64>) -> &'b [f64] {
    buf.clear();
    if cast_f32 {
        buf.extend(cols.iter().map(|c| f64::from(c[i] as f32)));
    } else {
        buf.extend(cols.iter().map(|c| c[i]));
    }
    buf
}

/// Blocks per chunk when threads share a batch (768 rows: a 10,000-row batch makes 14 chunks).
const SHARED_BLOCKS: usize = 8;

/// A partial last block of at least this many rows is padded and scored as a block; fewer rows
/// walk the nodes one by one.
const MIN_PADDED: usize = 12;

fn in_bitset(b: &[u32], v: u32) -> bool {
    b.get((v / 32) as usize)
        .is_some_and(|w| (w >> (v % 32)) & 1 == 1)
}

impl TreeEnsemble {
    /// Builds an ensemble after checking its invariants.
    pub fn new(
        n_features: usize,
        n_outputs: usize,
        trees: Vec<Tree>,
        cast_f32: bool,
        head: TreeHead,
        known_categories: Vec<Option<[u32; 8]>>,
    ) -> Result<TreeEnsemble> {
        let e = TreeEnsemble {
            n_features,
            n_outputs,
            trees,
            cast_f32,
            head,
            known_categories,
        };
        e.validate()?;
        Ok(e)
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    pub fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    pub fn trees(&self) -> &[Tree] {
        &self.trees
    }

    pub fn head(&self) -> &TreeHead {
        &self.head
    }

    pub fn cast_f32(&self) -> bool {
        self.cast_f32
    }

    pub fn known_categories(&self) -> &[Option<[u32; 8]>] {
        &self.known_categories
    }

    /// Checks the invariants the scorer relies on, so that scoring never indexes out of bounds.
    fn validate(&self) -> Result<()> {
        match &self.head {
            TreeHead::Regression { .. } | TreeHead::BoostRegression { .. }
                if self.n_outputs != 1 =>
            {
                return Err(Error::invalid("a regression ensemble has one output"));
            }
            TreeHead::ForestClassifier { classes } if classes.len() != self.n_outputs => {
                return Err(Error::invalid("a forest has one output per class"));
            }
            TreeHead::BoostClassifier { classes, base, .. }
                if base.len() != self.n_outputs
                    || !(self.n_outputs == 1 && classes.len() == 2
                        || classes.len() == self.n_outputs) =>
            {
                return Err(Error::invalid("boosting outputs do not match the classes"));
            }
            _ => {}
        }
        if self.trees.is_empty() {
            return Err(Error::invalid("tree ensemble without trees"));
        }
        for (t, tree) in self.trees.iter().enumerate() {
            if tree.nodes.is_empty() {
                return Err(Error::invalid(format!("tree {t} has no nodes")));
            }
            if tree.output + tree.width > self.n_outputs {
                return Err(Error::invalid(format!(
                    "tree {t} writes past the ensemble's outputs"
                )));
            }
            let n = tree.nodes.len() as u32;
            for (i, node) in tree.nodes.iter().enumerate() {
                if node.is_leaf() {
                    let end = node.left as usize + tree.width;
                    if end > tree.values.len() {
                        return Err(Error::invalid(format!("tree {t} leaf {i} has no values")));
                    }
                } else {
                    // Children must come after their parent: no cycles, and walks end.
                    if node.left >= n
                        || node.right >= n
                        || node.left as usize <= i
                        || node.right as usize <= i
                    {
                        return Err(Error::invalid(format!(
                            "tree {t} node {i} has bad children"
                        )));
                    }
                    if node.feature as usize >= self.n_features {
                        return Err(Error::invalid(format!(
                            "tree {t} node {i} splits on feature {} of {}",
                            node.feature, self.n_features
                        )));
                    }
                    if node.flags & Node::CATEGORICAL != 0
                        && node.bitset as usize >= tree.cat_bitsets.len()
                    {
                        return Err(Error::invalid(format!(
                            "tree {t} node {i} has no category bitset"
                        )));
                    }
                }
            }
        }
        for (t, tree) in self.trees.iter().enumerate() {
            if !tree.linear.is_empty()
                && (tree.width != 1
                    || tree.linear.len() != tree.values.len()
                    || tree
                        .linear
                        .iter()
                        .any(|l| l.terms.iter().any(|(f, _)| *f as usize >= self.n_features)))
            {
                return Err(Error::invalid(format!(
                    "tree {t}'s linear leaves do not match its values and features"
                )));
            }
        }
        if !self.known_categories.is_empty() && self.known_categories.len() != self.n_features {
            return Err(Error::invalid("known categories do not cover the features"));
        }
        Ok(())
    }

    /// The leaf node that row `x` reaches in `tree`, for trees with categorical splits.
    #[inline]
    fn leaf_categorical(&self, tree: &Tree, x: &[f64]) -> usize {
        let mut i = 0usize;
        loop {
            let node = &tree.nodes[i];
            if node.is_leaf() {
                return i;
            }
            let v = x[node.feature as usize];
            let go_left = if v.is_nan() {
                node.flags & Node::MISSING_LEFT != 0
            } else if node.flags & Node::CATEGORICAL != 0 {
                let missing_left = node.flags & Node::MISSING_LEFT != 0;
                let bits = &tree.cat_bitsets[node.bitset as usize];
                // A negative code, or one past u32, is no category.
                let code = (0.0..4294967296.0).contains(&v).then_some(v as u32);
                if node.flags & Node::CATEGORIES_RIGHT != 0 {
                    // XGBoost: every code not listed goes left, invalid ones included.
                    !code.is_some_and(|c| in_bitset(bits, c))
                } else if let Some(c) = code {
                    if in_bitset(bits, c) {
                        true
                    } else if self
                        .known_categories
                        .get(node.feature as usize)
                        .and_then(Option::as_ref)
                        .is_some_and(|k| in_bitset(k, c))
                    {
                        false
                    } else {
                        missing_left
                    }
                } else {
                    missing_left
                }
            } else if node.flags & Node::MISSING_ZERO != 0 && v.abs() <= ZERO {
                node.flags & Node::MISSING_LEFT != 0
            } else {
                v <= node.threshold
            };
            i = if go_left { node.left } else { node.right } as usize;
        }
    }

    /// The leaf that row `x` reaches in a tree of numeric splits, node by node.
    #[inline]
    fn leaf_numeric(nodes: &[Node], x: &[f64]) -> usize {
        let mut i = 0usize;
        loop {
            let node = &nodes[i];
            if node.is_leaf() {
                return i;
            }
            let v = x[node.feature as usize];
            // NaN fails `<=`, so the missing-value rule is only consulted for NaN.
            let go_left =
                v <= node.threshold || (v.is_nan() && node.flags & Node::MISSING_LEFT != 0);
            i = if go_left { node.left } else { node.right } as usize;
        }
    }

    /// Accumulated leaf values of each row, before the head: `rows x n_outputs`, from the
    /// input's columns (`n` values each).
    /// Each row adds its trees' values in tree order, as scikit-learn does, whatever the
    /// strategy, so results are bit-identical; large batches are split across threads.
    fn accumulate(&self, cols: &[&[f64]], n: usize, scale: f64, base: &[f64]) -> Matrix {
        self.accumulate_isa(Isa::detect(), cols, n, scale, base)
    }

    /// [`TreeEnsemble::accumulate`] with the vector instructions of `isa`.
    fn accumulate_isa(
        &self,
        isa: Isa,
        cols: &[&[f64]],
        n: usize,
        scale: f64,
        base: &[f64],
    ) -> Matrix {
        let k = self.n_outputs;
        // The caller's cap (`crate::threads::with_threads`), else the cores, for large batches.
        let threads = crate::threads::batch_threads(n);
        let mut acc = vec![0.0; n * k];
        if threads > 1 && k > 0 {
            // Whole blocks per chunk, several chunks per thread: a thread that starts late
            // takes fewer of them.
            let chunk = SHARED_BLOCKS * BLOCK;
            crate::threads::share_chunks(&mut acc, chunk * k, threads, |t, out| {
                let rows = t * chunk..t * chunk + out.len() / k;
                let part: Vec<&[f64]> = cols.iter().map(|c| &c[rows.clone()]).collect();
                self.accumulate_rows(isa, &part, scale, base, out)
            });
        } else {
            self.accumulate_rows(isa, cols, scale, base, &mut acc);
        }
        Matrix::new(n, k, acc).expect("rows x outputs values")
    }

    /// The accumulator rows (`k` per row, into `acc`) of the input columns `cols` (as many
    /// values each as `acc` has rows).
    ///
    /// Rows go in blocks of `BLOCK`, copied column-major (in f32 for float32 ensembles): each
    /// block runs through every tree while its accumulators stay in a small buffer, so a row's
    /// values are added in tree order with nothing reloaded. Trees of at most 64 leaves test
    /// every split on the block ([`Masked`]), other shallow trees walk its rows as perfect trees
    /// ([`Perfect`]), the rest node by node. Rows with a missing value walk the nodes one row at
    /// a time, as do the last rows when too few remain to pad a block.
    fn accumulate_rows(
        &self,
        isa: Isa,
        cols: &[&[f64]],
        scale: f64,
        base: &[f64],
        acc: &mut [f64],
    ) {
        let (k, width) = (self.n_outputs, cols.len());
        let n = acc.len() / k.max(1);
        let walks = self.trees.iter().any(|t| t.layout == Layout::Nodes);
        let cast = self.cast_f32;
        // Fewer rows than a padded block (one row, most often) allocate nothing for blocks.
        let blocks = if n >= MIN_PADDED { BLOCK } else { 0 };
        let (mut xt32, mut xt64) = if cast {
            (vec![0f32; width * blocks], Vec::new())
        } else {
            (Vec::new(), vec![0f64; width * blocks])
        };
        // The block's rows, row-major as the node walk reads them, for trees with neither layout.
        let mut rows = vec![0f64; if walks { width * blocks } else { 0 }];
        let mut pad = vec![0f64; blocks * k];
        // A block's accumulators before its trees: `base` for every row (one copy per block).
        let start = base.repeat(blocks);
        let mut buf = Vec::with_capacity(width);
        let mut i = 0;
        // Rows without features (a model of constant trees) take the node walk below.
        while width > 0 && i < n && n - i >= MIN_PADDED {
            let m = (n - i).min(BLOCK);
            let mut nan = [false; BLOCK];
            if cast {
                simd::load_block(isa, cols, i..i + m, &mut xt32, &mut nan);
            } else {
                simd::load_block(isa, cols, i..i + m, &mut xt64, &mut nan);
            }
            if walks {
                for (r, row) in rows.chunks_exact_mut(width).take(m).enumerate() {
                    row.copy_from_slice(row_of(cols, i + r, cast, &mut buf));
                }
            }
            let block = if m == BLOCK {
                &mut acc[i * k..(i + BLOCK) * k]
            } else {
                &mut pad[..]
            };
            block.copy_from_slice(&start);
            for tree in &self.trees {
                let (w, col) = (tree.width, tree.output);
                if let Layout::Masked(mk) = &tree.layout {
                    if cast {
                        mk.accumulate(isa, &mk.split32, &xt32, block, k, col, w, scale);
                    } else {
                        mk.accumulate(isa, &mk.split64, &xt64, block, k, col, w, scale);
                    }
                } else if let Layout::Perfect(p) = &tree.layout {
                    let mut slots = [0u32; BLOCK];
                    if !(cast && simd::perfect_slots(isa, p, &xt32, &mut slots)) {
                        for lane in (0..BLOCK).step_by(LANES) {
                            let s = if cast {
                                p.leaves(&p.split32, &xt32, lane)
                            } else {
                                p.leaves(&p.split64, &xt64, lane)
                            };
                            for (o, s) in slots[lane..lane + LANES].iter_mut().zip(s) {
                                *o = s as u32;
                            }
                        }
                    }
                    if !simd::slot_add(isa, &p.slot_values, &slots, block, k, w, scale) {
                        p.accumulate(&slots, block, k, col, w, scale);
                    }
                } else {
                    for (r, row) in rows.chunks_exact(width).take(m).enumerate() {
                        self.add_leaf(tree, row, &mut block[r * k..(r + 1) * k], scale);
                    }
                }
            }
            for r in (0..m).filter(|&r| nan[r]) {
                let row = row_of(cols, i + r, cast, &mut buf);
                self.accumulate_one(row, scale, base, &mut block[r * k..(r + 1) * k]);
            }
            if m < BLOCK {
                acc[i * k..(i + m) * k].copy_from_slice(&pad[..m * k]);
            }
            i += m;
        }
        for i in i..n {
            let row = row_of(cols, i, cast, &mut buf);
            self.accumulate_one(row, scale, base, &mut acc[i * k..(i + 1) * k]);
        }
    }

    /// Writes the accumulator row of one row into `out`, walking each tree's nodes.
    fn accumulate_one(&self, row: &[f64], scale: f64, base: &[f64], out: &mut [f64]) {
        out.copy_from_slice(base);
        for tree in &self.trees {
            self.add_leaf(tree, row, out, scale);
        }
    }

    /// Adds `scale` times the values of the leaf `row` reaches in `tree` to the row's
    /// accumulators `out`, walking the nodes.
    #[inline]
    fn add_leaf(&self, tree: &Tree, row: &[f64], out: &mut [f64], scale: f64) {
        let range = self.leaf_range(tree, row);
        if tree.linear.is_empty() {
            let out = &mut out[tree.output..tree.output + tree.width];
            for (o, v) in out.iter_mut().zip(&tree.values[range]) {
                *o += scale * v;
            }
        } else {
            out[tree.output] += scale * tree.linear_value(range.start, row);
        }
    }

    /// The range of `tree.values` holding the leaf that `row` reaches, by walking the nodes.
    fn leaf_range(&self, tree: &Tree, row: &[f64]) -> std::ops::Range<usize> {
        let leaf = if tree.cat_bitsets.is_empty() && !tree.zero_missing {
            Self::leaf_numeric(&tree.nodes, row)
        } else {
            self.leaf_categorical(tree, row)
        };
        let off = tree.nodes[leaf].left as usize;
        off..off + tree.width
    }

    /// The sum of the trees' leaf values per output, for each of the `n` rows of `cols` (the
    /// input's `n_features` columns): where another format's head (ONNX's post transforms) starts.
    pub fn sums(&self, cols: &[&[f64]], n: usize) -> Result<Matrix> {
        self.check_columns(cols, n)?;
        Ok(self.accumulate(cols, n, 1.0, &vec![0.0; self.n_outputs]))
    }

    /// Refuses columns the trees cannot read: not `n_features` of them, or not all `n` long.
    fn check_columns(&self, cols: &[&[f64]], n: usize) -> Result<()> {
        if cols.len() != self.n_features || cols.iter().any(|c| c.len() != n) {
            return Err(Error::invalid(format!(
                "the trees read {} features of {n} rows, the input has {} columns",
                self.n_features,
                cols.len()
            )));
        }
        Ok(())
    }

    pub(crate) fn score(&self, x: &Matrix) -> Result<Output> {
        let owned = x.columns();
        let cols: Vec<&[f64]> = owned.iter().map(Vec::as_slice).collect();
        self.score_columns(&cols, x.rows())
    }

    /// Scores the rows of `cols`, the input's columns (`n` values each, `n_features` columns):
    /// the trees read blocks of rows column by column, so a frame's columns need no row-major
    /// copy.
    pub fn score_columns(&self, cols: &[&[f64]], n: usize) -> Result<Output> {
        self.check_columns(cols, n)?;
        let x = cols;
        let k = self.n_outputs;
        let n_trees = self.trees.len() as f64;
        match &self.head {
            TreeHead::Regression { exp } => {
                // One output per row: the accumulator is the column of sums.
                let mut values = self.accumulate(x, n, 1.0, &vec![0.0; k]).into_vec();
                for v in &mut values {
                    *v /= n_trees;
                }
                Ok(Output::new(Predictions::Values(log_link(values, *exp))))
            }
            TreeHead::BoostRegression { base, scale, exp } => {
                let values = self.accumulate(x, n, *scale, &[*base]).into_vec();
                Ok(Output::new(Predictions::Values(log_link(values, *exp))))
            }
            TreeHead::ForestClassifier { classes } => {
                let mut acc = self.accumulate(x, n, 1.0, &vec![0.0; k]);
                for v in acc.as_mut_slice() {
                    *v /= n_trees;
                }
                let index = acc.iter_rows().map(|r| argmax(r) as u32).collect();
                let mut out = Output::new(Predictions::Classes(index));
                out.probabilities = Some(acc);
                out.classes = Some(classes.clone());
                Ok(out)
            }
            TreeHead::BoostClassifier {
                classes,
                base,
                scale,
                link,
                positive_at_zero,
            } => {
                let raw = self.accumulate(x, n, *scale, base);
                let n = raw.rows();
                let mut out;
                if k == 1 {
                    let dec: Vec<f64> = raw.into_vec();
                    let index = dec
                        .iter()
                        .map(|&v| u32::from(if *positive_at_zero { v >= 0.0 } else { v > 0.0 }))
                        .collect();
                    let mut p = Vec::with_capacity(2 * n);
                    for &v in &dec {
                        let p1 = match link {
                            BoostLink::Exponential => expit(2.0 * v),
                            _ => expit(v),
                        };
                        p.push(1.0 - p1);
                        p.push(p1);
                    }
                    out = Output::new(Predictions::Classes(index));
                    out.probabilities = Some(Matrix::new(n, 2, p)?);
                    out.decision_function = Some(Scores::Vector(dec));
                } else {
                    let index = raw.iter_rows().map(|r| argmax(r) as u32).collect();
                    let mut p = raw.clone();
                    for i in 0..n {
                        softmax_in_place(p.row_mut(i));
                    }
                    out = Output::new(Predictions::Classes(index));
                    out.probabilities = Some(p);
                    out.decision_function = Some(Scores::Matrix(raw));
                }
                out.classes = Some(classes.clone());
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The next number of a linear congruential generator (high bits).
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    /// A leaf of `width` random values, appended; returns its node index.
    fn random_leaf(
        seed: &mut u64,
        width: usize,
        nodes: &mut Vec<Node>,
        values: &mut Vec<f64>,
    ) -> u32 {
        let me = nodes.len() as u32;
        nodes.push(Node::leaf(values.len() as u32));
        values.extend((0..width).map(|_| (lcg(seed) % 1000) as f64 / 7.0 - 50.0));
        me
    }

    /// A random tree over `n_features` features: nodes in pre-order, children after parents.
    fn random_tree(
        depth: u32,
        seed: &mut u64,
        n_features: u32,
        width: usize,
        nodes: &mut Vec<Node>,
        values: &mut Vec<f64>,
    ) -> u32 {
        if depth == 0 || lcg(seed).is_multiple_of(5) {
            return random_leaf(seed, width, nodes, values);
        }
        let mut next = || lcg(seed);
        let me = nodes.len() as u32;
        let feature = (next() % u64::from(n_features)) as u32;
        // Thresholds of all kinds: round, and off the f32 grid, so the f32 path is exercised.
        let threshold =
            ((next() % 2000) as f64 - 1000.0) / 97.0 + if next() % 2 == 0 { 1e-9 } else { 0.0 };
        let flags = if next() % 2 == 0 {
            Node::MISSING_LEFT
        } else {
            0
        };
        nodes.push(Node {
            feature,
            threshold,
            left: 0,
            right: 0,
            flags,
            bitset: 0,
        });
        let l = random_tree(depth - 1, seed, n_features, width, nodes, values);
        let r = random_tree(depth - 1, seed, n_features, width, nodes, values);
        nodes[me as usize].left = l;
        nodes[me as usize].right = r;
        me
    }

    /// The scorer's accumulators for the rows of `x`, read by columns as `score_columns` reads them.
    /// Every vector level this CPU has gives the same accumulators, bit for bit.
    fn by_columns(e: &TreeEnsemble, x: &Matrix, scale: f64, base: &[f64]) -> Matrix {
        let owned = x.columns();
        let cols: Vec<&[f64]> = owned.iter().map(Vec::as_slice).collect();
        let mut got = Isa::available()
            .into_iter()
            .map(|isa| e.accumulate_isa(isa, &cols, x.rows(), scale, base));
        let first = got.next().expect("the base level");
        for other in got {
            let bits = |m: &Matrix| m.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&other), bits(&first));
        }
        first
    }

    /// The reference: walk each tree node by node, as scikit-learn's Cython does.
    fn naive(e: &TreeEnsemble, x: &Matrix, scale: f64, base: &[f64]) -> Vec<f64> {
        let mut out = Vec::new();
        for row in x.iter_rows() {
            let r: Vec<f64> = row
                .iter()
                .map(|v| if e.cast_f32 { f64::from(*v as f32) } else { *v })
                .collect();
            let mut acc = base.to_vec();
            for t in &e.trees {
                let mut i = 0;
                while !t.nodes[i].is_leaf() {
                    let n = &t.nodes[i];
                    let v = r[n.feature as usize];
                    let left = if v.is_nan() {
                        n.flags & Node::MISSING_LEFT != 0
                    } else {
                        v <= n.threshold
                    };
                    i = if left { n.left } else { n.right } as usize;
                }
                let off = t.nodes[i].left as usize;
                for (a, v) in acc[t.output..t.output + t.width]
                    .iter_mut()
                    .zip(&t.values[off..off + t.width])
                {
                    *a += scale * v;
                }
            }
            out.extend(acc);
        }
        out
    }

    /// `rows` rows of the ensemble's features: missing values, values past f32's range, values
    /// exactly on thresholds and on their f32 roundings (which decide `<=` against `<`), others.
    fn random_rows(e: &TreeEnsemble, rows: usize, s: &mut u64) -> Matrix {
        let on: Vec<f64> = e
            .trees
            .iter()
            .flat_map(|t| t.nodes.iter().filter(|n| !n.is_leaf()).map(|n| n.threshold))
            .collect();
        let data: Vec<f64> = (0..rows * e.n_features)
            .map(|i| {
                *s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
                match (*s >> 40) % 11 {
                    0 => f64::NAN,
                    1 => 1e39,
                    2 => -1e39,
                    3 | 4 if !on.is_empty() => on[(*s >> 10) as usize % on.len()],
                    5 if !on.is_empty() => f64::from(on[(*s >> 10) as usize % on.len()] as f32),
                    _ => ((*s >> 20) % 4000) as f64 / 193.0 - 10.0 + (i % 3) as f64 * 1e-9,
                }
            })
            .collect();
        Matrix::new(rows, e.n_features, data).unwrap()
    }

    /// A tree of `leaves` leaves where every split has a leaf on one side (random) and the rest
    /// of the tree on the other: as deep as a tree of that many leaves can be.
    fn caterpillar(
        leaves: u32,
        seed: &mut u64,
        width: usize,
        nodes: &mut Vec<Node>,
        values: &mut Vec<f64>,
    ) -> u32 {
        if leaves == 1 {
            return random_leaf(seed, width, nodes, values);
        }
        let mut next = || lcg(seed);
        let me = nodes.len() as u32;
        let leaf_left = next() % 2 == 0;
        nodes.push(Node {
            feature: (next() % 4) as u32,
            threshold: ((next() % 2000) as f64 - 1000.0) / 97.0,
            left: 0,
            right: 0,
            flags: 0,
            bitset: 0,
        });
        let (l, r) = if leaf_left {
            let l = caterpillar(1, seed, width, nodes, values);
            (l, caterpillar(leaves - 1, seed, width, nodes, values))
        } else {
            let l = caterpillar(leaves - 1, seed, width, nodes, values);
            (l, caterpillar(1, seed, width, nodes, values))
        };
        nodes[me as usize].left = l;
        nodes[me as usize].right = r;
        me
    }

    /// Masked trees of every size (narrow and wide masks, leaf values permuted from one or two
    /// vectors or gathered) score as the node walk does, at every vector level.
    #[test]
    fn masked_trees_of_every_leaf_count_equal_the_node_walk() {
        let mut s = 7u64;
        for leaves in 2..=64 {
            for (cast_f32, multi) in [(true, false), (false, false), (true, true)] {
                let (width, k) = if multi { (2, 2) } else { (1, 1) };
                let trees: Vec<Tree> = (0..3)
                    .map(|_| {
                        let (mut nodes, mut values) = (Vec::new(), Vec::new());
                        caterpillar(leaves, &mut s, width, &mut nodes, &mut values);
                        let t = Tree::new(nodes, values, width, 0, Vec::new());
                        assert!(
                            matches!(t.layout, Layout::Masked(_)),
                            "{leaves} leaves take the masked layout"
                        );
                        t
                    })
                    .collect();
                let head = if multi {
                    TreeHead::ForestClassifier {
                        classes: (0..2).map(Label::Int).collect(),
                    }
                } else {
                    TreeHead::BoostRegression {
                        base: 0.5,
                        scale: 0.1,
                        exp: false,
                    }
                };
                let e = TreeEnsemble::new(4, k, trees, cast_f32, head, Vec::new()).unwrap();
                let x = random_rows(&e, 150, &mut s);
                let base = vec![0.5; k];
                let got = by_columns(&e, &x, 0.1, &base);
                let want = naive(&e, &x, 0.1, &base);
                let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(got.as_slice()), bits(&want), "{leaves} leaves");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn every_scoring_path_equals_the_node_walk(
            seed in any::<u64>(),
            depth in 0u32..14,
            n_trees in 1usize..6,
            cast_f32 in any::<bool>(),
            k in prop::sample::select(vec![1usize, 2, 3]),
            rows in prop::sample::select(vec![1usize, 7, 8, 9, 11, 12, 33, 48, 95, 96, 97, 107, 108, 4100]),
            // Up to 8 features, the AVX2 walk picks values with blends; past 8 it gathers them.
            n_features in prop::sample::select(vec![1usize, 4, 8, 9, 20]),
        ) {
            let mut s = seed;
            // One output; two, filled by every tree (binary forests); three, from trees of one
            // and two values per leaf writing at every column.
            let trees: Vec<Tree> = (0..n_trees)
                .map(|t| {
                    let (mut nodes, mut values) = (Vec::new(), Vec::new());
                    let (width, output) = match k {
                        3 => (1 + t % 2, t % 2),
                        _ => (k, 0),
                    };
                    random_tree(depth, &mut s, n_features as u32, width, &mut nodes, &mut values);
                    Tree::new(nodes, values, width, output, Vec::new())
                })
                .collect();
            let head = if k > 1 {
                TreeHead::ForestClassifier { classes: (0..k as i64).map(Label::Int).collect() }
            } else {
                TreeHead::BoostRegression { base: 0.5, scale: 0.1, exp: false }
            };
            let e = TreeEnsemble::new(n_features, k, trees, cast_f32, head, Vec::new()).unwrap();
            let base = vec![0.5; k];
            let x = random_rows(&e, rows, &mut s);
            let got = by_columns(&e, &x, 0.1, &base);
            let want = naive(&e, &x, 0.1, &base);
            prop_assert_eq!(got.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Every vector kernel of the perfect walk this CPU has (AVX2's, AVX-512's, whichever the
        /// scorer would choose here) reaches the leaves the portable walk reaches, on trees of
        /// every depth over few features (values picked by blends) and many (gathered).
        #[test]
        fn every_perfect_walk_kernel_equals_the_portable_walk(
            seed in any::<u64>(),
            depth in 0u32..13,
            n_features in prop::sample::select(vec![1usize, 3, 8, 9, 20]),
        ) {
            let mut s = seed;
            let (mut nodes, mut values) = (Vec::new(), Vec::new());
            random_tree(depth, &mut s, n_features as u32, 1, &mut nodes, &mut values);
            let Some(p) = Perfect::build(&nodes, &values, 1) else {
                return Ok(());
            };
            let e = TreeEnsemble::new(
                n_features,
                1,
                vec![Tree::new(nodes, values, 1, 0, Vec::new())],
                true,
                TreeHead::Regression { exp: false },
                Vec::new(),
            )
            .unwrap();
            // A block of f32 values without NaN (rows with one are scored by the node walk).
            let x = random_rows(&e, BLOCK, &mut s);
            let xt: Vec<f32> = (0..n_features)
                .flat_map(|f| (0..BLOCK).map(move |r| (f, r)))
                .map(|(f, r)| x.row(r)[f])
                .map(|v| if v.is_nan() { 0.0 } else { v as f32 })
                .collect();
            let mut want = [0u32; BLOCK];
            for lane in (0..BLOCK).step_by(LANES) {
                for (o, l) in want[lane..lane + LANES].iter_mut().zip(p.leaves(&p.split32, &xt, lane)) {
                    *o = l as u32;
                }
            }
            for got in simd::perfect_slots_each(&p, &xt) {
                prop_assert_eq!(got.to_vec(), want.to_vec());
            }
        }
    }

    #[test]
    fn trees_over_no_features_score_every_row() {
        let tree = Tree::new(vec![Node::leaf(0)], vec![2.5], 1, 0, Vec::new());
        let e = TreeEnsemble::new(
            0,
            1,
            vec![tree],
            true,
            TreeHead::BoostRegression {
                base: 1.0,
                scale: 1.0,
                exp: false,
            },
            Vec::new(),
        )
        .unwrap();
        for rows in [1, 96, 100, 5000] {
            let x = Matrix::new(rows, 0, Vec::new()).unwrap();
            assert_eq!(by_columns(&e, &x, 1.0, &[1.0]).as_slice(), vec![3.5; rows]);
        }
    }

    #[test]
    fn f32_floor_is_the_largest_f32_not_above() {
        for t in [
            0.1,
            -0.1,
            1.0,
            1e39,
            -1e39,
            f64::INFINITY,
            3.4028235e38,
            16777217.0,
        ] {
            let f = f32_floor(t);
            assert!(f64::from(f) <= t, "{t}");
            assert!(f == f32::INFINITY || f64::from(f.next_up()) > t, "{t}");
        }
    }
}
