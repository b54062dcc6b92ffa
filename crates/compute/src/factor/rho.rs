//! Pollard's rho with Brent's cycle detection and batched GCDs, generic over
//! the Montgomery word width.

use super::mont::{gcd, Montgomery, Word};
use crate::control::{Control, Stop};

/// Iterations between two checks of the [`Control`].
const CHECK_EVERY: u64 = 1 << 14;
/// Products accumulated before one GCD.
const BATCH: u64 = 128;

pub enum Rho<W> {
    Found(W),
    /// This polynomial gave no factor; try another constant.
    Failed,
    Stopped(Stop),
}

/// Looks for a non-trivial factor of the (odd, composite) modulus of `m` with
/// the polynomial `x^2 + c`.
/// Gives up (`Failed`) after about `max_steps` polynomial evaluations.
pub fn brent<M: Montgomery>(m: &M, c: u64, ctl: Option<&Control>, max_steps: u64) -> Rho<M::W> {
    let n = m.modulus();
    let c = m.to_mont(M::W::from_u64(c));
    let f = |x: M::W| m.add(m.mul(x, x), c);
    let mut y = m.to_mont(M::W::from_u64(2));
    let mut x;
    let mut ys = y;
    let mut q = m.one();
    let mut g = M::W::ONE;
    let mut r: u64 = 1;
    let mut done: u64 = 0;
    let mut next_check = CHECK_EVERY;
    while g == M::W::ONE {
        x = y;
        for _ in 0..r {
            y = f(y);
        }
        let mut k = 0;
        while k < r && g == M::W::ONE {
            ys = y;
            let steps = BATCH.min(r - k);
            for _ in 0..steps {
                y = f(y);
                q = m.mul(q, m.diff(x, y));
            }
            g = gcd(q, n);
            k += steps;
        }
        done += 2 * r;
        if done >= next_check {
            next_check = done + CHECK_EVERY;
            if let Some(ctl) = ctl {
                if let Err(stop) = ctl.check() {
                    return Rho::Stopped(stop);
                }
            }
        }
        r *= 2;
        if r > (1 << 40) || done > max_steps {
            return Rho::Failed;
        }
        // Restore the loop-carried x for the backtrack below.
        if g != M::W::ONE {
            if g == n {
                // The batch overshot: step again one at a time from ys.
                loop {
                    ys = f(ys);
                    g = gcd(m.diff(x, ys), n);
                    if g != M::W::ONE {
                        break;
                    }
                }
            }
            return if g == n { Rho::Failed } else { Rho::Found(g) };
        }
    }
    Rho::Failed
}
