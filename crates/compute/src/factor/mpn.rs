//! Montgomery arithmetic modulo an odd multi-precision `n` on fixed-size limb
//! arrays (`L` 64-bit limbs, little-endian): the inner loop of ECM on numbers
//! above 128 bits. Values are `[u64; L]` on the stack, fully reduced (`< n`);
//! no operation allocates.

use num_bigint::BigUint;
use num_traits::{One, Zero};

pub type Limbs<const L: usize> = [u64; L];

/// The widest [`MontN`]: 1,024 bits.
pub const MAX_LIMBS: usize = 16;

/// Arithmetic modulo an odd `n` on one value ([`MontN`]) or on lanes of
/// values side by side (`super::mpv::MontV`): what ECM's curve formulas are
/// written on. Elements are in Montgomery form and fully reduced.
pub trait Field {
    type E: Copy;
    fn modulus(&self) -> &BigUint;
    fn one(&self) -> Self::E;
    fn zero(&self) -> Self::E;
    fn of_u64(&self, v: u64) -> Self::E;
    fn mul(&self, a: &Self::E, b: &Self::E) -> Self::E;
    fn sqr(&self, a: &Self::E) -> Self::E;
    fn add(&self, a: &Self::E, b: &Self::E) -> Self::E;
    fn sub(&self, a: &Self::E, b: &Self::E) -> Self::E;
    /// `a^-1`; else `Err(g)` with `g` a divisor of `n` above 1: a proper one
    /// found in some lane, or `n` when no lane is left with an inverse.
    fn inv(&self, a: &Self::E) -> Result<Self::E, BigUint>;
    /// A divisor of `n` other than 1 and `n` that `gcd(a, n)` gives in some
    /// lane.
    fn factor_in(&self, a: &Self::E) -> Option<BigUint>;

    /// Inverts every element of `xs` in place with one inversion (Montgomery's
    /// trick: three multiplications per element); `Err` as [`Field::inv`]
    /// says of their product.
    fn batch_inv(&self, xs: &mut [Self::E], scratch: &mut Vec<Self::E>) -> Result<(), BigUint> {
        scratch.clear();
        let mut acc = self.one();
        for x in xs.iter() {
            scratch.push(acc);
            acc = self.mul(&acc, x);
        }
        let mut inv = self.inv(&acc)?;
        for (x, before) in xs.iter_mut().zip(scratch.iter()).rev() {
            let xi = self.mul(&inv, before);
            inv = self.mul(&inv, x);
            *x = xi;
        }
        Ok(())
    }
}

/// A divisor of `n` other than 1 and `n`, if `g` is one.
pub fn proper(g: BigUint, n: &BigUint) -> Option<BigUint> {
    (!g.is_one() && &g != n).then_some(g)
}

/// Arithmetic modulo an odd `n < 2^(64 L)` in Montgomery form (`R = 2^(64 L)`).
#[derive(Debug, Clone)]
pub struct MontN<const L: usize> {
    n: Limbs<L>,
    /// `-n^-1 mod 2^64`.
    ninv: u64,
    /// `R mod n`: 1 in Montgomery form.
    one: Limbs<L>,
    /// `R^2 mod n`, to enter Montgomery form.
    r2: Limbs<L>,
    modulus: BigUint,
}

/// The limbs of `v` (`v < 2^(64 L)`).
fn limbs_of<const L: usize>(v: &BigUint) -> Limbs<L> {
    let mut out = [0u64; L];
    for (o, d) in out.iter_mut().zip(v.iter_u64_digits()) {
        *o = d;
    }
    out
}

fn big_of<const L: usize>(a: &Limbs<L>) -> BigUint {
    BigUint::from_slice(&a.iter().flat_map(|&w| [w as u32, (w >> 32) as u32]).collect::<Vec<u32>>())
}

/// `a >= b`.
#[inline(always)]
fn geq<const L: usize>(a: &Limbs<L>, b: &Limbs<L>) -> bool {
    for i in (0..L).rev() {
        if a[i] != b[i] {
            return a[i] > b[i];
        }
    }
    true
}

/// `a - b` and the borrow out.
#[inline(always)]
fn sub_borrow<const L: usize>(a: &Limbs<L>, b: &Limbs<L>) -> (Limbs<L>, bool) {
    let mut out = [0u64; L];
    let mut borrow = false;
    for i in 0..L {
        let (d, b1) = a[i].overflowing_sub(b[i]);
        let (d, b2) = d.overflowing_sub(borrow as u64);
        out[i] = d;
        borrow = b1 | b2;
    }
    (out, borrow)
}

/// `a + b` and the carry out.
#[inline(always)]
fn add_carry<const L: usize>(a: &Limbs<L>, b: &Limbs<L>) -> (Limbs<L>, bool) {
    let mut out = [0u64; L];
    let mut carry = false;
    for i in 0..L {
        let (s, c1) = a[i].overflowing_add(b[i]);
        let (s, c2) = s.overflowing_add(carry as u64);
        out[i] = s;
        carry = c1 | c2;
    }
    (out, carry)
}

