//! Prime ranges: a segmented sieve of Eratosthenes on a mod-30 wheel.
//!
//! One byte covers 30 consecutive integers; its 8 bits are the residues
//! coprime to 30 ({1, 7, 11, 13, 17, 19, 23, 29}). A segment of
//! [`segment_bytes`] bytes (cache-sized) is pre-sieved by copying a pattern
//! that already has the multiples of 7, 11, 13, 17 and 19 removed, then the
//! sieving primes from 23 up to min(sqrt(hi), [`SIEVE_PRIME_LIMIT`]) cross
//! off their multiples, 8 per wheel turn; those stepping over more than a
//! segment wait in a ring of buckets and are touched only where they hit.
//! Above 2^48 the candidates that survive are confirmed by the deterministic
//! Miller-Rabin test, so memory stays bounded for any range of the 64-bit
//! space (see [`memory_bound_bytes`]).
//!
//! The crossing loop indexes the segment without bounds checks (an
//! `unsafe` block with its invariant stated; the workspace's other `unsafe`
//! code is ECM's AVX-512 arithmetic, `factor/mpv.rs`): the checks
//! cost a quarter to a third of the sieve's time (measured with `scripts/bench-primes.sh`).
//!
//! [`count`] and [`for_each_prime`] are single-threaded; [`count_parallel`]
//! splits the range over the rayon pool. All take a [`Control`] and check it
//! once per segment.

#![allow(unsafe_code)]
use rayon::prelude::*;

use crate::control::{Control, Stop};

/// Largest segment: 1 MiB = 31,457,280 integers. The segment size grows with
/// the range's end (see [`segment_bytes`]): small primes favour a segment that
/// stays in the L2 cache, many medium primes favour fewer, larger segments.
pub const SEGMENT_BYTES: usize = 1024 * 1024;

/// Segment size for sieving up to `hi` (tuned with `scripts/bench-primes.sh`).
pub fn segment_bytes(hi: u64) -> usize {
    match hi {
        0..=0xFFFF_FFFF => 256 * 1024,
        0x1_0000_0000..=0xF_FFFF_FFFF => 512 * 1024,
        _ => SEGMENT_BYTES,
    }
}
/// Sieving primes produced per batch by the small sieve.
pub const MAX_PRIMES_PER_PASS: usize = 1 << 16;

pub(crate) const WHEEL: [u64; 8] = [1, 7, 11, 13, 17, 19, 23, 29];
/// bit index of residue r (mod 30), or 255 when gcd(r, 30) > 1.
const BIT_OF: [u8; 30] = {
    let mut t = [255u8; 30];
    let mut i = 0;
    while i < 8 {
        t[WHEEL[i] as usize] = i as u8;
        i += 1;
    }
    t
};
/// Primes handled by the pre-sieve pattern (and 2, 3, 5 by the wheel).
const PRESIEVED: [u64; 5] = [7, 11, 13, 17, 19];
const PATTERN_BYTES: usize = 7 * 11 * 13 * 17 * 19; // 323,323

fn pattern() -> &'static [u8] {
    static P: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        let mut v = vec![0xffu8; PATTERN_BYTES];
        for &p in &PRESIEVED {
            // every multiple of p coprime to 30 within [0, 30 * PATTERN_BYTES)
            let mut m = p;
            while m < 30 * PATTERN_BYTES as u64 {
                let b = BIT_OF[(m % 30) as usize];
                if b != 255 {
                    v[(m / 30) as usize] &= !(1 << b);
                }
                m += 2 * p;
            }
        }
        v
    })
}

/// Wheel tables for a prime p = 30q + r: crossing the multiple p*m with
/// m = 30a + WHEEL[i] clears bit MASK_BIT[r][i] of byte a*p + q*WHEEL[i] + CARRY[r][i].
struct Tables {
    carry: [[u8; 8]; 30],
    bit: [[u8; 8]; 30],
}

