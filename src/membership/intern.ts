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

/**
 * What a member is, apart from its state: id, addresses and tags. Immutable; shared by every
 * member table in the process that holds the same values (see {@linkcode internIdentity}).
 */
export interface MemberIdentity {
  /** Member id. */
  readonly id: string;
  /** Gossip address. */
  readonly gossipAddr: string;
  /** RPC address. */
  readonly rpcAddr: string;
  /** Tags (frozen). */
  readonly tags: Tags;
}

/** The latest identity seen per member id: equal values reuse it. */
const identities = new Map<string, MemberIdentity>();

/**
 * The canonical identity with these values. One entry per id is kept (the latest), which is all
 * sharing needs: tables converge on a member's newest addresses and tags.
 */
export function internIdentity(
  id: string,
  gossipAddr: string,
  rpcAddr: string,
  tags: Tags,
): MemberIdentity {
  const hit = identities.get(id);
  if (
    hit !== undefined && hit.gossipAddr === gossipAddr && hit.rpcAddr === rpcAddr &&
    sameTags(hit.tags, tags)
  ) return hit;
  const identity: MemberIdentity = Object.freeze({
    id: internString(id),
    gossipAddr: internString(gossipAddr),
    rpcAddr: internString(rpcAddr),
    tags: internTags(tags),
  });
  if (identities.size >= maxEntries) identities.clear();
  identities.set(identity.id, identity);
  return identity;
}

/** Whether two tag sets have the same entries (order aside). */
export function sameTags(a: Tags, b: Tags): boolean {
  if (a === b) return true;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (let i = 0; i < ka.length; i++) {
    const k = ka[i];
    if (a[k] !== b[k]) return false;
  }
  return true;
}

/** Current entry counts of the caches (for tests and diagnostics). */
export function internStats(): { strings: number; tags: number; identities: number } {
  return { strings: strings.size, tags: tagsByKey.size, identities: identities.size };
}

/** Sets the bound (tests) and clears both caches; returns the previous bound. */
export function setInternLimit(limit: number): number {
  const prev = maxEntries;
  maxEntries = Math.max(1, Math.floor(limit));
  strings.clear();
  tagsByKey.clear();
  identities.clear();
  return prev;
}
