import { firstConversion } from './conversion';
import { addDays, type Calendar } from './days';
import { remembered } from './remembered';
import { eventsByDay } from './facts';
import { claimsBefore, claimsOf, identityKey, mergedInto, parseIdentityKey, rootOf, type Claim, type Identity } from './identity';
import { TooManyEventsError, type EntityRef, type EntityRows, type EvaluationStore, type StoredEvent } from './ports';
import { rollupDay, type DayRollup } from './rules/engine';
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
  /**
   * The events of the user and of every merged identity, of the days asked, or of all days when `all`; none when they
   * were too many to hold at once and were rolled up a day at a time instead (`rolledUp`).
   */
  events: StoredEvent[];
  /** Whether every day was read: asked for, or the merged identities changed (their whole history joins or leaves). */
  all: boolean;
  /** The days rolled up as they were read, for a user whose events of those days pass what a read may hold at once. */
  rolledUp?: RolledUpHistory;
}

/** What core/facts' recomputeDays makes of a user's events of the days read, made a day at a time as they were read. */
export interface RolledUpHistory {
  /** Each day's rollup, in the order recomputeDays gives them from every event read at once. */
  days: DayRollup[];
  /** The earliest message, the totals' first seen. */
  firstEvent: string | null;
  /** The earliest message that converts the user (core/conversion), null for none or no conversion in the rules. */
  convertedAt: string | null;
}

/**
 * A user's events together with those of the identities merged into it. The identities merged when it was last
 * saved are checked against their stored claims (an earlier claim elsewhere takes one away); the claims in the events
 * read are stored (first claim wins), and a claim that joins a new identity reads its whole history, which may
 * carry further claims (a chain), until nothing changes. So does a merged identity its user took after its last
 * save: it was another user's meanwhile, taken back since (by this user's own earlier message), and its changes of
 * meanwhile went to that user, not to this one's days.
 */
export async function mergedEvents(store: EvaluationStore, ref: EntityRef, rows: EntityRows, days: readonly string[] | 'all', now: Date, ruleset: Ruleset): Promise<MergedEvents> {
  const { calendar } = ruleset;
  const self = identityOfRef(ref);
  const known = rows.state?.merged ?? [];
  /** Each identity's events of every day, by identityKey, read once: a claim that merges one more reads its alone. */
  const wholeHistory = remembered((key: string) => store.events(refOf(ref.workspace, parseIdentityKey(key)), 'all'));
  /** Each identity's events of the days asked, by identityKey, read once. */
  const daysOf = remembered((key: string) => store.events(refOf(ref.workspace, parseIdentityKey(key)), days));
  const eventsOf = async (merged: readonly string[], all: boolean) => (await Promise.all([identityKey(self), ...merged].map(all ? wholeHistory : daysOf))).flat();
  /**
   * The identities' events with the claims they make; rolled up a day at a time when the user's own are more than a
   * read may hold at once (a user of years or a busy integration rebuilt, a backfill of many days), rather than fail.
   */
  const historyOf = async (merged: readonly string[], all: boolean): Promise<{ events: StoredEvent[]; claims: Map<string, Claim>; rolledUp?: RolledUpHistory }> => {
    try {
      const events = await eventsOf(merged, all);
      return { events, claims: earliestClaims(events) };
    } catch (error) {
      if (!(error instanceof TooManyEventsError)) throw error;
      return { events: [], ...(await rolledUpHistory(store, ref, all ? 'all' : days, merged, all ? wholeHistory : daysOf, ruleset)) };
    }
  };
  // The events of the identities merged at the last save are read beside their claims, a round trip less: a claim
  // taken away since (an earlier one elsewhere) is seldom, and then the events are read again.
  const [claims, knownHistory] = await Promise.all([
    known.length > 0 ? store.claims(ref.workspace, known.map(parseIdentityKey)) : new Map<string, Claim>(),
    historyOf(known, days === 'all'),
  ]);
  const savedAt = rows.state?.lead?.evaluatedAt;
  const claimedSinceSaved = (keys: readonly string[]) => savedAt !== undefined && keys.some((key) => (claims.get(key)?.storedAt ?? '') > savedAt);
  let merged = sortedKeys(mergedInto(self, claims));
  let all = days === 'all' || !sameKeys(merged, known) || claimedSinceSaved(merged);
  let history = sameKeys(merged, known) && all === (days === 'all') ? knownHistory : undefined;
  for (;;) {
    history ??= await historyOf(merged, all);
    await storeEarliestClaims(store, ref.workspace, history.claims, claims, now, calendar);
    const next = sortedKeys(mergedInto(self, claims));
    if (sameKeys(next, merged) && (all || !claimedSinceSaved(next))) return { merged, events: history.events, all, ...(history.rolledUp ? { rolledUp: history.rolledUp } : {}) };
    merged = next;
    all = true;
    history = undefined;
  }
}

