// xoshiro128** (Blackman & Vigna): 32-bit operations only, so the TypeScript oracle reproduces
// every draw exactly with Math.imul. Seeded from TypeScript (splitmix32 of the user's seed).

let s0: u32 = 1;
let s1: u32 = 0;
let s2: u32 = 0;
let s3: u32 = 0;

/** Sets the generator state; an all-zero state is replaced by (1, 0, 0, 0). */
export function prng_seed(a: u32, b: u32, c: u32, d: u32): void {
  s0 = a;
  s1 = b;
  s2 = c;
  s3 = d;
  if ((a | b | c | d) == 0) s0 = 1;
}

/** Stores the generator state at ptr (4 x u32). */
export function prng_save(ptr: usize): void {
  store<u32>(ptr, s0, 0);
  store<u32>(ptr, s1, 4);
  store<u32>(ptr, s2, 8);
  store<u32>(ptr, s3, 12);
}

/** Loads the generator state from ptr (4 x u32). */
export function prng_load(ptr: usize): void {
  s0 = load<u32>(ptr, 0);
  s1 = load<u32>(ptr, 4);
  s2 = load<u32>(ptr, 8);
  s3 = load<u32>(ptr, 12);
}

/** The next 32 random bits. */
export function prng_next(): u32 {
  const result = rotl<u32>(s1 * 5, 7) * 9;
  const t = s1 << 9;
  s2 ^= s0;
  s3 ^= s1;
  s1 ^= s2;
  s0 ^= s3;
  s2 ^= t;
  s3 = rotl<u32>(s3, 11);
  return result;
}

/** A uniform double in [0, 1) with 32 random bits. */
export function rand01(): f64 {
  return <f64> prng_next() * 2.3283064365386963e-10;
}

/** A uniform integer in [0, n) for 0 < n < 2^31 (computed in f64 exactly as the oracle does). */
export function randBelow(n: i32): i32 {
  const i = <i32> Math.floor(<f64> prng_next() * 2.3283064365386963e-10 * <f64> n);
  return i < n ? i : n - 1;
}
