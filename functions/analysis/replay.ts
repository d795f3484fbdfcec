import { ClaimSet, claimsOf, identityKey, parseIdentityKey, type Claim, type Identity } from '../core/identity';
import type { AcceptedMessage } from '../core/messages';
import { accountConversion, convertsBy } from '../core/conversion';
import { isPlainObject } from '../core/message-traits';
import { decide, defaultDecayIntervalMs, mergedAway, movesAccounts, nextDecisionAt, type LeadState } from '../core/lead-state';
import { addDays, isDay } from '../core/days';
import { accountFacts, addToTotals, inReach, memberRangesInReach, pruneLifetime, rangesInReach, userFacts, type DayRange, type EntityTotals, type MemberRows } from '../core/facts';
import { emptyRollup, evaluate, mergeRollups, noNames, rollupDayWithSessions, sessionsOf, signupTime, type DayRollup, type EntityFacts, type SessionSpan, type UsageEvent } from '../core/rules/engine';
import type { Ruleset } from '../core/rules/load';
import { usersReadAccountTraits } from '../core/rules/ruleset';
import { changesByTimeAt, decayIntervalMatters, type TimeChanges } from '../core/rules/time-changes';
import type { MessageType } from '../core/segment-schema';
import { Groups } from './groups';
import { hash52, HashSet52 } from './seen-set';

/**
 * Point-in-time replay: what the evaluator would have decided, step by step, had the rules been live over the period.
 *
 * Reading (`EventHistory.add`) keeps what the evaluator keeps, never the raw events: one daily rollup per user and day
 * (the engine's own `rollupDay`, so the input need not be sorted: a rollup does not depend on the order of its events;
 * sessions are joined as spans, see UserRecord.sessions),
 * each user's first message, the traits of identify and group calls with the time each was set, and memberships with
 * the time each began. Memory grows with users x active days, not with events.
 *
 * Replaying (`replay`): a step is the END of a UTC day (23:59:59.999Z), every `stepDays` days from `from`, and `to`.
 * At a step only what happened at or before it counts: the rollups of that day and earlier, the traits set at or
 * before it, the memberships begun at or before it. Later days, traits and members are simply not looked at, so no
 * future data can reach a decision (test/unit/backtest.test.ts replays with and without the future and compares).
 *
 * At every step:
 *  1. Every user seen so far is evaluated by the engine (`evaluate`) with the facts the evaluator builds (core/facts:
 *     the day rollups its windows and since-signup span reach, the lifetime rollup, first and last seen, its traits
 *     and its accounts' traits). The signals that match and the score are recorded: what the rules say of the
 *     user at that moment. A user whose evaluation cannot have changed since its last one is neither evaluated nor
 *     even looked at (its last evaluation stands: see `visits` in replay), which changes no figure.
 *  2. The lead state machine (`decide`, with the cooldown) runs for the users the deployed evaluator would evaluate
 *     then: those with new messages since the previous step, and those whose sweep is due (lead-state's
 *     nextDecisionAt: a lead when time can change its evaluation, a user without a tier when time can raise it into
 *     one). Any other user keeps its state, as in the evaluator: run on the same evaluation, a lead's state machine
 *     would keep its tier (only a conversion coming in moves it, and the replay looks at the lead then). The tier
 *     changes are recorded.
 *  3. Accounts (only when some rule looks at accounts), after their members, as the evaluator does: their facts are
 *     their members' rollups added up, and each member's last seen, tier and matched signals from the member's lead
 *     state (core/facts' accountFacts). They are decided when a member's evaluation moves them (new messages, a tier
 *     moved), when their traits change, or when their sweep is due: as the evaluator judges them.
 *
 * Leads are made before the period too: a warm-up step at the end of the day before `from` decides the history before
 * it, so what that history qualifies is a lead when the period begins, as it would be with the rules live then (its
 * transitions dated that day, before the period: the report counts them as leads, not as the period's alerts). Starting
 * from no lead state instead had every such lead qualify at `from`, as many alerts on the first day as there were
 * leads. The warm-up looks only at entities seen before `from`: none when the period starts with the history (the
 * default). What a daily step cannot see: the deployed evaluator runs every minute, so a lead that qualified at 10:00 is
 * recorded at the end of its day (up to a step late, never early); traits apply in the order of their timestamps, where
 * the live profile keeps the last to arrive; and within a step members always come before their accounts. A product
 * event received on a later day than it happened counts from its own time, unless `asReceived`: then from the step at
 * which it was received, its day recomputed then, as the evaluator recomputes a day a late event arrives for. Pure: no I/O.
 */

/** Product events buffered per user and day before they are rolled up (a rollup per event would cost more). */
const bucketFlushAt = 256;
/** All buffered events are rolled up when this many are waiting, so memory stays bounded on unsorted input. */
const totalFlushAt = 20_000;
export const productTypes: ReadonlySet<string> = new Set(['track', 'page', 'screen']);
interface TraitEntry {
  at: string;
  seq: number;
  traits: Record<string, unknown>;
}

interface LateEvent {
  receivedAt: string;
  day: string;
  usage: UsageEvent;
}

interface UserRecord {
  id: string;
  /** A visitor's record is judged on its own only when anonymous visitors are leads; it reports as a visitor. */
  kind: Identity['kind'];
  /** Its first message. */
  firstSeen: string;
  /**
   * Its first message but the late product events (`asReceived`), null for none: the first seen its evaluations know
   * of until the late events are counted, when they were received (countLateEvents).
   */
  firstOnTime: string | null;
  /** Rolled-up days, by day; a day with only identify/group/alias messages has an empty rollup, as in the evaluator. */
  days: Map<string, DayRollup>;
  /** Product events waiting to be rolled up, by day. */
  pending: Map<string, UsageEvent[]>;
  /**
   * With `asReceived`: product events received on a later day than they happened, each counted into its day from the
   * step at which it was received (countLateEvents); by receipt once the replay starts.
   */
  late: LateEvent[];
  /**
   * The sessions of count: sessions signals as spans, by day and signal: a day is rolled up in parts, and merged
   * identities' days join it, so its session counts come from the joined spans (a session may span parts), never
   * from adding counts. Empty when no signal counts sessions.
   */
  sessions: Map<string, Record<string, SessionSpan[]>>;
  traits: TraitEntry[];
  /** Account id -> when the user first appeared in it (group call or context.groupId). */
  accounts: Map<string, string>;
  /** Histories of identifiers claimed for this user, merged into it at the step their claim is known (`at`). */
  joins: { at: string; record: UserRecord }[];
  /**
   * For an identifier claimed by a user and evaluated on its own until then (a user, or a visitor when anonymous
   * visitors are leads): when it joined its first claimant, and the user its chain ends at. From then on the
   * evaluator hands its changes to that user and never decides it again.
   */
  merged?: { at: string; into: string };
  /**
   * The conversions the evaluator would see (core/conversion): when each happened, and when it was known (a late
   * product event's, with `asReceived`, when it was received). Only those that move what it records (lead-state's
   * decide: the first seen, then any earlier one seen later): by when they are known, each earlier than the one before.
   */
  conversions: readonly KnownConversion[];
}

/** A conversion's time, and when the evaluator would know of it. */
interface KnownConversion {
  at: string;
  knownAt: string;
}