/**
 * A user's history of the days asked (every day on a rebuild) rolled up a day at a time, with the claims it makes (the
 * earliest of each identity): its own events read a stored day at a time (EvaluationStore.eachEventDay) and each day
 * of the rules' calendar rolled up once whole; the merged identities' (an anonymous visitor's few days, as a rule) read
 * whole beside them (`othersOf`). The same rollups, in the same order, as recomputeDays makes of every event read at
 * once: the days asked first, each day's events in the order that read gives them, the user's own first.
 */
async function rolledUpHistory(
  store: EvaluationStore,
  ref: EntityRef,
  days: readonly string[] | 'all',
  merged: readonly string[],
  othersOf: (identityKey: string) => Promise<StoredEvent[]>,
  ruleset: Ruleset,
): Promise<{ rolledUp: RolledUpHistory; claims: Map<string, Claim> }> {
  const { calendar } = ruleset;
  const othersByDay = (await Promise.all(merged.map(othersOf))).map((events) => eventsByDay(events, calendar));
  const claims = new Map<string, Claim>();
  const rolled = new Map<string, DayRollup>();
  /** The user's own days in the order they first come, and the events of those not rolled up yet. */
  const ownDays: string[] = [];
  const pending = new Map<string, StoredEvent[]>();
  let firstEvent: string | null = null;
  let convertedAt: string | null = null;
  const rollUp = (day: string) => {
    const events = [...(pending.get(day) ?? []), ...othersByDay.flatMap((byDay) => byDay.get(day) ?? [])];
    pending.delete(day);
    rolled.set(day, rollupDay(day, events, ruleset));
    earliestClaims(events, claims);
    for (const event of events) if (firstEvent === null || event.timestamp < firstEvent) firstEvent = event.timestamp;
    const converted = ruleset.file.conversion ? firstConversion(ruleset.file.conversion, events) : null;
    if (converted !== null && (convertedAt === null || converted < convertedAt)) convertedAt = converted;
  };
  await store.eachEventDay(ref, days, (storedDay, events) => {
    for (const event of events) {
      const day = calendar.dayOf(event.timestamp);
      const waiting = pending.get(day);
      if (waiting !== undefined) waiting.push(event);
      else {
        pending.set(day, [event]);
        ownDays.push(day);
      }
    }
    // A day of the rules' calendar is whole once the stored day two after it is read: its events lie in the stored days
    // up to two either side of it, stored by the days of the time zone ingest had then (up to 26 hours from the rules'
    // after a change of time zone).
    const whole = addDays(storedDay, -1);
    for (const day of [...pending.keys()]) if (day < whole) rollUp(day);
  });
  for (const day of [...pending.keys()]) rollUp(day);
  // A day asked with no event left is rolled up empty, as recomputeDays does.
  const order = new Set([...(days === 'all' ? [] : days), ...ownDays, ...othersByDay.flatMap((byDay) => [...byDay.keys()])]);
  for (const day of order) if (!rolled.has(day)) rollUp(day);
  return { rolledUp: { days: [...order].map((day) => rolled.get(day)!), firstEvent, convertedAt }, claims };
}

/**
 * Stores the claims the events make, where they come first; `claims` ends up holding the claim on every identity
 * the events name. A claim that takes an identity from another user marks that user, which then lets it go.
 */
export async function storeClaims(store: EvaluationStore, workspace: string, events: readonly StoredEvent[], claims: Map<string, Claim>, now: Date, calendar: Calendar): Promise<void> {
  await storeEarliestClaims(store, workspace, earliestClaims(events), claims, now, calendar);
}

/** The earliest claim the events make on each identity, by identityKey, added to `into`. */
function earliestClaims(events: readonly StoredEvent[], into = new Map<string, Claim>()): Map<string, Claim> {
  for (const event of events) {
    for (const claim of claimsOf(event)) {
      const key = identityKey(claim.from);
      const seen = into.get(key);
      if (seen === undefined || claimsBefore(claim, seen)) into.set(key, claim);
    }
  }
  return into;
}

/** storeClaims of the earliest claims events make (earliestClaims). */
async function storeEarliestClaims(store: EvaluationStore, workspace: string, earliest: ReadonlyMap<string, Claim>, claims: Map<string, Claim>, now: Date, calendar: Calendar): Promise<void> {
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
