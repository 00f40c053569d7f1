//! The dispatch on the syscall number: a balanced binary search over sorted,
//! coalesced ranges of numbers, with constant leaves inline.
//!
//! Why a tree: at attach time the kernel runs the filter once per syscall
//! number to fill its action cache (`seccomp_cache_prepare`), and it JITs the
//! whole program; both cost per instruction walked or emitted. A linear chain
//! walks O(syscalls) per number, the tree O(log ranges).
//!
//! Layout of a node over ranges `r[..n]`, split at `m = n / 2`, left subtree
//! inline, right subtree after it:
//!
//! ```text
//!     if A >= r[m].start goto right         (jt = length of the left subtree)
//!     left subtree
//! right:
//!     right subtree
//! ```
//!
//! `jt` is 8 bits, so when the left subtree is longer than 255 instructions
//! the node becomes `if A >= k goto +0 else goto +1; goto right` (`JA`, 32-bit
//! offset). The emitter picks by `u8::try_from(left length)`, after the left
//! subtree is built: a conditional offset cannot overflow, whatever the size
//! of the program. Every other conditional offset is 0 or 1, and all jumps are
//! forward (classic BPF has no other kind). A path takes one instruction per
//! level (two at levels with a `JA`) plus the leaf.
//!
//! Leaves: `RET action` for a constant decision (no argument load on that
//! path, so the kernel's cache still marks an allowed number always-allow),
//! or a `JA` to the syscall's argument block, which [`emit`] appends after the
//! tree.
//!
//! Shared returns. Most leaves are one of three `RET`s (allow, `EPERM`,
//! `ENOSYS`), so a node whose side is a single constant leaf does not inline
//! it: its `jt`/`jf` goes straight to one `RET` per action placed right after
//! the tree. That halves the tree (the attach cost grows with the length of
//! the program) and does not lengthen any path. It needs every such branch
//! within 255 instructions of the pool, which holds for the x86_64 table (the
//! tree is ~100 instructions); when it does not, [`emit`] falls back to
//! inline leaves, where the bound above holds for any size.

use seccompiler::sock_filter;

use super::Error;

const BPF_JMP_JA: u16 = 0x05;
const BPF_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;

/// What the filter does for a whole range of numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Leaf {
    /// Return this action word.
    Ret(u32),
    /// Jump to argument block `i` (never merged with a neighbour).
    Block(usize),
}

/// Numbers `start..` up to the next range's start (the last one is open).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Range {
    pub start: u32,
    pub leaf: Leaf,
}

/// Sorted, unique `(nr, leaf)` points → ranges covering every `u32`, gaps and
/// the numbers above the highest point returning `default`, neighbours with
/// the same `RET` merged.
pub(super) fn ranges<I>(points: I, default: u32) -> Result<Vec<Range>, Error>
where
    I: IntoIterator<Item = (u32, Leaf)>,
{
    fn push(out: &mut Vec<Range>, start: u32, leaf: Leaf) {
        let same = matches!(leaf, Leaf::Ret(_)) && out.last().map(|r| r.leaf) == Some(leaf);
        if !same {
            out.push(Range { start, leaf });
        }
    }
    let mut out = Vec::new();
    // The first number not covered yet.
    let mut next = 0u32;
    for (nr, leaf) in points {
        if nr < next {
            return Err(Error::Invalid {
                pc: 0,
                why: "syscall numbers given to the tree are not sorted and unique",
            });
        }
        if nr > next {
            push(&mut out, next, Leaf::Ret(default));
        }
        push(&mut out, nr, leaf);
        next = nr.checked_add(1).ok_or(Error::Invalid {
            pc: 0,
            why: "syscall number u32::MAX in the tree",
        })?;
    }
    push(&mut out, next, Leaf::Ret(default));
    Ok(out)
}