const TABLES: Tables = {
    let mut carry = [[0u8; 8]; 30];
    let mut bit = [[0u8; 8]; 30];
    let mut r = 0;
    while r < 30 {
        let mut i = 0;
        while i < 8 {
            let prod = r as u64 * WHEEL[i];
            carry[r][i] = (prod / 30) as u8;
            bit[r][i] = BIT_OF[(prod % 30) as usize];
            i += 1;
        }
        r += 1;
    }
    Tables { carry, bit }
};

/// A sieving prime with the position of its next multiple to cross:
/// `next` is a byte index relative to the start of the range being sieved,
/// `i` the wheel index of the multiplier.
#[derive(Clone, Copy)]
struct Sieving {
    next: u64,
    /// At most SIEVE_PRIME_LIMIT = 2^24: u32 keeps the struct at 16 bytes.
    p: u32,
    i: u8,
}

impl Sieving {
    /// The first multiple p*m >= max(p*p, lo) with m coprime to 30, as a
    /// position relative to `base` (a multiple of 30).
    fn new(p: u64, lo: u64, base: u64) -> Self {
        let start = lo.max(p.saturating_mul(p));
        // smallest m >= ceil(start / p) with m coprime to 30
        let mut m = start.div_ceil(p);
        while BIT_OF[(m % 30) as usize] == 255 {
            m += 1;
        }
        let i = BIT_OF[(m % 30) as usize];
        // multiple = p*m; byte = multiple / 30 - base / 30 (p*m may exceed u64: use u128)
        let multiple = p as u128 * m as u128;
        let next = (multiple / 30) as u64 - base / 30;
        Self { p: p as u32, next: if multiple > u64::MAX as u128 { u64::MAX } else { next }, i }
    }

    /// Crosses this prime's multiples inside `seg` (which starts at byte
    /// `seg_start` of the range); leaves `next` at the first one beyond it.
    #[inline]
    fn cross(&mut self, seg: &mut [u8], seg_start: u64) {
        let end = seg_start + seg.len() as u64;
        if self.next >= end {
            return;
        }
        let p = u64::from(self.p);
        let q = p / 30;
        let r = (p % 30) as usize;
        let carry = &TABLES.carry[r];
        let bits = &TABLES.bit[r];
        // byte of multiplier index i within a turn: turn_base + q*W[i] + carry[i]
        let off = |i: usize| q * WHEEL[i] + carry[i] as u64;
        let i0 = self.i as usize;
        let mut turn_base = self.next - off(i0);
        let mut i = i0;
        // finish the current turn
        while i < 8 {
            let pos = turn_base + off(i);
            if pos >= end {
                self.next = pos;
                self.i = i as u8;
                return;
            }
            seg[(pos - seg_start) as usize] &= !(1 << bits[i]);
            i += 1;
        }
        turn_base += p;
        // whole turns
        let offs = [off(0), off(1), off(2), off(3), off(4), off(5), off(6), off(7)];
        let masks = [!(1u8 << bits[0]), !(1u8 << bits[1]), !(1u8 << bits[2]), !(1u8 << bits[3]),
                     !(1u8 << bits[4]), !(1u8 << bits[5]), !(1u8 << bits[6]), !(1u8 << bits[7])];
        while turn_base + offs[7] < end {
            let b = (turn_base - seg_start) as usize;
            // SAFETY: b + offs[7] < end - seg_start = seg.len() (loop condition) and offs is ascending.
            unsafe {
                *seg.get_unchecked_mut(b + offs[0] as usize) &= masks[0];
                *seg.get_unchecked_mut(b + offs[1] as usize) &= masks[1];
                *seg.get_unchecked_mut(b + offs[2] as usize) &= masks[2];
                *seg.get_unchecked_mut(b + offs[3] as usize) &= masks[3];
                *seg.get_unchecked_mut(b + offs[4] as usize) &= masks[4];
                *seg.get_unchecked_mut(b + offs[5] as usize) &= masks[5];
                *seg.get_unchecked_mut(b + offs[6] as usize) &= masks[6];
                *seg.get_unchecked_mut(b + offs[7] as usize) &= masks[7];
            }
            turn_base += p;
        }
        // partial last turn
        for (i, (&o, &mk)) in offs.iter().zip(masks.iter()).enumerate() {
            let pos = turn_base + o;
            if pos >= end {
                self.next = pos;
                self.i = i as u8;
                return;
            }
            seg[(pos - seg_start) as usize] &= mk;
        }
        self.next = turn_base + p + offs[0];
        self.i = 0;
    }
}