impl<const L: usize> MontN<L> {
    /// None unless `n` is odd, above 1 and fits `L` limbs.
    pub fn new(n: &BigUint) -> Option<Self> {
        if n.bits() > 64 * L as u64 || !n.bit(0) || n.bits() < 2 {
            return None;
        }
        let nl = limbs_of::<L>(n);
        let mut inv = nl[0]; // correct to 3 bits; each Newton step doubles that
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(nl[0].wrapping_mul(inv)));
        }
        let r = BigUint::from(1u32) << (64 * L);
        Some(Self { n: nl, ninv: inv.wrapping_neg(), one: limbs_of(&(&r % n)), r2: limbs_of(&((&r * &r) % n)), modulus: n.clone() })
    }

    /// `v mod n` in Montgomery form.
    pub fn to_mont(&self, v: &BigUint) -> Limbs<L> {
        let reduced = if v < &self.modulus { limbs_of(v) } else { limbs_of(&(v % &self.modulus)) };
        self.mul(&reduced, &self.r2)
    }

    /// The plain value of `a` (out of Montgomery form).
    pub fn to_big(&self, a: &Limbs<L>) -> BigUint {
        let mut unit = [0u64; L];
        unit[0] = 1;
        big_of(&self.mul(a, &unit))
    }

    /// `gcd(a, n)` (the Montgomery factor `R` is prime to `n`).
    pub fn gcd(&self, a: &Limbs<L>) -> BigUint {
        let v = big_of(a);
        if v.is_zero() {
            return self.modulus.clone();
        }
        num_integer::Integer::gcd(&v, &self.modulus)
    }
}

impl<const L: usize> Field for MontN<L> {
    type E = Limbs<L>;

    fn modulus(&self) -> &BigUint {
        &self.modulus
    }

    #[inline(always)]
    fn one(&self) -> Limbs<L> {
        self.one
    }

    #[inline(always)]
    fn zero(&self) -> Limbs<L> {
        [0; L]
    }

    fn of_u64(&self, v: u64) -> Limbs<L> {
        self.to_mont(&BigUint::from(v))
    }

    fn inv(&self, a: &Limbs<L>) -> Result<Limbs<L>, BigUint> {
        let v = self.to_big(a);
        match v.modinv(&self.modulus) {
            Some(i) => Ok(self.to_mont(&i)),
            None => Err(self.gcd(a)),
        }
    }

    fn factor_in(&self, a: &Limbs<L>) -> Option<BigUint> {
        proper(self.gcd(a), &self.modulus)
    }

    /// `a b / R mod n` (coarsely integrated operand scanning).
    #[inline(always)]
    fn mul(&self, a: &Limbs<L>, b: &Limbs<L>) -> Limbs<L> {
        let n = &self.n;
        let mut t = [0u64; L];
        let mut t_hi: u64 = 0;
        for &bi in b.iter() {
            let mut c: u64 = 0;
            for j in 0..L {
                let s = t[j] as u128 + a[j] as u128 * bi as u128 + c as u128;
                t[j] = s as u64;
                c = (s >> 64) as u64;
            }
            let s = t_hi as u128 + c as u128;
            let top = s as u64;
            let top_carry = (s >> 64) as u64;
            let m = t[0].wrapping_mul(self.ninv);
            let s = t[0] as u128 + m as u128 * n[0] as u128;
            let mut c = (s >> 64) as u64;
            for j in 1..L {
                let s = t[j] as u128 + m as u128 * n[j] as u128 + c as u128;
                t[j - 1] = s as u64;
                c = (s >> 64) as u64;
            }
            let s = top as u128 + c as u128;
            t[L - 1] = s as u64;
            t_hi = top_carry + (s >> 64) as u64;
        }
        if t_hi != 0 || geq(&t, n) {
            sub_borrow(&t, n).0
        } else {
            t
        }
    }

