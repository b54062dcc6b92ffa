//! Montgomery arithmetic modulo an odd `n` on 64- and 128-bit words: the inner
//! loop of Pollard-Brent and Miller-Rabin. One generic trait, two widths.

use std::fmt::Debug;

/// An unsigned machine word the kernels work on (`u64` or `u128`).
pub trait Word: Copy + Ord + Eq + Debug + Send + Sync {
    const ZERO: Self;
    const ONE: Self;
    const BITS: u32;
    fn wrapping_sub(self, o: Self) -> Self;
    fn overflowing_add(self, o: Self) -> (Self, bool);
    fn trailing_zeros(self) -> u32;
    fn shr(self, k: u32) -> Self;
    fn from_u64(v: u64) -> Self;
}

macro_rules! impl_word {
    ($t:ty) => {
        impl Word for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            const BITS: u32 = <$t>::BITS;
            #[inline(always)]
            fn wrapping_sub(self, o: Self) -> Self {
                <$t>::wrapping_sub(self, o)
            }
            #[inline(always)]
            fn overflowing_add(self, o: Self) -> (Self, bool) {
                <$t>::overflowing_add(self, o)
            }
            #[inline(always)]
            fn trailing_zeros(self) -> u32 {
                <$t>::trailing_zeros(self)
            }
            #[inline(always)]
            fn shr(self, k: u32) -> Self {
                self >> k
            }
            #[inline(always)]
            fn from_u64(v: u64) -> Self {
                v as $t
            }
        }
    };
}
impl_word!(u64);
impl_word!(u128);

/// Binary GCD.
pub fn gcd<W: Word>(mut a: W, mut b: W) -> W {
    if a == W::ZERO {
        return b;
    }
    if b == W::ZERO {
        return a;
    }
    let shift = (a.trailing_zeros()).min(b.trailing_zeros());
    a = a.shr(a.trailing_zeros());
    loop {
        b = b.shr(b.trailing_zeros());
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        b = b.wrapping_sub(a);
        if b == W::ZERO {
            break;
        }
    }
    // a << shift
    let mut r = a;
    for _ in 0..shift {
        r = r.overflowing_add(r).0;
    }
    r
}

#[inline(always)]
fn abs_diff<W: Word>(a: W, b: W) -> W {
    if a > b {
        a.wrapping_sub(b)
    } else {
        b.wrapping_sub(a)
    }
}

/// Arithmetic in Montgomery form modulo an odd modulus.
pub trait Montgomery: Sync {
    type W: Word;
    fn modulus(&self) -> Self::W;
    /// 1 in Montgomery form.
    fn one(&self) -> Self::W;
    fn to_mont(&self, a: Self::W) -> Self::W;
    fn mul(&self, a: Self::W, b: Self::W) -> Self::W;

    #[inline(always)]
    fn add(&self, a: Self::W, b: Self::W) -> Self::W {
        let n = self.modulus();
        let (s, o) = a.overflowing_add(b);
        if o || s >= n {
            s.wrapping_sub(n)
        } else {
            s
        }
    }

    #[inline(always)]
    fn sub(&self, a: Self::W, b: Self::W) -> Self::W {
        if a >= b {
            a.wrapping_sub(b)
        } else {
            a.wrapping_sub(b).overflowing_add(self.modulus()).0
        }
    }

    /// |a - b|: enough for a gcd with the modulus.
    #[inline(always)]
    fn diff(&self, a: Self::W, b: Self::W) -> Self::W {
        abs_diff(a, b)
    }

    fn pow(&self, mut base: Self::W, mut e: Self::W) -> Self::W {
        let mut acc = self.one();
        while e != Self::W::ZERO {
            if e.trailing_zeros() == 0 {
                acc = self.mul(acc, base);
            }
            base = self.mul(base, base);
            e = e.shr(1);
        }
        acc
    }

    /// Strong probable-prime test of the modulus to `base` (already reduced,
    /// non-zero). `d * 2^s = n - 1` with `d` odd.
    fn sprp(&self, base: Self::W, d: Self::W, s: u32) -> bool {
        let one = self.one();
        let minus_one = self.sub(Self::W::ZERO, one);
        let mut x = self.pow(self.to_mont(base), d);
        if x == one || x == minus_one {
            return true;
        }
        for _ in 1..s {
            x = self.mul(x, x);
            if x == minus_one {
                return true;
            }
            if x == one {
                return false;
            }
        }
        false
    }
}

/// Montgomery arithmetic modulo an odd 64-bit `n`.
#[derive(Debug, Clone, Copy)]
pub struct Mont64 {
    n: u64,
    inv: u64, // n^-1 mod 2^64
    r1: u64,  // 2^64 mod n
    r2: u64,  // 2^128 mod n
}