export interface EventHistoryStats {
  /** Messages added. */
  messages: number;
  /** Messages that repeated the user, day and messageId of an earlier one: ingest stores those once. */
  duplicates: number;
  /** Product events received on a later day than they happened (HistoryEntry's receivedAt), counted by the replay from then with `asReceived`. */
  lateEvents: number;
  /** Messages after `until`, not kept (a conversion among them only as its user's conversion time). */
  ignoredAfter: number;
  firstTimestamp: string | null;
  lastTimestamp: string | null;
  /** Identifiers (anonymous visitors, aliased userIds) whose history merged into a user's (core/identity); set by the replay. */
  mergedIdentifiers: number;
  /** Anonymous visitors nobody claimed, left out of the replay (unless `anonymous`); set by the replay. */
  anonymousLeftOut: number;
}

export interface EventHistoryOptions {
  /**
   * Messages after this time are not kept (a replay never looks past its last step), but for their conversions: a
   * lead of the period that converts after it, within the report's horizon, converted.
   */
  until?: string;
  /** Replay anonymous visitors nobody claimed as leads of their own, as the evaluator does with `identity.anonymous_leads`. @default the rules' setting */
  anonymous?: boolean;
  /**
   * Count a product event received on a later day than it happened from the step at which it was received, as the
   * live evaluator could only then, rather than from its own time. For an export of events as they arrived (a
   * Segment export's receivedAt, else sentAt), not for a history loaded in bulk, whose every event was received at
   * once. The late events are kept as they are until then: memory grows with them. @default false
   */
  asReceived?: boolean;
  /**
   * Anonymous ids whose user the replay names when it does not judge them (ReplayResult.claimedVisitors): those a
   * conversions file lists as visitors. Only those: a browser history has an anonymous id or more per user. @default none
   */
  namedVisitors?: ReadonlySet<string>;
}

/** What EventHistory.add reads of an accepted message. */
export type HistoryMessage = Pick<AcceptedMessage, 'type' | 'timestamp' | 'identity' | 'messageId' | 'groupId' | 'traits' | 'message'>;

/**
 * What EventHistory keeps of a message, worked out once (historyEntry): a partitioned backtest writes these to its
 * temporary files and reads them back, so that reading back does not parse the message and work them out again.
 */
export interface HistoryEntry {
  type: MessageType;
  timestamp: string;
  /** Whom it belongs to, and its identityKey. */
  identity: Identity;
  owner: string;
  messageId: string;
  /** It converts its user (core/conversion). */
  converts: boolean;
  /** The identifiers it claims (core/identity): for its user, at its time, by its messageId. Most claim none. */
  claims: readonly Claim[];
  /** The account it names (group call, or context.groupId). */
  groupId: string | undefined;
  /** An identify's or a group's traits that the rules read, when it has any. */
  traits: Record<string, unknown> | undefined;
  /** A product event (track, page, screen), as the rollups read it. */
  usage: UsageEvent | undefined;
  /** A product event received on a later day than it happened: when (receivedAt, else sentAt; ISO 8601). */
  receivedAt: string | undefined;
}

/** The traits and (top-level) properties a ruleset's history reads of messages: of the others, none is ever looked at. */
export interface HistoryReads {
  traits: ReadonlySet<string>;
  properties: ReadonlySet<string>;
}

/** What a history entry keeps of traits and properties under these rules: see historyEntry. */
export function historyReads(ruleset: Ruleset): HistoryReads {
  const properties = new Set<string>();
  // Paths are dotted (core/rules/engine's valueAt): what they reach lies under their first name.
  const read = (path: string | undefined) => path !== undefined && properties.add(path.split('.')[0]!);
  for (const signal of Object.values(ruleset.file.signals)) {
    if (signal.kind !== 'event') continue;
    for (const path of Object.keys(signal.where ?? {})) read(path);
    read(signal.distinct);
    read(signal.sum);
  }
  return { traits: traitsRead(ruleset), properties };
}

/**
 * What EventHistory keeps of an accepted message under these rules (`reads`): its conversion is decided on the whole
 * message, and of traits and properties only those the rules read are kept (a Segment message's context is often most
 * of it, and traits and properties no rule reads the rest of it). A product event keeps its type, time, event name (the
 * engine matches pages and screens by their type: core/rules/engine's eventName) and properties.
 */
export function historyEntry(message: HistoryMessage, ruleset: Ruleset, reads: HistoryReads): HistoryEntry {
  const { type, timestamp, identity, message: raw } = message;
  const usage = productTypes.has(type);
  const owner = identityKey(identity);
  // Only a message with an anonymousId, or an alias, claims anything (core/identity's claimsOf).
  const { anonymousId } = raw;
  const claims = (typeof anonymousId === 'string' && anonymousId !== '') || type === 'alias' ? claimsOf(raw) : noClaims;
  const traits = message.traits !== undefined && (type === 'identify' || type === 'group') ? picked(message.traits, reads.traits) : undefined;
  const properties = raw['properties'];
  // Every entry and usage event has all its fields, in this order, as the spill's read back (cli/backtest-spill): one
  // shape for the code that reads them.
  return {
    type,
    timestamp,
    identity,
    owner,
    messageId: message.messageId,
    converts: messageConverts(message, ruleset),
    claims,
    groupId: message.groupId,
    traits: traits !== undefined && Object.keys(traits).length > 0 ? traits : undefined,
    usage: usage ? { type, timestamp, event: type === 'track' && typeof raw['event'] === 'string' ? raw['event'] : undefined, properties: isPlainObject(properties) ? picked(properties, reads.properties) : undefined } : undefined,
    receivedAt: usage ? receivedLater(raw, timestamp, ruleset) : undefined,
  };
}

/**
 * When a message that happened at `timestamp` was received, if on a later day (the rules' calendar): an export's
 * receivedAt, else the time the client sent it (sentAt); undefined for one received the same day, or not known when.
 */
function receivedLater(raw: Record<string, unknown>, timestamp: string, ruleset: Ruleset): string | undefined {
  const given = typeof raw['receivedAt'] === 'string' ? raw['receivedAt'] : raw['sentAt'];
  if (typeof given !== 'string') return undefined;
  const ms = Date.parse(given);
  if (Number.isNaN(ms)) return undefined;
  const { calendar } = ruleset;
  return calendar.dayOf(ms) > calendar.dayOf(timestamp) ? new Date(ms).toISOString() : undefined;
}

/**
 * Whether the message converts its user under these rules, decided on the whole message (core/conversion): a history
 * entry's `converts`, and all that a partitioned backtest needs to know of a message after `until`.
 */
export function messageConverts(message: Pick<HistoryMessage, 'message'>, ruleset: Ruleset): boolean {
  const { conversion } = ruleset.file;
  return conversion !== undefined && convertsBy(conversion, message.message, 'user');
}

/** The claims of the many messages that make none, shared. */
export const noClaims: readonly Claim[] = Object.freeze([]);

/** The record's own entries of these names (never `__proto__`: ingest's validation refuses that key). */
function picked(record: Record<string, unknown>, names: ReadonlySet<string>): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const name of names) if (Object.hasOwn(record, name)) kept[name] = record[name];
  return kept;
}

/** The compact history a replay runs on, built one message at a time. */
export class EventHistory {
  readonly stats: EventHistoryStats = { messages: 0, duplicates: 0, lateEvents: 0, ignoredAfter: 0, firstTimestamp: null, lastTimestamp: null, mergedIdentifiers: 0, anonymousLeftOut: 0 };
  /** By identityKey: users and anonymous visitors apart, until finish() merges them (core/identity). */
  private readonly users = new Map<string, UserRecord>();
  private readonly claims = new ClaimSet();
  private readonly accountTraits = new Map<string, TraitEntry[]>();
  /** Set by finish(): see ReplayPartition.claimedVisitors. */
  private readonly claimedVisitors: ClaimedVisitor[] = [];
  /** 52-bit hashes of user, day and messageId: ingest keys an event by them, so a repeat rewrites the same item. */
  private readonly seen = new HashSet52();
  private readonly reads: HistoryReads;
  private pendingTotal = 0;
  private seq = 0;
  private finished = false;

