/**
 * Identity resolution, as Segment's spec defines it: the one place that says whom a message belongs to and which
 * identifiers are one person. The evaluator (with claims it stores), the backtest and discover (with claims they
 * gather while reading) all resolve through these functions, so they cannot disagree. Pure.
 *
 * - A message belongs to its userId when it has one, else to the anonymous visitor of its anonymousId. A user and a
 *   visitor are different kinds of identity: userId `anonymous:x` and anonymousId `x` never meet.
 * - A message with both a userId and an anonymousId claims the visitor for the user; an alias claims its previousId
 *   (an anonymousId or an earlier userId: both) for its userId.
 * - An identifier claimed more than once belongs to its first claim: the earliest message time, ties broken by the
 *   smaller messageId, so the result does not depend on the order messages arrive in.
 * - Claims chain (visitor -> user A, alias A -> B: the visitor's and A's events are B's). A chain that loops ignores
 *   the latest claim of the loop, whose claimant then keeps its own identity.
 */

export type IdentityKind = 'user' | 'visitor';

export interface Identity {
  kind: IdentityKind;
  id: string;
}

/** One identifier claimed for a user by one message. */
export interface Claim {
  from: Identity;
  /** The claiming userId. */
  to: string;
  /** The claiming message's time (ISO 8601) and id: what orders competing claims. */
  at: string;
  messageId: string;
  /**
   * When its claimant took the identity, from no one or from another user (ISO 8601: the storing run's time), as
   * read back; an earlier claim of the same user replacing it keeps it. A user saved before then may not have counted
   * the identity's events of meanwhile: another user held it (mergedEvents). Absent on a claim not stored yet, and on
   * one stored by a version that did not keep it.
   */
  storedAt?: string;
}

/** The fields of a message that say whom it belongs to. */
export interface IdentifiedMessage {
  type: string;
  userId?: unknown;
  anonymousId?: unknown;
  previousId?: unknown;
  timestamp: string;
  messageId: string;
}

/** A key for maps of identities: the kind comes first and never holds a colon, so no two identities share one. */
export const identityKey = (identity: Identity): string => `${identity.kind}:${identity.id}`;

export function parseIdentityKey(key: string): Identity {
  const colon = key.indexOf(':');
  const kind = key.slice(0, colon);
  if (kind !== 'user' && kind !== 'visitor') throw new Error(`identity key ${JSON.stringify(key)}: the kind must be user or visitor`);
  return { kind, id: key.slice(colon + 1) };
}

const idOf = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/** Whom a message belongs to (validation guarantees it has a userId or an anonymousId). */
export function identityOf(message: Pick<IdentifiedMessage, 'userId' | 'anonymousId'>): Identity {
  const userId = idOf(message.userId);
  return userId !== undefined ? { kind: 'user', id: userId } : { kind: 'visitor', id: idOf(message.anonymousId) ?? '' };
}

/** The claims a message makes: its visitor for its user, and an alias's previousId (as a visitor and as a user). */
export function claimsOf(message: IdentifiedMessage): Claim[] {
  const userId = idOf(message.userId);
  if (userId === undefined) return [];
  const claims: Claim[] = [];
  const anonymousId = idOf(message.anonymousId);
  if (anonymousId !== undefined) claims.push(claimOf({ kind: 'visitor', id: anonymousId }, userId, message));
  const previousId = idOf(message.previousId);
  if (message.type === 'alias' && previousId !== undefined) {
    if (previousId !== anonymousId) claims.push(claimOf({ kind: 'visitor', id: previousId }, userId, message));
    if (previousId !== userId) claims.push(claimOf({ kind: 'user', id: previousId }, userId, message));
  }
  return claims;
}

/** A function of its own, not a closure in claimsOf: that runs for every message a backtest reads. */
const claimOf = (from: Identity, to: string, message: IdentifiedMessage): Claim => ({ from, to, at: message.timestamp, messageId: message.messageId });

/**
 * Whether claim `a` comes before claim `b`: the earlier message, ties by messageId, then by claimant, each compared as
 * DynamoDB compares them in the claim's condition (by UTF-8 bytes), so that the stored claim and this order agree.
 */
export function claimsBefore(a: Pick<Claim, 'at' | 'messageId' | 'to'>, b: Pick<Claim, 'at' | 'messageId' | 'to'>): boolean {
  if (a.at !== b.at) return a.at < b.at;
  if (a.messageId !== b.messageId) return utf8Before(a.messageId, b.messageId);
  return utf8Before(a.to, b.to);
}

