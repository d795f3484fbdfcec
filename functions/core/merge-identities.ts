import type { Calendar } from './days';
import { claimsBefore, claimsOf, identityKey, mergedInto, parseIdentityKey, rootOf, type Claim, type Identity } from './identity';
import type { EntityRef, EntityRows, EvaluationStore, StoredEvent } from './ports';
import type { Ruleset } from './rules/load';

/**
 * The evaluator's side of identity resolution (the rules are core/identity's): claims are learned from the events
 * the evaluator reads anyway, and stored on the claimed identity, so ingest pays nothing for them and an event that
 * needs no merge costs nothing more. Every step is idempotent and re-done from the stored claims on the next run, so
 * a merge cut short (throttling, a crash halfway) completes on retry.
 */

export const identityOfRef = (ref: EntityRef): Identity => ({ kind: ref.type === 'visitor' ? 'visitor' : 'user', id: ref.id });
const refOf = (workspace: string, identity: Identity): EntityRef => ({ workspace, type: identity.kind, id: identity.id });

/**
 * Who evaluates the changes of a user or visitor: itself; the user it is merged into (its claim chain's end); or no
 * one, for an anonymous visitor when the rules do not make visitors leads.
 */
export async function ownerOf(store: EvaluationStore, ref: EntityRef, rows: EntityRows, ruleset: Ruleset): Promise<EntityRef | undefined> {
  const self = identityOfRef(ref);
  const claims = new Map<string, Claim>();
  if (rows.claim) claims.set(identityKey(self), rows.claim);
  const lookup = (identity: Identity) => claims.get(identityKey(identity));
  // Follow the chain one stored claim at a time (chains are short); it stops at an unclaimed user or a loop.
  let root = rootOf(self, lookup);
  while (identityKey(root) !== identityKey(self) && !claims.has(identityKey(root))) {
    const found = (await store.claims(ref.workspace, [root])).get(identityKey(root));
    if (!found) break;
    claims.set(identityKey(root), found);
    root = rootOf(self, lookup);
  }
  if (identityKey(root) !== identityKey(self)) return refOf(ref.workspace, root);
  return ref.type === 'visitor' && !ruleset.anonymousLeads ? undefined : ref;
}

export interface MergedEvents {
  /** The identities merged into the user, besides itself (identityKeys, sorted): saved with its state. */
  merged: string[];
  /** The events of the user and of every merged identity, of the days asked, or of all days when `all`. */
  events: StoredEvent[];
  /** Whether every day was read: asked for, or the merged identities changed (their whole history joins or leaves). */
  all: boolean;
}

/**
 * A user's events together with those of the identities merged into it. The identities merged when it was last
 * saved are checked against their stored claims (an earlier claim elsewhere takes one away); the claims in the events
 * read are stored (first claim wins), and a claim that joins a new identity reads its whole history, which may
 * carry further claims (a chain), until nothing changes. So does a merged identity its user took after its last
 * save: it was another user's meanwhile, taken back since (by this user's own earlier message), and its changes of
 * meanwhile went to that user, not to this one's days.
 */
export async function mergedEvents(store: EvaluationStore, ref: EntityRef, rows: EntityRows, days: readonly string[] | 'all', now: Date, calendar: Calendar): Promise<MergedEvents> {
  const self = identityOfRef(ref);
  const known = rows.state?.merged ?? [];
  /** Each identity's events of every day, read once: a claim that merges one more reads that one's alone. */
  const wholeHistories = new Map<string, Promise<StoredEvent[]>>();
  const wholeHistory = (identity: Identity) => {
    const key = identityKey(identity);
    const read = wholeHistories.get(key) ?? store.events(refOf(ref.workspace, identity), 'all');
    wholeHistories.set(key, read);
    return read;
  };
  const eventsOf = async (merged: readonly string[], all: boolean) =>
    (await Promise.all([self, ...merged.map(parseIdentityKey)].map((identity) => (all ? wholeHistory(identity) : store.events(refOf(ref.workspace, identity), days))))).flat();
  // The events of the identities merged at the last save are read beside their claims, a round trip less: a claim
  // taken away since (an earlier one elsewhere) is seldom, and then the events are read again.
  const [claims, knownEvents] = await Promise.all([
    known.length > 0 ? store.claims(ref.workspace, known.map(parseIdentityKey)) : new Map<string, Claim>(),
    eventsOf(known, days === 'all'),
  ]);
  const savedAt = rows.state?.lead?.evaluatedAt;
  const claimedSinceSaved = (keys: readonly string[]) => savedAt !== undefined && keys.some((key) => (claims.get(key)?.storedAt ?? '') > savedAt);
  let merged = sortedKeys(mergedInto(self, claims));
  let all = days === 'all' || !sameKeys(merged, known) || claimedSinceSaved(merged);
  let events = sameKeys(merged, known) && all === (days === 'all') ? knownEvents : undefined;
  for (;;) {
    events ??= await eventsOf(merged, all);
    await storeClaims(store, ref.workspace, events, claims, now, calendar);
    const next = sortedKeys(mergedInto(self, claims));
    if (sameKeys(next, merged) && (all || !claimedSinceSaved(next))) return { merged, events, all };
    merged = next;
    all = true;
    events = undefined;
  }
}

/**
 * Stores the claims the events make, where they come first; `claims` ends up holding the claim on every identity
 * the events name. A claim that takes an identity from another user marks that user, which then lets it go.
 */
export async function storeClaims(store: EvaluationStore, workspace: string, events: readonly StoredEvent[], claims: Map<string, Claim>, now: Date, calendar: Calendar): Promise<void> {
  const earliest = new Map<string, Claim>();
  for (const event of events) {
    for (const claim of claimsOf(event)) {
      const key = identityKey(claim.from);
      const seen = earliest.get(key);
      if (seen === undefined || claimsBefore(claim, seen)) earliest.set(key, claim);
    }
  }
  const unread = [...earliest.keys()].filter((key) => !claims.has(key));
  if (unread.length > 0) for (const [key, claim] of await store.claims(workspace, unread.map(parseIdentityKey))) claims.set(key, claim);
  for (const [key, claim] of earliest) {
    const held = claims.get(key);
    if (held !== undefined && !claimsBefore(claim, held)) continue;
    const result = await store.claim(workspace, claim, now, held?.to);
    claims.set(key, result.held);
    if (result.replaced && result.replaced.to !== result.held.to) {
      await store.mark({ workspace, type: 'user', id: result.replaced.to }, [calendar.dayOf(now)], now);
    }
  }
}

const sortedKeys = (identities: readonly Identity[]) => identities.map(identityKey).sort();
const sameKeys = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...b].sort().every((key, index) => key === a[index]);