  constructor(
    readonly ruleset: Ruleset,
    private readonly options: EventHistoryOptions = {},
  ) {
    this.reads = historyReads(ruleset);
  }

  /** Adds one message as ingest accepted it (validateMessage). Returns false when it is not kept (a duplicate, or after `until`). */
  add(message: HistoryMessage): boolean {
    return this.addEntry(historyEntry(message, this.ruleset, this.reads));
  }

  /** Adds what historyEntry kept of a message under this history's rules, as `add` does. */
  addEntry(entry: HistoryEntry): boolean {
    if (this.finished) throw new Error('EventHistory: add() after replay started');
    const { timestamp } = entry;
    if (this.options.until !== undefined && timestamp > this.options.until) {
      this.stats.ignoredAfter++;
      if (entry.converts) this.converted(this.userOf(entry), timestamp, this.knownAt(entry));
      return false;
    }
    const day = this.ruleset.calendar.dayOf(timestamp);
    if (!this.seen.add(hash52(`${entry.owner}\n${day}\n${entry.messageId}`))) {
      this.stats.duplicates++;
      return false;
    }
    this.stats.messages++;
    if (this.stats.firstTimestamp === null || timestamp < this.stats.firstTimestamp) this.stats.firstTimestamp = timestamp;
    if (this.stats.lastTimestamp === null || timestamp > this.stats.lastTimestamp) this.stats.lastTimestamp = timestamp;

    for (const claim of entry.claims) this.claims.add(claim);
    const user = this.userOf(entry);
    if (timestamp < user.firstSeen) user.firstSeen = timestamp;
    const knownAt = this.knownAt(entry);
    if (knownAt === timestamp && (user.firstOnTime === null || timestamp < user.firstOnTime)) user.firstOnTime = timestamp;
    if (entry.converts) this.converted(user, timestamp, knownAt);

    if (entry.receivedAt !== undefined) this.stats.lateEvents++;
    if (entry.usage !== undefined && entry.receivedAt !== undefined && this.options.asReceived) {
      user.late.push({ receivedAt: entry.receivedAt, day, usage: entry.usage });
    } else if (entry.usage !== undefined) {
      const bucket = user.pending.get(day) ?? [];
      if (bucket.length === 0) user.pending.set(day, bucket);
      bucket.push(entry.usage);
      this.pendingTotal++;
      if (bucket.length >= bucketFlushAt) this.flushBucket(user, day);
      if (this.pendingTotal >= totalFlushAt) this.flushAll();
    } else if (!user.days.has(day) && !user.pending.has(day)) {
      user.days.set(day, emptyRollup(day));
    }

    // As ingest: accounts have users as members, not anonymous visitors.
    if (entry.groupId !== undefined && entry.identity.kind === 'user') {
      const joined = user.accounts.get(entry.groupId);
      if (joined === undefined || timestamp < joined) user.accounts.set(entry.groupId, timestamp);
    }
    if (entry.traits !== undefined) {
      const traits = { at: timestamp, seq: this.seq++, traits: entry.traits };
      if (entry.type === 'identify') user.traits.push(traits);
      else {
        const list = this.accountTraits.get(entry.groupId!) ?? [];
        if (list.length === 0) this.accountTraits.set(entry.groupId!, list);
        list.push(traits);
      }
    }
    return true;
  }

  /**
   * The record of the entry's owner, made when it has none. One made for a conversion after `until` alone is first
   * seen then, after the last step: the replay leaves it out unless earlier messages of its own come.
   */
  private userOf(entry: HistoryEntry): UserRecord {
    let user = this.users.get(entry.owner);
    if (!user) {
      user = { id: entry.identity.id, kind: entry.identity.kind, firstSeen: entry.timestamp, firstOnTime: null, days: new Map(), pending: new Map(), late: [], sessions: new Map(), traits: [], accounts: new Map(), joins: [], conversions: noConversions };
      this.users.set(entry.owner, user);
    }
    return user;
  }

  /** When the evaluator would know of the entry: a late product event, with `asReceived`, once it was received. */
  private knownAt(entry: HistoryEntry): string {
    return this.options.asReceived && entry.usage !== undefined && entry.receivedAt !== undefined ? entry.receivedAt : entry.timestamp;
  }

  private converted(user: UserRecord, at: string, knownAt: string) {
    user.conversions = withConversion(user.conversions, { at, knownAt });
  }

  private flushBucket(user: UserRecord, day: string) {
    const events = user.pending.get(day);
    if (!events || events.length === 0) return;
    user.pending.delete(day);
    this.pendingTotal -= events.length;
    user.days.set(day, withDayPart(user, user.days.get(day), day, events, this.ruleset));
  }

  private flushAll() {
    for (const user of this.users.values()) for (const day of [...user.pending.keys()]) this.flushBucket(user, day);
  }

  /**
   * @internal Rolls up what is still buffered, merges every identity into the user it resolves to (core/identity, as
   * the evaluator), leaves out anonymous visitors nobody claimed unless asked, and hands the records to the replay.
   */
  finish(): Omit<ReplayPartition, 'ruleset'> {
    if (!this.finished) {
      this.flushAll();
      this.finished = true;
      this.seen.clear();
      const anonymous = this.options.anonymous ?? this.ruleset.anonymousLeads;
      for (const [key, record] of [...this.users]) {
        const identity = parseIdentityKey(key);
        const evaluatedOnItsOwn = identity.kind === 'user' || anonymous;
        const path = this.claims.claimPath(identity);
        if (path.length > 0) {
          // Its history is each claimant's along the chain from the time it became theirs (point in time).
          for (const { user, joinedAt } of path) {
            const into = this.recordOf(user, joinedAt);
            // Its traits and accounts stay its own, as ingest records them: under the id of the message that sets them.
            into.joins.push({ at: joinedAt, record });
          }
          const merged = { at: path[0]!.joinedAt, into: path.at(-1)!.user.id };
          if (evaluatedOnItsOwn) record.merged = merged;
          else {
            this.users.delete(key);
            if (this.options.namedVisitors?.has(identity.id)) this.claimedVisitors.push({ id: identity.id, ...merged });
          }
          this.stats.mergedIdentifiers++;
        } else if (identity.kind === 'visitor' && !anonymous) {
          this.users.delete(key);
          this.stats.anonymousLeftOut++;
        }
      }
    }
    return { users: this.users, accountTraits: this.accountTraits, claimedVisitors: this.claimedVisitors };
  }

  /** A user's record, made empty (first seen at `firstSeen`) for a claimant with no messages of its own. */
  private recordOf(user: Identity, firstSeen: string): UserRecord {
    const key = identityKey(user);
    let record = this.users.get(key);
    if (!record) {
      record = { id: user.id, kind: user.kind, firstSeen, firstOnTime: firstSeen, days: new Map(), pending: new Map(), late: [], sessions: new Map(), traits: [], accounts: new Map(), joins: [], conversions: noConversions };
      this.users.set(key, record);
    }
    return record;
  }
}