const isSurrogate = (unit: number) => unit >= 0xd800 && unit <= 0xdfff;

/**
 * Whether `a` sorts before `b` by UTF-8 bytes, that is by code point. `<` compares UTF-16 code units, in which a
 * character past U+FFFF (a surrogate pair, from D800) sorts below U+E000 to U+FFFF: '\u{1F600}' < '\uFF5E' is true,
 * while DynamoDB sorts it after.
 */
export function utf8Before(a: string, b: string): boolean {
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index++) {
    const x = a.charCodeAt(index);
    const y = b.charCodeAt(index);
    if (x === y) continue;
    // Both in the same range, code units sort as code points; else the surrogate is the character past U+FFFF.
    return isSurrogate(x) === isSurrogate(y) ? x < y : isSurrogate(y);
  }
  return a.length < b.length;
}

/** Looks up the claim that holds an identifier (its first claim), if any. */
export type ClaimLookup = (identity: Identity) => Claim | undefined;

/**
 * The identity whose events an identifier's events are: the end of its chain of claims, or the identifier itself
 * when unclaimed. A chain that loops back ignores the loop's latest claim.
 */
export function rootOf(identity: Identity, claimOf: ClaimLookup): Identity {
  const chain: Claim[] = [];
  const visited = new Set<string>([identityKey(identity)]);
  let current = identity;
  for (;;) {
    const claim = claimOf(current);
    if (claim === undefined) return current;
    const next: Identity = { kind: 'user', id: claim.to };
    if (visited.has(identityKey(next))) {
      // A loop: its latest claim does not count, so the loop's root is the identity that made it.
      const loop = [...chain.slice(chain.findIndex((link) => identityKey(link.from) === identityKey(next))), claim];
      const latest = loop.reduce((last, link) => (claimsBefore(last, link) ? link : last));
      return latest.from;
    }
    chain.push(claim);
    visited.add(identityKey(next));
    current = next;
  }
}

/**
 * The users an identifier's events belong to, one after the other, along its chain of claims to its root: each with
 * the time the identifier's events became theirs, the latest claim on the way (an anonymous visitor claimed on
 * Monday by A, A aliased to B on Friday: A from Monday, B from Friday). Before then nobody knew they were one person;
 * the backtest merges from then on, as the evaluator could. Empty for an identifier that is its own root.
 */
export function claimPath(identity: Identity, claimOf: ClaimLookup): { user: Identity; joinedAt: string }[] {
  const root = identityKey(rootOf(identity, claimOf));
  const path: { user: Identity; joinedAt: string }[] = [];
  for (let current = identity; identityKey(current) !== root; ) {
    const claim = claimOf(current)!;
    const previous = path.at(-1)?.joinedAt;
    current = { kind: 'user', id: claim.to };
    path.push({ user: current, joinedAt: previous !== undefined && previous > claim.at ? previous : claim.at });
  }
  return path;
}

/** The winning claims on a set of identifiers, gathered from messages read in any order (backtest, discover). */
export class ClaimSet {
  private readonly claims = new Map<string, Claim>();

  /** Keeps the claim if it is the identifier's first; returns whether it was. */
  add(claim: Claim): boolean {
    const key = identityKey(claim.from);
    const held = this.claims.get(key);
    if (held !== undefined && !claimsBefore(claim, held)) return false;
    this.claims.set(key, claim);
    return true;
  }

  readonly claimOf: ClaimLookup = (identity) => this.claims.get(identityKey(identity));

  rootOf(identity: Identity): Identity {
    return rootOf(identity, this.claimOf);
  }

  claimPath(identity: Identity): { user: Identity; joinedAt: string }[] {
    return claimPath(identity, this.claimOf);
  }
}

/**
 * The identifiers that resolve to `root`, among those whose claims are known: what the evaluator merges into a user.
 * `claims` holds the claim on each identifier looked at (absent: unclaimed).
 */
export function mergedInto(root: Identity, claims: ReadonlyMap<string, Claim>): Identity[] {
  const claimOf: ClaimLookup = (identity) => claims.get(identityKey(identity));
  const rootKey = identityKey(root);
  return [...claims.values()].map((claim) => claim.from).filter((identity) => identityKey(identity) !== rootKey && identityKey(rootOf(identity, claimOf)) === rootKey);
}