/// Primes p with 23 <= p <= limit (limit <= 2^32), produced in ascending
/// chunks of at most `chunk` primes by a plain segmented sieve.
fn sieving_primes(limit: u64, chunk: usize, mut f: impl FnMut(&[u64]) -> Result<(), Stop>) -> Result<(), Stop> {
    let small_limit = (limit as f64).sqrt() as u64 + 2;
    let small: Vec<u64> = crate::factor::small::primes_below(small_limit.max(2));
    let mut out = Vec::with_capacity(chunk.min(1 << 16));
    const SPAN: u64 = 1 << 18;
    let mut lo = 0u64;
    let mut buf = vec![true; SPAN as usize];
    while lo <= limit {
        let hi = (lo + SPAN).min(limit + 1);
        buf.iter_mut().for_each(|b| *b = true);
        for &p in &small {
            if p * p >= hi {
                break;
            }
            let mut m = (lo.div_ceil(p)).max(p) * p;
            while m < hi {
                buf[(m - lo) as usize] = false;
                m += p;
            }
        }
        for n in lo.max(23)..hi {
            if buf[(n - lo) as usize] {
                out.push(n);
                if out.len() == chunk {
                    f(&out)?;
                    out.clear();
                }
            }
        }
        lo = hi;
    }
    if !out.is_empty() {
        f(&out)?;
    }
    Ok(())
}

/// Upper bound of the memory one single-threaded sieve of any range uses:
/// one segment, the pre-sieve pattern, the state of the sieving primes up to
/// [`SIEVE_PRIME_LIMIT`] (twice: bucket vectors grow by doubling), and the
/// small sieve that produces them: about 35 MiB.
pub fn memory_bound_bytes() -> usize {
    // pi(2^24) = 1,077,871 sieving primes.
    SEGMENT_BYTES + PATTERN_BYTES + 2 * 1_077_871 * std::mem::size_of::<Sieving>() + MAX_PRIMES_PER_PASS * 8 + (1 << 18) + 6542 * 8
}

/// Sieving primes above this bound are not kept: candidates that survive
/// sieving by the primes up to it and exceed its square are tested with the
/// deterministic Miller-Rabin test instead (ranges above 2^48 only).
pub const SIEVE_PRIME_LIMIT: u64 = 1 << 24;