/** `existing` (none: the day's first part) with a part of the day's events added, the sessions joined as spans. */
function withDayPart(record: UserRecord, existing: DayRollup | undefined, day: string, events: readonly UsageEvent[], ruleset: Ruleset): DayRollup {
  const { rollup: fresh, sessions } = rollupDayWithSessions(day, events, ruleset);
  // Event counts by name are for lead events' context only, never for the rules: the replay keeps none.
  fresh.names = noNames;
  const merged = existing ? mergeRollups(day, [existing, fresh]) : fresh;
  merged.names = noNames;
  joinSessions(record, merged, sessions);
  return merged;
}

const byReceipt = (a: LateEvent, b: LateEvent) => (a.receivedAt < b.receivedAt ? -1 : a.receivedAt > b.receivedAt ? 1 : 0);

/** Adds a merged identity's history to its user's: its days, late events, first message and conversion (not its traits or accounts: see finish). */
function mergeRecord(into: UserRecord, from: UserRecord): void {
  if (from.firstSeen < into.firstSeen) into.firstSeen = from.firstSeen;
  if (from.firstOnTime !== null && (into.firstOnTime === null || from.firstOnTime < into.firstOnTime)) into.firstOnTime = from.firstOnTime;
  for (const [day, rollup] of from.days) {
    const existing = into.days.get(day);
    const merged = existing ? mergeRollups(day, [existing, rollup]) : rollup;
    merged.names = noNames;
    joinSessions(into, merged, from.sessions.get(day) ?? {});
    into.days.set(day, merged);
  }
  if (from.late.length > 0) into.late = [...into.late, ...from.late].sort(byReceipt);
  for (const conversion of from.conversions) into.conversions = withConversion(into.conversions, conversion);
}

const noConversions: readonly KnownConversion[] = [];

/** The conversions with one more, less those it makes irrelevant: known no earlier and no earlier themselves. */
function withConversion(known: readonly KnownConversion[], added: KnownConversion): readonly KnownConversion[] {
  if (known.some((conversion) => conversion.knownAt <= added.knownAt && conversion.at <= added.at)) return known;
  return [...known.filter((conversion) => conversion.knownAt < added.knownAt || conversion.at < added.at), added].sort((a, b) => (a.knownAt < b.knownAt ? -1 : 1));
}

/** The time of the earliest conversion known by `at`, as the evaluator records it then; null for none. */
function conversionKnownBy(known: readonly KnownConversion[], at: string): string | null {
  let earliest: string | null = null;
  for (const conversion of known) if (conversion.knownAt <= at) earliest = conversion.at;
  return earliest;
}

/** Joins a part of a day's session spans into the record's, and sets the day's session counts from the joined spans. */
function joinSessions(record: UserRecord, rollup: DayRollup, spans: Readonly<Record<string, readonly SessionSpan[]>>): void {
  const names = Object.keys(spans);
  if (names.length === 0) return;
  // A new record each time: a merged identity's spans are shared with every user it merges into.
  const joined = { ...record.sessions.get(rollup.day) };
  for (const name of names) {
    const sessions = sessionsOf([...(joined[name] ?? []), ...spans[name]!]);
    joined[name] = sessions;
    rollup.measures[name]!.sessions = sessions.length;
  }
  record.sessions.set(rollup.day, joined);
}

/** The traits some rule reads (the signup trait, trait signals, the conversion trait): the only ones worth keeping. */
function traitsRead(ruleset: Ruleset): Set<string> {
  const names = new Set<string>();
  if (ruleset.file.conversion?.trait !== undefined) names.add(ruleset.file.conversion.trait);
  if (ruleset.file.signup?.trait !== undefined) names.add(ruleset.file.signup.trait);
  for (const signal of Object.values(ruleset.file.signals)) if (signal.kind === 'trait') names.add(signal.trait);
  return names;
}

/** The account traits of a user in no account, shared (the engine never writes into the facts it is given). */
const noAccountTraits: Record<string, unknown>[] = [];

export interface ReplayOptions {
  /** First step's day, YYYY-MM-DD (UTC). */
  from: string;
  /** Last step's day, YYYY-MM-DD (UTC). */
  to: string;
  /** Days between steps (the last may be shorter: it falls on `to`). @default 1 */
  stepDays?: number;
  /** Called after each step, e.g. for progress. */
  onStep?: (index: number, steps: number) => void;
  /** @internal Evaluate every user at every step, even those whose evaluation cannot have changed (for the tests that compare). */
  reevaluateAll?: boolean;
}

export interface TierTransition {
  /** The step at which it happened (the end of a day, ISO 8601). */
  at: string;
  from: string | null;
  to: string | null;
}

/** What the replay saw of one entity. */
export interface EntityHistoryResult {
  /** An anonymous visitor (judged when visitors are leads) is a `visitor`, as the evaluator's lead events name it. */
  type: 'user' | 'visitor' | 'account';
  id: string;
  /** Users: their first message. Accounts: when their first member joined them (a message naming the account). */
  firstSeen: string;
  /** Every tier change the lead state machine made, in order. */
  transitions: TierTransition[];
  /** The first step at which each signal matched, by signal name. */
  firstFired: Record<string, string>;
  /** The running maximum of the score over the steps: an entry each time it rises (the first step included). */
  maxScore: { at: string; score: number }[];
  /** When it converted, as the rules file's conversion defines it and the lead state recorded it; absent for none. */
  convertedAt?: string;
  /**
   * The user it merged into by the last step (an aliased user): its transitions are those of before the merge, as
   * the evaluator published them; as a person it is that user's, so the report does not judge it on its own.
   */
  mergedInto?: string;
}

export interface ReplayResult {
  from: string;
  to: string;
  stepDays: number;
  /** The step times: the end of each step's day. */
  steps: string[];
  /** Entities seen at or before the last step: users, then accounts (listed, without a history, when no rule looks at accounts). */
  entities: EntityHistoryResult[];
  /** The lowest and highest score seen at any step, by level: users (visitors with them), accounts. */
  scoreRange: { user: { min: number; max: number } | null; account: { min: number; max: number } | null };
  /** Whether accounts were evaluated (some rule looks at accounts). */
  accountsEvaluated: boolean;
  /**
   * Anonymous visitors a user claimed by the last step, not judged on their own (visitors are no leads), by id, with
   * the user they merged into: a conversion listed under one is that user's. Only those the history was asked to name
   * (EventHistoryOptions.namedVisitors); those judged on their own are entities with `mergedInto`.
   */
  claimedVisitors: { id: string; into: string }[];
}


interface Lead {
  history: EntityHistoryResult;
  state?: LeadState;
  /** The highest score so far. */
  best: number;
  /** When the evaluator would sweep it next (lead-state's nextDecisionAt at its last decision), epoch ms. */
  decideAt: number;
  /**
   * Which of its level's signals have matched at some step (1), by their place in an evaluation's signals, whose
   * names come in the same order every time (the engine's plan): what history.firstFired holds, told without a
   * lookup by name in it (a record of its own per lead, whose checks were a few percent of a replay). Made at the
   * first evaluation.
   */
  fired: Uint8Array | undefined;
}

