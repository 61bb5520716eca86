/**
 * Bounded interning of decoded member ids, addresses and tags.
 *
 * Every node keeps a record for every member, and each record's strings and tags are decoded
 * afresh from gossip, so N nodes in one process (the simulator) would hold N copies of each.
 * Interning makes records with equal values share one string and one frozen tags object. It is
 * transparent: values are equal, only identity is shared. Each cache is cleared once it exceeds
 * its bound, so a long-running node seeing churn cannot grow it without limit; records created
 * before a clear keep their (still valid) copies.
 *
 * @module
 */
import type { Tags } from "./types.ts";

/** Default bound on each cache's entries; past it the cache is cleared. */
export const INTERN_MAX_ENTRIES = 1_000_000;

let maxEntries = INTERN_MAX_ENTRIES;
const strings = new Map<string, string>();
const tagsByKey = new Map<string, Tags>();
const EMPTY_TAGS: Tags = Object.freeze({});

/** The canonical copy of `s` (equal value, shared identity). */
export function internString(s: string): string {
  const hit = strings.get(s);
  if (hit !== undefined) return hit;
  if (strings.size >= maxEntries) strings.clear();
  strings.set(s, s);
  return s;
}

/**
 * The canonical frozen copy of `tags` (equal entries in the same order, shared identity). Key
 * order is kept in the cache key so re-encoding an interned object gives the same bytes.
 */
export function internTags(tags: Tags): Tags {
  const keys = Object.keys(tags);
  if (keys.length === 0) return Object.isFrozen(tags) ? tags : EMPTY_TAGS;
  // Length-prefixed parts make the key unambiguous whatever the strings contain.
  let key = "";
  for (const k of keys) {
    const v = tags[k];
    key += `${k.length}:${k}${v.length}:${v}`;
  }
  const hit = tagsByKey.get(key);
  if (hit !== undefined) return hit;
  // fromEntries defines own properties, so even a "__proto__" key is copied as data.
  const canonical: Tags = Object.isFrozen(tags)
    ? tags
    : Object.freeze(Object.fromEntries(keys.map((k) => [k, tags[k]])));
  if (tagsByKey.size >= maxEntries) tagsByKey.clear();
  tagsByKey.set(key, canonical);
  return canonical;
}

/** Current entry counts of the caches (for tests and diagnostics). */
export function internStats(): { strings: number; tags: number } {
  return { strings: strings.size, tags: tagsByKey.size };
}

/** Sets the bound (tests) and clears both caches; returns the previous bound. */
export function setInternLimit(limit: number): number {
  const prev = maxEntries;
  maxEntries = Math.max(1, Math.floor(limit));
  strings.clear();
  tagsByKey.clear();
  return prev;
}
