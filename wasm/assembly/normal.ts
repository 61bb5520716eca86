// Upper tail of the standard normal distribution, in log space where it matters.
//
// tailRatio(x) = Q(x) * exp(x^2 / 2) for x >= 0, where Q(x) = 1 - Phi(x). Below 7.07 it is Hart's
// rational approximation (algorithm 5666, as given by G. West, "Better approximations to
// cumulative normal functions", 2005); above, a continued fraction that only gets more accurate as
// x grows. Both are accurate to double precision, and neither underflows: phi = -log10 Q(z) is
// computed as (z^2/2 - ln tailRatio(z)) / ln 10, so it keeps growing without bound (no clamp).

const INV_LN10: f64 = 0.4342944819032518;
const SQRT_2PI: f64 = 2.5066282746310002;

function tailRatio(x: f64): f64 {
  if (x < 7.07106781186547) {
    let num = 3.52624965998911e-2 * x + 0.700383064443688;
    num = num * x + 6.37396220353165;
    num = num * x + 33.912866078383;
    num = num * x + 112.079291497871;
    num = num * x + 221.213596169931;
    num = num * x + 220.206867912376;
    let den = 8.83883476483184e-2 * x + 1.75566716318264;
    den = den * x + 16.064177579207;
    den = den * x + 86.7807322029461;
    den = den * x + 296.564248779674;
    den = den * x + 637.333633378831;
    den = den * x + 793.826512519948;
    den = den * x + 440.413735824752;
    return num / den;
  }
  let cf = x + 0.65;
  cf = x + 4.0 / cf;
  cf = x + 3.0 / cf;
  cf = x + 2.0 / cf;
  cf = x + 1.0 / cf;
  return 1.0 / (cf * SQRT_2PI);
}

/** phi = -log10(Q(z)): the suspicion level for a standardized delay z. NaN in, NaN out. */
export function phiOfZ(z: f64): f64 {
  if (z >= 0.0) {
    return (0.5 * z * z - Math.log(tailRatio(z))) * INV_LN10;
  }
  // Q(z) = 1 - Q(-z); log1p keeps phi accurate (relative) when it is tiny.
  const q = Math.exp(-0.5 * z * z) * tailRatio(-z);
  return -Math.log1p(-q) * INV_LN10;
}

/** Exposed for tests: -log10 of the upper tail at z. */
export function norm_phi(z: f64): f64 {
  return phiOfZ(z);
}