interface UserRun extends Lead {
  /** Its index in the replay's users, sorted by id. */
  place: number;
  record: UserRecord;
  dayList: DayRollup[];
  /** How many of dayList are at or before the current step's day. */
  upto: number;
  /** How many of the record's late events are counted into dayList (countLateEvents). */
  lateCounted: number;
  /** Whether `record` is the run's own copy (joinClaimed, countLateEvents), whose sessions it may change. */
  ownRecord: boolean;
  totals: EntityTotals;
  traitCursor: number;
  traits: Record<string, unknown>;
  /** [account, joinedAt], by account id. */
  accounts: [AccountRun, string][];
  /** Whether the lead state machine ran for the user: the evaluator's store then holds its state, which accounts read. */
  evaluated: boolean;
  /**
   * Until when (epoch ms, excluded) the last evaluation stays what the engine would say with nothing new: the first
   * time a windowed count loses a day, an inactivity or signup age crosses its threshold, or a decay moves points.
   * -Infinity before the first evaluation and after anything new (days, traits, accounts, merges).
   */
  stableUntil: number;
  /** How many of its accounts it had joined at the last step: a new one brings its traits. */
  accountsJoined: number;
  /** Its signup time (engine's signupTime) as of `cursor` traits read and first seen `firstSeen` (a merge may move the first seen). */
  signup?: { cursor: number; firstSeen: string | null; at: string | null };
  /** A lead's last evaluation and its facts, while it has a tier (see evaluateUser). */
  lastLook?: { facts: EntityFacts; evaluation: ReturnType<typeof evaluate> };
}

interface AccountRun extends Lead {
  id: string;
  traitEntries: TraitEntry[];
  traitCursor: number;
  traits: Record<string, unknown>;
  /** [member, joinedAt], by user id. */
  members: [UserRun, string][];
  joinedFirst: string;
  /** A member with new days or a new tier was saved at this step: the evaluator would evaluate the account. */
  marked: boolean;
  /** Its traits changed at this step (a group call applied): its members' evaluations are stale. */
  traitsMoved: boolean;
}