/// Sieves [lo, hi] (inclusive, lo >= 7) and calls `f(base, seg)` for each
/// segment, where bit i of byte k of `seg` says whether base + 30k + WHEEL[i]
/// is prime. Bits outside [lo, hi] in the first and last segments are
/// meaningless: callers mask them. 2, 3, 5 are never represented.
pub(crate) fn sieve_segments(lo: u64, hi: u64, ctl: &Control, mut f: impl FnMut(u64, &[u8])) -> Result<(), Stop> {
    let base = lo - lo % 30;
    let total_bytes = hi / 30 - base / 30 + 1;
    let sqrt_hi = isqrt(hi);
    let limit = sqrt_hi.min(SIEVE_PRIME_LIMIT);
    // Values up to limit^2 are decided by the sieve alone.
    let proven_below = limit.saturating_mul(limit).saturating_add(1);
    let needs_test = sqrt_hi > SIEVE_PRIME_LIMIT;
    let pat = pattern();
    let mut seg = vec![0u8; segment_bytes(hi)];
    // Primes stepping less than a segment per wheel turn cross every segment;
    // larger ones hit a segment only now and then and wait in a ring of
    // buckets, one per upcoming segment (a bucket sieve).
    let seg_bytes = segment_bytes(hi) as u64;
    let ring = (limit / seg_bytes + 2) as usize;
    let mut small: Vec<Sieving> = Vec::new();
    let mut buckets: Vec<Vec<Sieving>> = vec![Vec::new(); ring];
    sieving_primes(limit, MAX_PRIMES_PER_PASS, |chunk| {
        for &p in chunk {
            let s = Sieving::new(p, lo, base);
            if p < seg_bytes {
                small.push(s);
            } else if s.next < total_bytes {
                buckets[((s.next / seg_bytes) % ring as u64) as usize].push(s);
            }
        }
        Ok(())
    })?;
    let mut seg_start = 0u64;
    while seg_start < total_bytes {
        ctl.check()?;
        let len = (total_bytes - seg_start).min(seg_bytes) as usize;
        let seg = &mut seg[..len];
        // pre-sieve: copy the pattern from the absolute byte index
        let abs = base / 30 + seg_start;
        let mut k = (abs % PATTERN_BYTES as u64) as usize;
        let mut filled = 0;
        while filled < len {
            let n = (len - filled).min(PATTERN_BYTES - k);
            seg[filled..filled + n].copy_from_slice(&pat[k..k + n]);
            filled += n;
            k = 0;
        }
        for s in small.iter_mut() {
            s.cross(seg, seg_start);
        }
        // Take this segment's bucket whole: big primes advance only a slot or
        // two per hit, so a bucket holds up to half of them at times, and
        // keeping every bucket's high-water capacity would cost ring times
        // their memory. Fresh vectors keep the total near twice the entries.
        let slot = ((seg_start / seg_bytes) % ring as u64) as usize;
        for mut s in std::mem::take(&mut buckets[slot]) {
            s.cross(seg, seg_start);
            if s.next < total_bytes {
                buckets[((s.next / seg_bytes) % ring as u64) as usize].push(s);
            }
        }
        // the pre-sieve removed 7..19 themselves: restore them; 1 is not prime
        if abs == 0 {
            for &p in &PRESIEVED {
                seg[(p / 30) as usize] |= 1 << BIT_OF[(p % 30) as usize];
            }
            seg[0] &= !1;
        }
        let seg_base = base + 30 * seg_start;
        if needs_test {
            for (k, b) in seg.iter_mut().enumerate() {
                let mut bits = *b;
                while bits != 0 {
                    let i = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    if let Some(v) = (seg_base + 30 * k as u64).checked_add(WHEEL[i]) {
                        if v >= proven_below && v >= lo && v <= hi && !crate::factor::small::is_prime_u64(v) {
                            *b &= !(1 << i);
                        }
                    }
                }
            }
        }
        f(seg_base, seg);
        seg_start += len as u64;
    }
    Ok(())
}

pub fn isqrt(n: u64) -> u64 {
    crate::factor::small::isqrt(n)
}

/// Bit mask of the residues of byte `b` (covering [b, b + 30)) that lie in [lo, hi].
#[inline]
pub(crate) fn range_mask(byte_base: u64, lo: u64, hi: u64) -> u8 {
    let mut m = 0u8;
    for (i, &w) in WHEEL.iter().enumerate() {
        if byte_base.checked_add(w).is_some_and(|v| v >= lo && v <= hi) {
            m |= 1 << i;
        }
    }
    m
}

fn small_primes_in(lo: u64, hi: u64) -> impl Iterator<Item = u64> {
    [2u64, 3, 5].into_iter().filter(move |&p| p >= lo && p <= hi)
}

/// Counts the primes in [lo, hi] (both inclusive) on the calling thread.
pub fn count(lo: u64, hi: u64, ctl: &Control) -> Result<u64, Stop> {
    if lo > hi {
        return Ok(0);
    }
    let mut total = small_primes_in(lo, hi).count() as u64;
    let lo7 = lo.max(7);
    if lo7 > hi {
        return Ok(total);
    }
    sieve_segments(lo7, hi, ctl, |seg_base, seg| {
        let seg_end = seg_base.saturating_add(30 * seg.len() as u64 - 1);
        if seg_base >= lo7 && seg_end <= hi {
            total += popcount(seg);
        } else {
            for (k, &b) in seg.iter().enumerate() {
                let bb = seg_base + 30 * k as u64;
                let mut b = b;
                if bb < lo7 || bb.checked_add(29).is_none_or(|e| e > hi) {
                    b &= range_mask(bb, lo7, hi);
                }
                total += b.count_ones() as u64;
            }
        }
    })?;
    Ok(total)
}

