\\ How often ECM's curves find a 25-digit prime: Suyama's curves (the
\\ parametrisation before Edwards) against the Z/12 Edwards curves of
\\ crates/compute/src/factor/ecm_mp.rs, by the order of the starting point
\\ modulo p, counted by PARI. A curve finds p at (B1, B2) when that order is
\\ a product of prime powers up to B1 and at most one prime in (B1, B2].
\\   gp -q scripts/ecm-curves.gp      (about 10 minutes on one core)

\\ Suyama's sigma: the order of (x0 : 1) on B y^2 = x^3 + A x^2 + x, B = x0^3 + A x0^2 + x0.
suyama(p, s) = {
  my(u = Mod(s^2 - 5, p), v = Mod(4*s, p), x0, A, B);
  if (u == 0 || v == 0 || v == u || 3*u + v == 0, return(0));
  x0 = u^3 / v^3; A = (v - u)^3 * (3*u + v) / (4 * u^3 * v) - 2;
  B = x0^3 + A*x0^2 + x0; if (B == 0, return(0));
  ellorder(ellinit([0, A/B, 0, 1/B^2, 0]), [x0/B, 1/B]);
}

\\ The Z/12 Edwards curve of [k](-2, 4) on v^2 = u^3 - 12u, as ecm_mp.rs makes
\\ it, through its Montgomery form to Weierstrass.
z12(p, k) = {
  my(P = ellmul(ellinit([0, 0, 0, -12, 0], p), [-2, 4], k), u, v, d1, d2, w, x, y, d, A, B, uM);
  if (P == [0], return(0));
  iferr(
    u = P[1]; v = P[2]; d1 = v^2 + 12*u^2; d2 = v^2 - 4*u^2; w = u^2 * (u^2 + 12)^2;
    x = 8 * u^2 * v * (u^2 + 12) / ((v^2 + 4*u^2) * d1); y = (w - d1*d2) / (w + d1*d2);
    d = (x^2 + y^2 - 1) / (x^2 * y^2); A = 2*(1 + d)/(1 - d); B = 4/(1 - d); uM = (1 + y)/(1 - y);
    ellorder(ellinit([0, A/B, 0, 1/B^2, 0]), [uM/B, uM/(x*B)]),
    e, 0);
}

\\ [smallest B1 that holds every prime power but the largest prime, that prime]
need(o) = {
  my(f = factor(o), n = #f~, b1 = 1);
  if (f[n, 2] > 1, for (i = 1, n, b1 = max(b1, f[i, 1]^f[i, 2])); return([b1, oo]));
  for (i = 1, n - 1, b1 = max(b1, f[i, 1]^f[i, 2]));
  [b1, f[n, 1]];
}

{
  my(primes = [], curves = 400, b1s = [11000, 50000, 100000, 250000], mults = [50, 100, 1000],
     found = vector(2, f, matrix(#b1s, #mults)), tried = [0, 0]);
  setrand(2026);
  while (#primes < 30, primes = concat(primes, nextprime(10^24 + random(9 * 10^24))));
  for (i = 1, #primes, my(p = primes[i]);
    for (c = 0, curves - 1,
      my(orders = [suyama(p, 6 + 2^41 + c), z12(p, c + 2)]);
      for (f = 1, 2, if (orders[f], tried[f]++; my(w = need(orders[f]));
        for (b = 1, #b1s, for (m = 1, #mults,
          if (w[1] <= b1s[b] && w[2] <= mults[m] * b1s[b], found[f][b, m]++)))))));
  print(#primes, " primes of 25 digits, ", curves, " curves of each family per prime (", tried, " counted)");
  for (b = 1, #b1s, for (m = 1, #mults,
    printf("B1 = %6d, B2 = %4d B1: Suyama %.3f%%, Z/12 Edwards %.3f%%\n", b1s[b], mults[m],
      100. * found[1][b, m] / tried[1], 100. * found[2][b, m] / tried[2])));
}