/** Replays the history through the rules, step by step; see the comment at the top of this file. */
export function replay(history: EventHistory | ReplayPartition, options: ReplayOptions): ReplayResult {
  const { ruleset } = history;
  const stepDays = options.stepDays ?? 1;
  if (!Number.isInteger(stepDays) || stepDays < 1) throw new Error('stepDays must be a whole number of days, at least 1');
  if (!isDay(options.from) || !isDay(options.to)) throw new Error('from and to must be days, YYYY-MM-DD');
  if (options.from > options.to) throw new Error(`from (${options.from}) is after to (${options.to})`);
  const steps: string[] = [];
  for (let day = options.from; day <= options.to; day = addDays(day, stepDays)) steps.push(day);
  // A period that is no whole number of steps ends with a shorter one, on `to`: cut at the last whole step, its last
  // days' events and qualifications were left out unsaid, by 0 to stepDays - 1 days depending on the period's length,
  // so two periods of the same steps were not judged alike.
  if (steps.at(-1) !== options.to) steps.push(options.to);
  const lastStep = ruleset.calendar.endOf(steps.at(-1)!);
  steps.unshift(addDays(options.from, -1));

  const { users: records, accountTraits, claimedVisitors } = history instanceof EventHistory ? history.finish() : history;
  const byTraitOrder = (a: TraitEntry, b: TraitEntry) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.seq - b.seq);
  const newHistory = (type: EntityHistoryResult['type'], id: string, firstSeen: string): EntityHistoryResult => ({ type, id, firstSeen, transitions: [], firstFired: {}, maxScore: [] });

  const users: UserRun[] = [];
  for (const record of records.values()) {
    if (record.firstSeen > lastStep) continue;
    record.traits.sort(byTraitOrder);
    record.late.sort(byReceipt);
    users.push({
      place: 0,
      record,
      dayList: [...record.days.values()].sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0)),
      upto: 0,
      lateCounted: 0,
      ownRecord: false,
      totals: { lifetime: emptyRollup('lifetime'), firstSeen: record.firstOnTime, lastSeen: null },
      traitCursor: 0,
      traits: {},
      accounts: [],
      evaluated: false,
      stableUntil: Number.NEGATIVE_INFINITY,
      accountsJoined: 0,
      history: { ...newHistory(record.kind, record.id, record.firstSeen), ...(record.merged !== undefined && record.merged.at <= lastStep ? { mergedInto: record.merged.into } : {}) },
      best: Number.NEGATIVE_INFINITY,
      decideAt: Number.POSITIVE_INFINITY,
      fired: undefined,
      // Set later, named now: users keep one shape, so the step loop's reads of them stay fast.
      state: undefined,
      signup: undefined,
      lastLook: undefined,
    });
  }
  users.sort((a, b) => (a.record.id < b.record.id ? -1 : a.record.id > b.record.id ? 1 : 0));
  users.forEach((user, place) => (user.place = place));

  const accountsById = new Map<string, AccountRun>();
  for (const user of users) {
    for (const [accountId, joinedAt] of user.record.accounts) {
      if (joinedAt > lastStep) continue;
      let account = accountsById.get(accountId);
      if (!account) {
        const traitEntries = (accountTraits.get(accountId) ?? []).sort(byTraitOrder);
        account = { id: accountId, traitEntries, traitCursor: 0, traits: {}, members: [], joinedFirst: joinedAt, marked: false, traitsMoved: false, history: newHistory('account', accountId, joinedAt), best: Number.NEGATIVE_INFINITY, decideAt: Number.POSITIVE_INFINITY, fired: undefined };
        accountsById.set(accountId, account);
      }
      if (joinedAt < account.joinedFirst) account.joinedFirst = joinedAt;
      account.members.push([user, joinedAt]);
      user.accounts.push([account, joinedAt]);
    }
  }
  const accounts = [...accountsById.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const account of accounts) account.history.firstSeen = account.joinedFirst;
  for (const account of accounts) account.members.sort(([a], [b]) => (a.record.id < b.record.id ? -1 : a.record.id > b.record.id ? 1 : 0));
  for (const user of users) user.accounts.sort(([a], [b]) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  const accountsEvaluated = ruleset.evaluatesAccounts;
  const scoreRange: ReplayResult['scoreRange'] = { user: null, account: null };

  const record = (lead: Lead, type: 'user' | 'account', evaluation: ReturnType<typeof evaluate>, at: string) => {
    const { signals } = evaluation;
    const fired = (lead.fired ??= new Uint8Array(Object.keys(signals).length));
    let place = 0;
    for (const name in signals) {
      if (fired[place] === 0 && signals[name]!.matched) {
        fired[place] = 1;
        lead.history.firstFired[name] = at;
      }
      place++;
    }
    const score = evaluation.score.total;
    if (score > lead.best) {
      lead.best = score;
      lead.history.maxScore.push({ at, score });
    }
    const range = scoreRange[type];
    if (range === null) scoreRange[type] = { min: score, max: score };
    else {
      if (score < range.min) range.min = score;
      if (score > range.max) range.max = score;
    }
  };
  /** `changes`: what lead-state's nextDecisionAt works out from, when the caller has it already. */
  const decideFor = (lead: Lead, evaluation: ReturnType<typeof evaluate>, facts: EntityFacts, now: Date, at: string, convertedAt: string | null, changes?: TimeChanges): boolean => {
    const { state, transition } = decide(lead.state, evaluation, facts, ruleset, now, convertedAt);
    // The history of reasons is for lead events only; dropping it keeps the replay's memory flat.
    lead.state = state.history.length === 0 ? state : { ...state, history: [] };
    lead.decideAt = nextDecisionAt(state, evaluation, facts, ruleset, now, defaultDecayIntervalMs, changes);
    if (state.conversion) lead.history.convertedAt = state.conversion.at;
    if (!transition) return false;
    lead.history.transitions.push({ at, from: transition.previousTier, to: transition.tier });
    return true;
  };

  const userDecays = decayIntervalMatters(ruleset, 'user');
  /**
   * Evaluates a user at a step (`changed`: it has new days; `accountTraitsRead`: an account's traits its rules read
   * moved, which the evaluator judges as a change of the account's members), and runs the lead state machine when the
   * evaluator would.
   */
  const evaluateUser = (user: UserRun, at: string, now: Date, atMs: number, changed: boolean, accountTraitsRead: boolean) => {
    let look = user.lastLook;
    // Set when the user is evaluated now and no user signal decays: the moments stableUntil comes from are then
    // those nextDecisionAt would work out again (the decay interval is all that tells them apart).
    let changes: TimeChanges | undefined;
    // With nothing new and nothing time can move since a lead's last evaluation (stableUntil), the engine would say
    // again what it said then, with the same facts as far as they reach (windows only shrink), so its state machine
    // runs on that evaluation: leads were most of a replay's evaluations.
    if (look === undefined || atMs >= user.stableUntil || options.reevaluateAll) {
      // The signup time moves only with the traits and first seen (core/facts' signupDay, computed once for both uses).
      if (user.signup === undefined || user.signup.cursor !== user.traitCursor || user.signup.firstSeen !== user.totals.firstSeen) {
        user.signup = { cursor: user.traitCursor, firstSeen: user.totals.firstSeen, at: signupTime({ traits: user.traits, firstSeen: user.totals.firstSeen }, ruleset) };
      }
      const signupAt = user.signup.at;
      const facts = userFacts({
        id: user.record.id,
        traits: user.traits,
        accountTraits: user.accounts.length === 0 ? noAccountTraits : user.accounts.filter(([, joinedAt]) => joinedAt <= at).map(([account]) => account.traits),
        totals: user.totals,
        days: daysInReach(user.dayList, user.upto, rangesInReach(ruleset, now, signupAt === null ? null : ruleset.calendar.dayOf(signupAt))),
      });
      const evaluation = evaluate(facts, ruleset, now);
      record(user, 'user', evaluation, at);
      // Decay moves points at once: the next step evaluates again.
      const moments = changesByTimeAt(facts, evaluation, ruleset, now, 1);
      user.stableUntil = moments.any;
      if (!userDecays) changes = moments;
      look = { facts, evaluation };
    }
    const { facts, evaluation } = look;
    if (changed || accountTraitsRead || (user.state?.tier ?? null) !== null || user.decideAt <= atMs) {
      const previous = user.state;
      decideFor(user, evaluation, facts, now, at, conversionKnownBy(user.record.conversions, at), changes);
      user.evaluated = true;
      // The accounts the evaluator would mark after saving this user.
      if (movesAccounts(ruleset, previous, user.state!, changed)) markAccounts(user, at);
    }
    // Kept for leads only: the others are not looked at while nothing moves, and memory stays that of the leads.
    user.lastLook = (user.state?.tier ?? null) !== null ? look : undefined;
  };

  const stepTimes = steps.map((day) => ruleset.calendar.endOf(day));
  const stepMs = stepTimes.map((at) => Date.parse(at));
  /**
   * The users each step looks at, by their place in `users`. A user is looked at again only from the first step at
   * which something can have changed for it (nextVisit): new days, traits, accounts or merged identities, the time
   * its evaluation or its sweep moves, a lead's conversion; the accounts' new traits call their members (below). At
   * any other step the pass would find nothing new and skip the user (a lead too: its state machine, run on the same
   * evaluation, would keep its tier), so not looking changes nothing; a user looked at once more than needed is
   * skipped as before.
   */
  const visits: number[][] = steps.map(() => []);
  /** The first step from `from` whose time is not before `time`, an ISO 8601 time or epoch ms (none: steps.length; NaN: `from`). */
  const firstStepAt = (time: string | number, from: number) =>
    firstNotBelow(from, steps.length, typeof time === 'string' ? (index) => stepTimes[index]! < time : (index) => stepMs[index]! < time);
  users.forEach((user, place) => visits[firstStepAt(firstKnownAt(user.record), 0)]?.push(place));
  /**
   * The accounts whose traits change at each step: a step applies only theirs, rather than asking every account
   * (accounts x steps, for a year of daily steps over many accounts).
   */
  const traitSteps: AccountRun[][] = steps.map(() => []);
  for (const account of accounts) {
    let last = -1;
    for (const entry of account.traitEntries) {
      const step = firstStepAt(entry.at, 0);
      if (step !== last && step < steps.length) traitSteps[step]!.push(account);
      last = step;
    }
  }
  const nextVisit = (user: UserRun, index: number): number => {
    const after = index + 1;
    if (options.reevaluateAll) return after;
    let next = Math.min(firstStepAt(user.stableUntil, after), firstStepAt(user.decideAt, after));
    const conversion = leadConversionAhead(user);
    if (conversion !== null) next = Math.min(next, firstStepAt(conversion, after));
    if (user.upto < user.dayList.length) {
      const day = user.dayList[user.upto]!.day;
      next = Math.min(next, firstNotBelow(after, steps.length, (index) => steps[index]! < day));
    }
    const traits = user.record.traits;
    if (user.traitCursor < traits.length) next = Math.min(next, firstStepAt(traits[user.traitCursor]!.at, after));
    const late = user.record.late;
    if (user.lateCounted < late.length) next = Math.min(next, firstStepAt(late[user.lateCounted]!.receivedAt, after));
    for (const join of user.record.joins) next = Math.min(next, firstStepAt(join.at, after));
    // The step its claim merges it into another user: a lead leaves its tier then, as the evaluator has it in that run.
    if (user.record.merged !== undefined) next = Math.min(next, firstStepAt(user.record.merged.at, after));
    for (const [, joinedAt] of user.accounts) if (joinedAt > stepTimes[index]!) next = Math.min(next, firstStepAt(joinedAt, after));
    return next;
  };

  steps.forEach((day, index) => {
    const at = stepTimes[index]!;
    const now = new Date(at);
    const atMs = stepMs[index]!;
    const due = visits[index]!;
    const traitsMoved = traitSteps[index]!;
    for (const account of traitsMoved) {
      while (account.traitCursor < account.traitEntries.length && account.traitEntries[account.traitCursor]!.at <= at) {
        Object.assign(account.traits, account.traitEntries[account.traitCursor]!.traits);
        account.traitCursor++;
      }
      account.traitsMoved = true;
      for (const [member, joinedAt] of account.members) if (joinedAt <= at) due.push(member.place);
    }

    // In the users' order, as a pass over all of them would; a user may be due for several reasons.
    due.sort((a, b) => a - b);
    let previous = -1;
    for (const place of due) {
      if (place === previous) continue;
      previous = place;
      const user = users[place]!;
      if (firstKnownAt(user.record) > at) continue;
      // Merged into another user: the evaluator forwards its changes there, and a lead leaves its tier (mergedAway).
      if (user.record.merged !== undefined && user.record.merged.at <= at) {
        if (user.state !== undefined && user.state.tier !== null) {
          // As the evaluator's leaveJudged: the lead's days so far are saved with its exit, and its accounts, whose
          // member left its tier, are judged again.
          countDaysTo(user, day, at, ruleset);
          const { state, transition } = mergedAway(user.state, { id: user.record.merged.into }, ruleset, now);
          user.state = { ...state, history: [] };
          user.history.transitions.push({ at, from: transition.previousTier, to: transition.tier });
          markAccounts(user, at);
        }
        continue;
      }
      if (joinClaimed(user, at)) user.stableUntil = Number.NEGATIVE_INFINITY;
      const changed = countDaysTo(user, day, at, ruleset);
      const entries = user.record.traits;
      const traitsBefore = user.traitCursor;
      while (user.traitCursor < entries.length && entries[user.traitCursor]!.at <= at) Object.assign(user.traits, entries[user.traitCursor++]!.traits);

      // Nothing new, no tier (so no lead state to move) and nothing time can change: the engine would say again what
      // it said at the last evaluation, which the history already holds. Skipping it changes no figure.
      let accountsJoined = 0;
      let accountTraitsMoved = false;
      for (const [account, joinedAt] of user.accounts) {
        if (joinedAt > at) continue;
        accountsJoined++;
        if (account.traitsMoved) accountTraitsMoved = true;
      }
      const stale = changed || user.traitCursor > traitsBefore || accountsJoined !== user.accountsJoined || accountTraitsMoved;
      user.accountsJoined = accountsJoined;
      if (stale) user.stableUntil = Number.NEGATIVE_INFINITY;
      const conversion = leadConversionAhead(user);
      const skip = !stale && atMs < user.stableUntil && atMs < user.decideAt && (conversion === null || conversion > at) && !options.reevaluateAll;
      if (!skip) evaluateUser(user, at, now, atMs, changed, accountTraitsMoved && usersReadAccountTraits(ruleset));
      visits[nextVisit(user, index)]?.push(place);
    }

    if (accountsEvaluated) {
      for (const account of accounts) {
        const { marked } = account;
        account.marked = false;
        if (account.joinedFirst > at) continue;
        const facts = accountFacts(account, membersAt(account, at, now, ruleset));
        const evaluation = evaluate(facts, ruleset, now);
        record(account, 'account', evaluation, at);
        // As the evaluator judges an account: when a member's evaluation moves it, its traits change, or time alone
        // can move it (a sweep). A lead decided at every step would see at once what the evaluator learns only then: a
        // member joined under an id aliased away that day, whose changes go to the user it merged into.
        if (marked || account.traitsMoved || account.decideAt <= atMs) decideFor(account, evaluation, facts, now, at, accountConvertedAt(account, at, now, ruleset));
      }
    }
    for (const account of traitsMoved) account.traitsMoved = false;
    if (index > 0) options.onStep?.(index, steps.length - 1);
  });

  // Conversions not known by the last step (after it: a history read up to a --to keeps those; or received after it):
  // the report's horizon reaches past the period, and a lead of its last days converts then. An account's, at its first
  // member's; its group traits after the period are not read.
  // A conversion known after the last step is earlier than any known by then: it moves the recorded one earlier.
  const knownAfter = (record: UserRecord) => {
    const last = record.conversions.at(-1);
    return last !== undefined && last.knownAt > lastStep ? last.at : null;
  };
  for (const user of users) {
    const at = knownAfter(user.record);
    if (at !== null) user.history.convertedAt = at;
  }
  if (accountsEvaluated && ruleset.file.conversion) {
    for (const account of accounts) {
      const later = account.members.flatMap(([member]) => knownAfter(member.record) ?? []);
      const at = accountConversion(ruleset.file.conversion, {}, later, new Date(lastStep));
      if (at !== null && (account.history.convertedAt === undefined || at < account.history.convertedAt)) account.history.convertedAt = at;
    }
  }
  const entities: EntityHistoryResult[] = [...users.map((user) => user.history), ...(accountsEvaluated ? accounts.map((account) => account.history) : [])];
  if (!accountsEvaluated) {
    // Accounts are counted as seen even when no rule looks at them (the report says how many there were).
    for (const account of accounts) entities.push(account.history);
  }
  return {
    from: options.from,
    to: steps.at(-1)!,
    stepDays,
    steps: stepTimes.slice(1),
    entities,
    scoreRange,
    accountsEvaluated,
    claimedVisitors: claimedVisitors.filter((claimed) => claimed.at <= lastStep).map(({ id, into }) => ({ id, into })).sort(byId),
  };
}