    /// `a^2 / R mod n`. From 8 to 13 limbs: the full square first, each cross
    /// product once and doubled (`L (L - 1) / 2 + L` word products where
    /// [`Self::mul`] takes `L^2`), then Montgomery's reduction (`L^2`). An ECM
    /// curve measured 1-7% faster with it there (7% at 11 limbs) and 1-5%
    /// slower at 6, 7 and 14-16 limbs, where the square is [`Self::mul`]'s.
    #[inline(always)]
    fn sqr(&self, a: &Limbs<L>) -> Limbs<L> {
        const { assert!(L <= MAX_LIMBS) };
        if !(8..=13).contains(&L) {
            return self.mul(a, a);
        }
        let mut t = [0u64; 2 * MAX_LIMBS];
        for i in 0..L {
            let mut c: u64 = 0;
            for j in i + 1..L {
                let s = t[i + j] as u128 + a[i] as u128 * a[j] as u128 + c as u128;
                t[i + j] = s as u64;
                c = (s >> 64) as u64;
            }
            t[i + L] = c;
        }
        // Doubled, plus the squares on the diagonal.
        let mut top = 0u64;
        let mut c: u64 = 0;
        for i in 0..L {
            let (lo, hi) = (t[2 * i], t[2 * i + 1]);
            let d = a[i] as u128 * a[i] as u128;
            let s = ((lo << 1 | top) as u128) + (d as u64) as u128 + c as u128;
            t[2 * i] = s as u64;
            let s = ((hi << 1 | lo >> 63) as u128) + (d >> 64) + (s >> 64);
            t[2 * i + 1] = s as u64;
            c = (s >> 64) as u64;
            top = hi >> 63;
        }
        // Reduction: the word above t[i + L] is carried in `extra`.
        let n = &self.n;
        let mut extra: u64 = 0;
        for i in 0..L {
            let m = t[i].wrapping_mul(self.ninv);
            let mut c: u64 = 0;
            for j in 0..L {
                let s = t[i + j] as u128 + m as u128 * n[j] as u128 + c as u128;
                t[i + j] = s as u64;
                c = (s >> 64) as u64;
            }
            let s = t[i + L] as u128 + c as u128 + extra as u128;
            t[i + L] = s as u64;
            extra = (s >> 64) as u64;
        }
        let mut out = [0u64; L];
        out.copy_from_slice(&t[L..2 * L]);
        if extra != 0 || geq(&out, n) {
            sub_borrow(&out, n).0
        } else {
            out
        }
    }

    #[inline(always)]
    fn add(&self, a: &Limbs<L>, b: &Limbs<L>) -> Limbs<L> {
        let (s, carry) = add_carry(a, b);
        if carry || geq(&s, &self.n) {
            sub_borrow(&s, &self.n).0
        } else {
            s
        }
    }

    #[inline(always)]
    fn sub(&self, a: &Limbs<L>, b: &Limbs<L>) -> Limbs<L> {
        let (d, borrow) = sub_borrow(a, b);
        if borrow {
            add_carry(&d, &self.n).0
        } else {
            d
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::RandBigInt;
    use num_traits::One;
    use rand::SeedableRng;

    fn check<const L: usize>(n: &BigUint, rng: &mut rand::rngs::StdRng) {
        let m = MontN::<L>::new(n).expect("odd, fits");
        for _ in 0..200 {
            let a = rng.gen_biguint_below(n);
            let b = rng.gen_biguint_below(n);
            let (ma, mb) = (m.to_mont(&a), m.to_mont(&b));
            assert_eq!(m.to_big(&m.mul(&ma, &mb)), (&a * &b) % n);
            assert_eq!(m.to_big(&m.sqr(&ma)), (&a * &a) % n);
            assert_eq!(m.to_big(&m.add(&ma, &mb)), (&a + &b) % n);
            assert_eq!(m.to_big(&m.sub(&ma, &mb)), (n + &a - &b) % n);
        }
        // Long chains stay right.
        let (mut x, mut want) = (m.of_u64(3), BigUint::from(3u32));
        let y = rng.gen_biguint_below(n);
        let my = m.to_mont(&y);
        for _ in 0..2000 {
            x = m.sub(&m.add(&m.sqr(&x), &my), &m.mul(&x, &my));
            want = (&want * &want + &y + n - &want * &y % n) % n;
        }
        assert_eq!(m.to_big(&x), want);
        let mut xs: Vec<Limbs<L>> = (1..40u64).filter(|&v| num_integer::Integer::gcd(&BigUint::from(v), n).is_one()).map(|v| m.of_u64(v * v)).collect();
        let orig = xs.clone();
        m.batch_inv(&mut xs, &mut Vec::new()).expect("n is prime to small values");
        for (x, o) in xs.iter().zip(&orig) {
            assert_eq!(m.mul(x, o), m.one());
        }
    }

    #[test]
    fn arithmetic_matches_biguint_at_every_width() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for bits in [129u64, 190, 255, 256, 333, 500, 640, 665, 830, 1000, 1024] {
            let n = rng.gen_biguint(bits) | BigUint::from(1u32) | (BigUint::from(1u32) << (bits - 1));
            match bits.div_ceil(64) {
                3 => check::<3>(&n, &mut rng),
                4 => check::<4>(&n, &mut rng),
                6 => check::<6>(&n, &mut rng),
                8 => check::<8>(&n, &mut rng),
                10 => check::<10>(&n, &mut rng),
                11 => check::<11>(&n, &mut rng),
                13 => check::<13>(&n, &mut rng),
                16 => check::<16>(&n, &mut rng),
                other => panic!("no width {other} in the test"),
            }
        }
    }

    #[test]
    fn a_shared_factor_blocks_the_inverse_and_names_itself() {
        let p = BigUint::from(1_000_000_007u64);
        let n = &p * BigUint::from(340_282_366_920_938_463_463_374_607_431_768_211_297u128);
        let m = MontN::<3>::new(&n).expect("odd");
        let x = m.of_u64(3 * 1_000_000_007);
        assert_eq!(m.inv(&x), Err(p));
    }
}