fn popcount(seg: &[u8]) -> u64 {
    let words = seg.chunks_exact(8);
    let tail: u64 = words.remainder().iter().map(|b| b.count_ones() as u64).sum();
    words.map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])).count_ones() as u64).sum::<u64>() + tail
}

/// Counts the primes in [lo, hi] on the rayon pool, in `pieces` pieces,
/// reporting progress (the fraction of the width done) as pieces finish.
pub fn count_parallel(lo: u64, hi: u64, pieces: usize, ctl: &Control) -> Result<u64, Stop> {
    if lo > hi {
        return Ok(0);
    }
    let pieces = pieces.max(1) as u64;
    let width = hi - lo;
    let step = (width / pieces).max(1);
    let bounds: Vec<(u64, u64)> = (0..pieces)
        .map(|i| {
            let a = lo.saturating_add(i.saturating_mul(step));
            let b = if i + 1 == pieces { hi } else { a.saturating_add(step - 1).min(hi) };
            (a, b)
        })
        .filter(|(a, b)| a <= b && *a <= hi)
        .collect();
    let tally = crate::control::Tally::new(ctl, width as f64 + 1.0);
    bounds
        .into_par_iter()
        .map(|(a, b)| {
            let n = count(a, b, ctl)?;
            tally.add((b - a + 1) as f64);
            Ok(n)
        })
        .try_reduce(|| 0, |x, y| Ok(x + y))
}

/// Calls `f` with the primes in [lo, hi] in ascending order, in slices of at
/// most one segment's worth (about 50,000 primes).
pub fn for_each_prime(lo: u64, hi: u64, ctl: &Control, mut f: impl FnMut(&[u64])) -> Result<(), Stop> {
    if lo > hi {
        return Ok(());
    }
    let small: Vec<u64> = small_primes_in(lo, hi).collect();
    if !small.is_empty() {
        f(&small);
    }
    let lo7 = lo.max(7);
    if lo7 > hi {
        return Ok(());
    }
    let mut buf: Vec<u64> = Vec::with_capacity(segment_bytes(hi) * 8 / 3);
    sieve_segments(lo7, hi, ctl, |seg_base, seg| {
        buf.clear();
        for (k, &b) in seg.iter().enumerate() {
            let mut b = b;
            if b == 0 {
                continue;
            }
            let bb = seg_base + 30 * k as u64;
            if bb < lo7 || bb.checked_add(29).is_none_or(|e| e > hi) {
                b &= range_mask(bb, lo7, hi);
            }
            while b != 0 {
                let i = b.trailing_zeros() as usize;
                buf.push(bb + WHEEL[i]);
                b &= b - 1;
            }
        }
        if !buf.is_empty() {
            f(&buf);
        }
    })
}

/// Compact storage of prime lists: each chunk keeps its first prime and the
/// gaps to the following ones as LEB128 varints (one byte per gap below 128,
/// which covers every gap below 1,300,000 and most above).
pub mod codec {
    /// Primes per stored chunk.
    pub const CHUNK_PRIMES: usize = 65_536;

    /// Encodes ascending primes: (first, gaps).
    pub fn encode(primes: &[u64]) -> (u64, Vec<u8>) {
        let first = primes.first().copied().unwrap_or(0);
        let mut out = Vec::with_capacity(primes.len() + primes.len() / 8);
        for w in primes.windows(2) {
            let mut gap = w[1] - w[0];
            loop {
                let byte = (gap & 0x7f) as u8;
                gap >>= 7;
                if gap == 0 {
                    out.push(byte);
                    break;
                }
                out.push(byte | 0x80);
            }
        }
        (first, out)
    }

    /// The primes of a chunk; `None` if the data is corrupt.
    pub fn decode(first: u64, count: usize, data: &[u8]) -> Option<Vec<u64>> {
        let mut out = Vec::with_capacity(count);
        if count == 0 {
            return Some(out);
        }
        out.push(first);
        let mut cur = first;
        let mut gap = 0u64;
        let mut shift = 0u32;
        for &b in data {
            gap |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                cur = cur.checked_add(gap)?;
                out.push(cur);
                gap = 0;
                shift = 0;
            } else {
                shift += 7;
                if shift > 63 {
                    return None;
                }
            }
        }
        (out.len() == count).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factor::small::is_prime_u64;