const byId = <T extends { id: string }>(a: T, b: T) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * Merges the histories claimed for the user by `at` (a step's end) and has the user re-read from its first day, as
 * the evaluator rebuilds a user whose merged identities changed: the next pass over the days counts them all.
 */
function joinClaimed(user: UserRun, at: string): boolean {
  if (user.record.joins.length === 0) return false;
  const due = user.record.joins.filter((join) => join.at <= at);
  if (due.length === 0) return false;
  // A copy: the record's own history is what it brings to the users it merges into later (an aliased user), and
  // every identifier joins each claimant on its chain directly (finish), so a join brings no joins of its own.
  user.record = { ...user.record, days: new Map(user.record.days), sessions: new Map(user.record.sessions), joins: user.record.joins.filter((join) => join.at > at) };
  user.ownRecord = true;
  for (const { record } of due) mergeRecord(user.record, record);
  user.dayList = [...user.record.days.values()].sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
  user.upto = 0;
  // The late events counted so far went into the days read again from the start: counted again, with the joined ones.
  user.lateCounted = 0;
  user.totals = { lifetime: emptyRollup('lifetime'), firstSeen: user.record.firstOnTime, lastSeen: null };
  return true;
}

/** Marks the accounts the user is a member of by `at` for their decision at this step (the evaluator's movedAccounts). */
function markAccounts(user: UserRun, at: string): void {
  for (const [account, joinedAt] of user.accounts) if (joinedAt <= at) account.marked = true;
}

/**
 * Adds the user's days up to the step's `day`, and the late events received by `at`, to what it has counted (its
 * totals). Whether it counted any.
 */
function countDaysTo(user: UserRun, day: string, at: string, ruleset: Ruleset): boolean {
  const before = user.upto;
  const lateCounted = countLateEvents(user, at, ruleset);
  const fresh: DayRollup[] = [];
  while (user.upto < user.dayList.length && user.dayList[user.upto]!.day <= day) fresh.push(user.dayList[user.upto++]!);
  // Only what a rule reads of the lifetime is added up, as the evaluator saves it (core/facts' pruneLifetime):
  // merging every measure of every new day into a new lifetime was a tenth of the replay.
  if (fresh.length > 0) user.totals = addToTotals(ruleset, user.totals, fresh.map((rollup) => pruneLifetime(rollup, ruleset)), [], null);
  return user.upto > before || lateCounted;
}

/**
 * Counts the user's late events received by `at` into their days (EventHistoryOptions.asReceived), as the evaluator
 * recomputes a day an event arrives for: a day already counted is replaced in the totals, as the evaluator's are.
 * Whether it counted any.
 */
function countLateEvents(user: UserRun, at: string, ruleset: Ruleset): boolean {
  const { late } = user.record;
  const start = user.lateCounted;
  while (user.lateCounted < late.length && late[user.lateCounted]!.receivedAt <= at) user.lateCounted++;
  if (user.lateCounted === start) return false;
  const byDay = new Map<string, UsageEvent[]>();
  let earliest = user.totals.firstSeen;
  for (const { day, usage } of late.slice(start, user.lateCounted)) {
    const events = byDay.get(day);
    if (events) events.push(usage);
    else byDay.set(day, [usage]);
    if (earliest === null || usage.timestamp < earliest) earliest = usage.timestamp;
  }
  // The first seen moves earlier now, as the evaluator's does when it reads the late events.
  if (earliest !== user.totals.firstSeen) user.totals = { ...user.totals, firstSeen: earliest };
  // The history's record may be read by the users it merges into later (an aliased user): its sessions stay as read.
  if (!user.ownRecord) {
    user.record = { ...user.record, sessions: new Map(user.record.sessions) };
    user.ownRecord = true;
  }
  const { dayList } = user;
  for (const [day, events] of byDay) {
    const index = firstNotBelow(0, dayList.length, (i) => dayList[i]!.day < day);
    const old = dayList[index]?.day === day ? dayList[index] : undefined;
    const rollup = withDayPart(user.record, old, day, events, ruleset);
    if (old) dayList[index] = rollup;
    else dayList.splice(index, 0, rollup);
    if (index >= user.upto) continue;
    // A day already counted: the totals take the new one in place of the old.
    if (!old) user.upto++;
    user.totals = addToTotals(ruleset, user.totals, [pruneLifetime(rollup, ruleset)], old ? [pruneLifetime(old, ruleset)] : [], null);
  }
  return true;
}

/**
 * When the conversion a lead's state machine has yet to record is known (null: none, or no tier). It is the one thing
 * the state machine, run again on a lead's last evaluation with nothing else new, would change (decide: the tier and
 * score stay).
 */
function leadConversionAhead(user: UserRun): string | null {
  if (user.state === undefined || user.state.tier === null || user.state.conversion !== undefined) return null;
  return user.record.conversions[0]?.knownAt ?? null;
}

/** When the evaluator knows of the entity: its first message on time, or its first late event's receipt. */
function firstKnownAt(record: UserRecord): string {
  const firstLate = record.late[0]?.receivedAt;
  if (record.firstOnTime === null) return firstLate ?? record.firstSeen;
  return firstLate !== undefined && firstLate < record.firstOnTime ? firstLate : record.firstOnTime;
}

/** The rollups of a sorted day list in the ranges; only days at or before the step (the first `upto` of the list). */
function daysInReach(dayList: readonly DayRollup[], upto: number, ranges: readonly DayRange[]): DayRollup[] {
  if (ranges.length === 0 || upto === 0) return [];
  const lowest = ranges.reduce((low, { from }) => (from < low ? from : low), ranges[0]!.from);
  const days: DayRollup[] = [];
  for (let i = firstNotBelow(0, upto, (index) => dayList[index]!.day < lowest); i < upto; i++) {
    const rollup = dayList[i]!;
    if (inReach(ranges, rollup.day)) days.push(rollup);
  }
  return days;
}

/** The first index in [from, to) at which `below` is false, `below` being true up to some index and false after it (`to` for none). */
function firstNotBelow(from: number, to: number, below: (index: number) => boolean): number {
  let low = from;
  let high = to;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (below(middle)) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** An account's conversion as the evaluator would see it at the step: from its traits then, and its members' states. */
function accountConvertedAt(account: AccountRun, at: string, now: Date, ruleset: Ruleset): string | null {
  if (!ruleset.file.conversion) return null;
  const memberConversions = account.members.filter(([member, joinedAt]) => joinedAt <= at && member.evaluated).map(([member]) => member.state?.conversion?.at);
  return accountConversion(ruleset.file.conversion, account.traits, memberConversions, now);
}

/**
 * What the evaluator's store holds of an account's members at the step: those joined by then, each with its state
 * as last decided (none until the lead state machine ran for it), its totals as last saved (a lead leaving its tier for
 * the user it merged into saves the days it counted then: its last activity too) and its day rollups in reach.
 */
function membersAt(account: AccountRun, at: string, now: Date, ruleset: Ruleset): MemberRows[] {
  const members: MemberRows[] = [];
  for (const [member, joinedAt] of account.members) {
    if (joinedAt > at) continue;
    const lead = member.evaluated ? member.state : undefined;
    if (!lead) {
      members.push({ id: member.record.id, days: [] });
      continue;
    }
    const state = { lead, lifetime: member.totals.lifetime, firstSeen: member.totals.firstSeen, lastSeen: member.totals.lastSeen };
    members.push({ id: member.record.id, state, days: daysInReach(member.dayList, member.upto, memberRangesInReach(state, ruleset, now)) });
  }
  return members;
}

/** A share of a finished history: some users (with what merged into them) and every account's traits. */
export interface ReplayPartition {
  ruleset: Ruleset;
  users: Map<string, UserRecord>;
  accountTraits: Map<string, TraitEntry[]>;
  /** Anonymous visitors claimed by a user and not judged on their own: when their claim began, and the user. */
  claimedVisitors: ClaimedVisitor[];
}

interface ClaimedVisitor {
  id: string;
  at: string;
  into: string;
}

/**
 * Splits a history by entity into `count` partitions that replay apart: `replay` on each, then `mergeReplays`,
 * gives exactly what `replay` on the whole gives (test/unit/replay-skip.test.ts). Users never read each other's
 * state; what merged into a user travels with it; accounts read their members, so a user and its accounts (and their
 * other members) stay in one partition, as do entities of the same id (their order in the report is kept). Account
 * traits are read-only and shared. Which partition is a hash of the group's first id: the same input always splits
 * the same way, so partitions could run in other threads or on other machines.
 */
export function partitionHistory(history: EventHistory, count: number): ReplayPartition[] {
  if (!Number.isInteger(count) || count < 1) throw new Error('count must be a whole number, at least 1');
  const { users, accountTraits, claimedVisitors } = history.finish();
  const groups = new Groups<string>();
  for (const [key, record] of users) {
    groups.join(key, `id:${record.id}`);
    for (const accountId of record.accounts.keys()) groups.join(key, `account:${accountId}`);
  }
  const partitions: ReplayPartition[] = Array.from({ length: count }, () => ({ ruleset: history.ruleset, users: new Map(), accountTraits, claimedVisitors: [] }));
  const partitionOf = (key: string) => partitions[hash52(groups.find(key)) % count]!;
  for (const [key, record] of users) partitionOf(key).users.set(key, record);
  // With the user it merged into, which has a record (finish makes one for a claimant with no message of its own).
  for (const claimed of claimedVisitors) partitionOf(identityKey({ kind: 'user', id: claimed.into })).claimedVisitors.push(claimed);
  return partitions;
}

/** The replay of a whole history from the replays of its partitions (partitionHistory), in the same order. */
export function mergeReplays(parts: readonly ReplayResult[]): ReplayResult {
  const first = parts[0];
  if (first === undefined) throw new Error('mergeReplays: no replay to merge');
  for (const part of parts) {
    if (part.from !== first.from || part.to !== first.to || part.stepDays !== first.stepDays || part.accountsEvaluated !== first.accountsEvaluated) {
      throw new Error('mergeReplays: the replays cover different periods or steps');
    }
  }
  // Stable sorts: entities of the same id (a user and a visitor, say) come from one partition, in its order.
  const users = parts.flatMap((part) => part.entities.filter((entity) => entity.type !== 'account')).sort(byId);
  const accounts = parts.flatMap((part) => part.entities.filter((entity) => entity.type === 'account')).sort(byId);
  const range = (type: 'user' | 'account') => {
    let merged: { min: number; max: number } | null = null;
    for (const part of parts) {
      const own = part.scoreRange[type];
      if (own === null) continue;
      merged = merged === null ? { ...own } : { min: Math.min(merged.min, own.min), max: Math.max(merged.max, own.max) };
    }
    return merged;
  };
  return {
    from: first.from,
    to: first.to,
    stepDays: first.stepDays,
    steps: first.steps,
    entities: [...users, ...accounts],
    scoreRange: { user: range('user'), account: range('account') },
    accountsEvaluated: first.accountsEvaluated,
    claimedVisitors: parts.flatMap((part) => part.claimedVisitors).sort(byId),
  };
}