impl Mont64 {
    pub fn new(n: u64) -> Self {
        debug_assert!(n & 1 == 1 && n > 1);
        let mut inv = n; // correct to 3 bits; each Newton step doubles that
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(n.wrapping_mul(inv)));
        }
        let r1 = ((1u128 << 64) % n as u128) as u64;
        let r2 = ((r1 as u128 * r1 as u128) % n as u128) as u64;
        Self { n, inv, r1, r2 }
    }
}

impl Montgomery for Mont64 {
    type W = u64;
    #[inline(always)]
    fn modulus(&self) -> u64 {
        self.n
    }
    #[inline(always)]
    fn one(&self) -> u64 {
        self.r1
    }
    #[inline(always)]
    fn to_mont(&self, a: u64) -> u64 {
        self.mul(a % self.n, self.r2)
    }
    #[inline(always)]
    fn mul(&self, a: u64, b: u64) -> u64 {
        let t = a as u128 * b as u128;
        let (lo, hi) = (t as u64, (t >> 64) as u64);
        let m = lo.wrapping_mul(self.inv);
        let mn_hi = ((m as u128 * self.n as u128) >> 64) as u64;
        let (r, borrow) = hi.overflowing_sub(mn_hi);
        if borrow {
            r.wrapping_add(self.n)
        } else {
            r
        }
    }
}

#[inline(always)]
fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    let (a0, a1) = (a as u64 as u128, a >> 64);
    let (b0, b1) = (b as u64 as u128, b >> 64);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 as u64 as u128) + (p10 as u64 as u128);
    let lo = (p00 as u64 as u128) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

/// Montgomery arithmetic modulo an odd 128-bit `n`.
#[derive(Debug, Clone, Copy)]
pub struct Mont128 {
    n: u128,
    inv: u128,
    r1: u128,
    r2: u128,
}

impl Mont128 {
    pub fn new(n: u128) -> Self {
        debug_assert!(n & 1 == 1 && n > 1);
        let mut inv = n;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u128.wrapping_sub(n.wrapping_mul(inv)));
        }
        let r1 = (u128::MAX % n + 1) % n;
        let mut m = Self { n, inv, r1, r2: 0 };
        // r2 = r1 * 2^128 mod n, by 128 modular doublings.
        let mut x = r1;
        for _ in 0..128 {
            x = m.add(x, x);
        }
        m.r2 = x;
        m
    }
}

impl Montgomery for Mont128 {
    type W = u128;
    #[inline(always)]
    fn modulus(&self) -> u128 {
        self.n
    }
    #[inline(always)]
    fn one(&self) -> u128 {
        self.r1
    }
    #[inline(always)]
    fn to_mont(&self, a: u128) -> u128 {
        self.mul(a % self.n, self.r2)
    }
    #[inline(always)]
    fn mul(&self, a: u128, b: u128) -> u128 {
        let (hi, lo) = mul_wide(a, b);
        let m = lo.wrapping_mul(self.inv);
        let (mn_hi, _) = mul_wide(m, self.n);
        let (r, borrow) = hi.overflowing_sub(mn_hi);
        if borrow {
            r.wrapping_add(self.n)
        } else {
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mont64_multiplies_like_u128_arithmetic() {
        for &n in &[3u64, 1_000_000_007, u64::MAX, (1 << 63) + 1, 0xffff_ffff_0000_0001] {
            let m = Mont64::new(n);
            for &(a, b) in &[(2u64, 3u64), (n - 1, n - 1), (123_456_789, 987_654_321 % n)] {
                let (a, b) = (a % n, b % n);
                let got = m.mul(m.to_mont(a), m.to_mont(b));
                let want = ((a as u128 * b as u128) % n as u128) as u64;
                assert_eq!(got, m.to_mont(want), "n={n} a={a} b={b}");
            }
        }
    }

    #[test]
    fn mont128_multiplies_like_reference_arithmetic() {
        let n: u128 = (1u128 << 127) - 1;
        let m = Mont128::new(n);
        let a = n - 2;
        // (n-2)^2 = 4 mod n
        assert_eq!(m.mul(m.to_mont(a), m.to_mont(a)), m.to_mont(4));
        let n2: u128 = 340_282_366_920_938_463_463_374_607_431_768_211_297; // 2^128 - 159
        let m2 = Mont128::new(n2);
        assert_eq!(m2.mul(m2.to_mont(n2 - 1), m2.to_mont(n2 - 1)), m2.one());
    }

    #[test]
    fn gcd_matches_euclid() {
        assert_eq!(gcd(12u64, 18), 6);
        assert_eq!(gcd(0u64, 7), 7);
        assert_eq!(gcd(1u128 << 100, 1u128 << 90), 1u128 << 90);
    }
}