    #[test]
    fn codec_round_trips_including_large_gaps_and_the_top_of_the_range() {
        for primes in [vec![2u64, 3, 5, 7, 11], vec![u64::MAX - 58], vec![2, 1 << 40, (1 << 40) + 1_000_000, u64::MAX - 58]] {
            let (first, data) = codec::encode(&primes);
            assert_eq!(codec::decode(first, primes.len(), &data), Some(primes.clone()));
        }
        assert_eq!(codec::decode(2, 3, &[1]), None, "count mismatch is detected");
    }

    fn naive(lo: u64, hi: u64) -> Vec<u64> {
        (lo..=hi).filter(|&n| is_prime_u64(n)).collect()
    }

    #[test]
    fn counts_match_known_values_of_pi() {
        let ctl = Control::unlimited();
        for (n, pi) in [(10u64, 4u64), (100, 25), (1000, 168), (10_000, 1229), (100_000, 9592), (1_000_000, 78_498),
                        (10_000_000, 664_579), (100_000_000, 5_761_455)] {
            assert_eq!(count(0, n, &ctl), Ok(pi), "pi({n})");
        }
    }

    #[test]
    fn edge_cases() {
        let ctl = Control::unlimited();
        assert_eq!(count(0, 0, &ctl), Ok(0));
        assert_eq!(count(0, 1, &ctl), Ok(0));
        assert_eq!(count(1, 1, &ctl), Ok(0));
        assert_eq!(count(2, 2, &ctl), Ok(1));
        assert_eq!(count(0, 2, &ctl), Ok(1));
        assert_eq!(count(7, 7, &ctl), Ok(1));
        assert_eq!(count(9, 9, &ctl), Ok(0));
        assert_eq!(count(u64::MAX, u64::MAX, &ctl), Ok(0));
        // the largest 64-bit prime is 2^64 - 59
        assert_eq!(count(u64::MAX - 58, u64::MAX, &ctl), Ok(1));
        assert_eq!(count(u64::MAX - 59, u64::MAX - 59, &ctl), Ok(0));
        let mut got = Vec::new();
        for_each_prime(u64::MAX - 1000, u64::MAX, &ctl, |s| got.extend_from_slice(s)).expect("ok");
        assert_eq!(got, (u64::MAX - 1000..=u64::MAX).filter(|&n| is_prime_u64(n)).collect::<Vec<_>>());
    }

    #[test]
    fn lists_match_naive_on_random_small_ranges() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let ctl = Control::unlimited();
        for _ in 0..200 {
            let lo = match rng.gen_range(0..3) {
                0 => rng.gen_range(0..1000),
                1 => rng.gen_range(0..10_000_000),
                _ => rng.gen_range(0..u64::MAX - 100_000),
            };
            let hi = lo + rng.gen_range(0..50_000);
            let mut got = Vec::new();
            for_each_prime(lo, hi, &ctl, |s| got.extend_from_slice(s)).expect("ok");
            assert_eq!(got, naive(lo, hi), "[{lo}, {hi}]");
            assert_eq!(count(lo, hi, &ctl), Ok(got.len() as u64));
        }
    }

    #[test]
    fn parallel_count_equals_serial_count() {
        let ctl = Control::unlimited();
        assert_eq!(count_parallel(1_000_000, 30_000_000, 7, &ctl), count(1_000_000, 30_000_000, &ctl));
    }

    #[test]
    fn the_stated_memory_bound_is_about_35_mib() {
        assert_eq!(std::mem::size_of::<Sieving>(), 16);
        let mib = memory_bound_bytes() as f64 / (1024.0 * 1024.0);
        assert!((34.0..37.0).contains(&mib), "{mib}");
    }

    #[test]
    fn a_cancelled_sieve_stops() {
        let ctl = Control::unlimited();
        ctl.cancel();
        assert_eq!(count(0, 1 << 40, &ctl), Err(Stop::Cancelled));
    }
}
