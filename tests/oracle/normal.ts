/**
 * Oracle: -log10 of the standard normal upper tail, in plain TypeScript (reference for the wasm
 * core). Same method as wasm/assembly/normal.ts: Hart's rational approximation (West 2005) below
 * 7.07, a continued fraction above, evaluated in log space.
 *
 * @module
 */

/** Q(x) * exp(x²/2) for x >= 0. */
export function tailRatio(x: number): number {
  if (x < 7.07106781186547) {
    const num = (((((3.52624965998911e-2 * x + 0.700383064443688) * x + 6.37396220353165) * x +
                  33.912866078383) * x + 112.079291497871) * x + 221.213596169931) * x +
      220.206867912376;
    const den = ((((((8.83883476483184e-2 * x + 1.75566716318264) * x + 16.064177579207) * x +
                      86.7807322029461) * x + 296.564248779674) * x + 637.333633378831) * x +
          793.826512519948) * x + 440.413735824752;
    return num / den;
  }
  const cf = x + 1 / (x + 2 / (x + 3 / (x + 4 / (x + 0.65))));
  return 1 / (cf * Math.sqrt(2 * Math.PI));
}

/** phi(z) = -log10(Q(z)). */
export function phiOfZ(z: number): number {
  if (z >= 0) return (0.5 * z * z - Math.log(tailRatio(z))) / Math.LN10;
  const q = Math.exp(-0.5 * z * z) * tailRatio(-z);
  return -Math.log1p(-q) / Math.LN10;
}