fn ins(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Distance for a `JA` at `from` landing on `to`.
fn ja_offset(from: usize, to: usize) -> Result<u32, Error> {
    to.checked_sub(from + 1)
        .and_then(|d| u32::try_from(d).ok())
        .ok_or(Error::Invalid {
            pc: from,
            why: "tree jump target before the jump",
        })
}

/// Which offset of a conditional jump a pool fixup fills.
#[derive(Clone, Copy)]
enum Side {
    Jt,
    Jf,
}

/// Code of a subtree plus what is patched once the rest has landed: the
/// `(pc, block index)` of `JA` leaves, and the `(pc, side, action)` of
/// conditional offsets that go to the shared `RET action`. Pcs are relative
/// to the subtree's start.
#[derive(Default)]
struct Code {
    ins: Vec<sock_filter>,
    blocks: Vec<(usize, usize)>,
    pool: Vec<(usize, Side, u32)>,
}

impl Code {
    fn append(&mut self, other: Code) {
        let base = self.ins.len();
        self.ins.extend(other.ins);
        let blocks = other.blocks.into_iter().map(|(pc, i)| (base + pc, i));
        self.blocks.extend(blocks);
        let pool = other.pool.into_iter().map(|(pc, s, a)| (base + pc, s, a));
        self.pool.extend(pool);
    }
}

/// The subtree over `ranges`. With `pooled`, a branch to a single `RET`
/// leaf jumps to that action's shared `RET` after the tree instead of an
/// inline copy.
fn node(ranges: &[Range], pooled: bool) -> Code {
    let mut code = Code::default();
    if let [only] = ranges {
        match only.leaf {
            Leaf::Ret(action) => code.ins.push(ins(BPF_RET_K, 0, 0, action)),
            Leaf::Block(i) => {
                code.blocks.push((0, i));
                code.ins.push(ins(BPF_JMP_JA, 0, 0, 0));
            }
        }
        return code;
    }
    let (left, right) = ranges.split_at(ranges.len() / 2);
    let k = right[0].start;
    let shared = |side: &[Range]| match side {
        [Range {
            leaf: Leaf::Ret(action),
            ..
        }] if pooled => Some(*action),
        _ => None,
    };
    match (shared(left), shared(right)) {
        (Some(l), Some(r)) => {
            code.ins.push(ins(BPF_JGE_K, 0, 0, k));
            code.pool.extend([(0, Side::Jt, r), (0, Side::Jf, l)]);
        }
        (Some(l), None) => {
            // Right subtree next, left leaf in the pool.
            code.ins.push(ins(BPF_JGE_K, 0, 0, k));
            code.pool.push((0, Side::Jf, l));
            code.append(node(right, pooled));
        }
        (None, Some(r)) => {
            code.ins.push(ins(BPF_JGE_K, 0, 0, k));
            code.pool.push((0, Side::Jt, r));
            code.append(node(left, pooled));
        }
        (None, None) => {
            let left = node(left, pooled);
            match u8::try_from(left.ins.len()) {
                // Hop over the left subtree when the 8-bit offset reaches...
                Ok(hop) => code.ins.push(ins(BPF_JGE_K, hop, 0, k)),
                // ...else through a JA, whose offset is 32 bits.
                Err(_) => {
                    code.ins.push(ins(BPF_JGE_K, 0, 1, k));
                    code.ins.push(ins(BPF_JMP_JA, 0, 0, left.ins.len() as u32));
                }
            }
            code.append(left);
            code.append(node(right, pooled));
        }
    }
    code
}

/// The pooled tree followed by one `RET` per action it shares, or `None` if
/// some branch is too far from its `RET` for an 8-bit offset.
fn pooled_tree(ranges: &[Range]) -> Option<Code> {
    let mut code = node(ranges, true);
    let mut rets: Vec<(u32, usize)> = Vec::new();
    for &(_, _, action) in &code.pool {
        if !rets.iter().any(|&(a, _)| a == action) {
            rets.push((action, code.ins.len()));
            code.ins.push(ins(BPF_RET_K, 0, 0, action));
        }
    }
    for &(pc, side, action) in &code.pool {
        let (_, to) = rets.iter().find(|&&(a, _)| a == action)?;
        let off = u8::try_from(to.checked_sub(pc + 1)?).ok()?;
        match side {
            Side::Jt => code.ins[pc].jt = off,
            Side::Jf => code.ins[pc].jf = off,
        }
    }
    code.pool.clear();
    Some(code)
}

/// The tree over `ranges` (non-empty, as [`ranges`] returns), followed by the
/// argument `blocks` its `Leaf::Block` leaves jump to. Expects the syscall
/// number in A. Returns the code and the length of the tree part (shared
/// `RET`s included).
pub(super) fn emit(
    ranges: &[Range],
    blocks: &[Vec<sock_filter>],
) -> Result<(Vec<sock_filter>, usize), Error> {
    if ranges.is_empty() {
        return Err(Error::Invalid {
            pc: 0,
            why: "empty range list",
        });
    }
    // The pooled tree is about half the size (a filter's attach cost grows
    // with its length); the inline one fits any number of ranges.
    let mut code = pooled_tree(ranges).unwrap_or_else(|| node(ranges, false));
    let tree_len = code.ins.len();
    let mut starts = Vec::with_capacity(blocks.len());
    for block in blocks {
        starts.push(code.ins.len());
        code.ins.extend_from_slice(block);
    }
    for (pc, i) in code.blocks {
        let start = *starts.get(i).ok_or(Error::Invalid {
            pc,
            why: "leaf names a missing argument block",
        })?;
        code.ins[pc].k = ja_offset(pc, start)?;
    }
    Ok((code.ins, tree_len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::bpf_interp::{run, SeccompData};

    const DEF: u32 = 99;

    fn r(start: u32, leaf: Leaf) -> Range {
        Range { start, leaf }
    }

    #[test]
    fn ranges_fill_gaps_and_merge_equal_returns() {
        let got = ranges(
            [
                (0, Leaf::Ret(1)),
                (1, Leaf::Ret(1)),
                (3, Leaf::Ret(DEF)),
                (4, Leaf::Block(0)),
                (5, Leaf::Block(1)),
                (6, Leaf::Ret(2)),
            ],
            DEF,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                r(0, Leaf::Ret(1)),
                r(2, Leaf::Ret(DEF)),
                r(4, Leaf::Block(0)),
                r(5, Leaf::Block(1)),
                r(6, Leaf::Ret(2)),
                r(7, Leaf::Ret(DEF)),
            ]
        );
        assert_eq!(ranges([], DEF).unwrap(), [r(0, Leaf::Ret(DEF))]);
        assert!(ranges([(2, Leaf::Ret(1)), (2, Leaf::Ret(1))], DEF).is_err());
    }

    /// Runs the tree (after a load of nr) for 0..limit against `points`;
    /// returns the tree part.
    fn assert_dispatch(points: &[(u32, Leaf)], limit: u32) -> Vec<sock_filter> {
        let rs = ranges(points.iter().copied(), DEF).unwrap();
        let nblocks = points
            .iter()
            .filter(|p| matches!(p.1, Leaf::Block(_)))
            .count();
        let blocks: Vec<Vec<sock_filter>> = (0..nblocks)
            .map(|i| vec![ins(BPF_RET_K, 0, 0, 1000 + i as u32)])
            .collect();
        let (prog, tree_len) = emit(&rs, &blocks).unwrap();
        assert_eq!(prog.len(), tree_len + blocks.len());
        let mut full = vec![ins(0x20, 0, 0, 0)];
        full.extend(prog.iter().cloned());
        for nr in 0..limit {
            let want = match points.iter().find(|p| p.0 == nr) {
                Some(&(_, Leaf::Ret(a))) => a,
                Some(&(_, Leaf::Block(i))) => 1000 + i as u32,
                None => DEF,
            };
            let data = SeccompData {
                nr: nr as i32,
                ..Default::default()
            };
            assert_eq!(run(&full, &data), Ok(want), "nr {nr}");
        }
        // Tree jumps stay in the tree (the JA leaves aside).
        for (pc, i) in prog[..tree_len].iter().enumerate() {
            if i.code == BPF_JGE_K {
                let far = pc + 1 + usize::from(i.jt.max(i.jf));
                assert!(far < tree_len, "pc {pc}: {i:?}");
            }
        }
        prog[..tree_len].to_vec()
    }

    fn rets(tree: &[sock_filter]) -> usize {
        tree.iter().filter(|i| i.code == BPF_RET_K).count()
    }

    #[test]
    fn every_number_finds_its_range() {
        // Points at every third number, alternating actions, plus blocks.
        let points: Vec<(u32, Leaf)> = (0..200u32)
            .step_by(3)
            .map(|n| {
                let leaf = if n % 30 == 0 {
                    Leaf::Block((n / 30) as usize)
                } else {
                    Leaf::Ret(n % 2)
                };
                (n, leaf)
            })
            .collect();
        let tree = assert_dispatch(&points, 300);
        // Small tree: pooled, so one RET per action (0, 1, DEF); the only
        // JAs are the 7 block leaves.
        assert_eq!(rets(&tree), 3);
        assert_eq!(tree.iter().filter(|i| i.code == BPF_JMP_JA).count(), 7);
        let single = assert_dispatch(&[(0, Leaf::Ret(1))], 5);
        assert_eq!(single.len(), 3);
    }

    #[test]
    fn long_trees_inline_their_leaves_and_go_through_ja() {
        // 1500 alternating ranges: too far from a pool for 8-bit offsets, and
        // the upper levels' left subtrees are longer than 255 instructions.
        let points: Vec<(u32, Leaf)> = (0..1500u32).map(|n| (n, Leaf::Ret(n % 2))).collect();
        let tree = assert_dispatch(&points, 1600);
        assert_eq!(rets(&tree), 1501);
        let far: Vec<usize> = (0..tree.len())
            .filter(|&pc| tree[pc].code == BPF_JGE_K && tree[pc].jf == 1)
            .collect();
        assert!(!far.is_empty());
        for pc in far {
            assert_eq!(tree[pc].jt, 0);
            assert_eq!(tree[pc + 1].code, BPF_JMP_JA);
            assert!(tree[pc + 1].k > 255);
        }
        for jge in tree.iter().filter(|i| i.code == BPF_JGE_K) {
            assert!(jge.jf <= 1, "{jge:?}");
        }
    }
}
