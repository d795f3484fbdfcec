import { ClaimSet, claimsOf, identityKey, type Identity } from '../../core/identity';
import type { AcceptedMessage } from '../../core/messages';
import { eventName } from '../../core/rules/engine';
import type { Conversion } from '../metrics';

/**
 * Signal discovery, first step (then select.ts and present.ts): validated messages, read one at a time in one
 * streaming pass, become a compact per-user aggregate: per event name, the times of the user's events; per event
 * property, the time each distinct value was first seen.
 *
 * Every candidate signal is computed only from events BEFORE the user's conversion (or before the cutoff, for users
 * who did not convert): the collector drops later events as it reads them (an aliased id's once every alias is
 * read), so nothing after a conversion can ever make a candidate fire.
 *
 * It reads messages as the rules engine does (signup = the signup trait, else the first message; distinct values =
 * String(value) cut to 200 characters; a message repeating the user, day and messageId of another counts once, as
 * ingest stores it), so the suggested rules file fires for the users discover measured (test/unit/discover.test.ts
 * checks it with the engine).
 *
 * Identities resolve as the evaluator resolves them (core/identity): an anonymous visitor's messages are kept aside
 * and join the user that claimed it once everything is read; a userId aliased into another joins that user's
 * activity, less what came at or after that user's conversion (a conversion listed under the aliased id, or under a
 * claimed visitor's anonymousId, is the user's, the earliest of a person's counting); visitors nobody claimed are left
 * out (counted, and so are conversions listed under them). A
 * merged identity brings its events, never its traits: the user's signup is its own signup trait, else its first
 * message, a merged identity's included (ingest keeps traits under the message's own id, README's Identity).
 *
 * Limits, by design: users only (account conversions are counted and reported, not analysed); distinct counts keep each user's 12 earliest values per event property, which is exact unless
 * more than 7 of them came before the signup day; only top-level scalar properties are candidates.
 */

/** A conversion, as the conversions file gives it (readConversions). Users' and visitors' are used: discovery works per user. */
export type DiscoveryConversion = Conversion;

/** What discovery needs of a validated message (`validateMessage` in core/messages gives exactly this). */
export type DiscoveryMessage = Pick<AcceptedMessage, 'type' | 'timestamp' | 'identity' | 'messageId' | 'message'> & Partial<Pick<AcceptedMessage, 'name' | 'traits'>>;

export interface DiscoveryCollectorOptions {
  /** The trait that holds the signup time, as the rules' `signup.trait`; null to use the first message. @default createdAt */
  signupTrait?: string | null;
  /** Ignore every message at or after this time, and conversions at or after it. @default none (the end of the data) */
  cutoff?: Date;
}

/** What the collector read, and what of it it left out. */
export interface DiscoveryInput {
  messages: number;
  /** Messages that repeated the user, day and messageId of an earlier one: counted once, as ingest stores them. */
  duplicates: number;
  productEvents: number;
  /** Messages dropped because they came at or after their user's conversion: never counted. */
  afterConversion: number;
  /** Messages at or after the cutoff. */
  afterCutoff: number;
  users: number;
  /** Identifiers (anonymous visitors, aliased userIds) whose activity joined a user's. */
  mergedIdentifiers: number;
  /** Anonymous visitors nobody claimed: left out. */
  anonymousLeftOut: number;
  /**
   * Conversions listed: under userIds, under anonymous ids (a visitor's is its user's), of accounts (not analysed); the
   * anonymous ids nobody claimed (left out), the users with no events, and those converted before their first message.
   */
  conversions: { users: number; visitors: number; accounts: number; unclaimedVisitors: number; unseen: number; beforeFirstMessage: number };
}

/** A user's conversion time when the user never converted (before the cutoff). */
export const noConversion = Number.POSITIVE_INFINITY;
/** Distinct values kept per user, event and property: the earliest ones, enough for the thresholds and slack. */
const keptDistinctValues = 12;
/** Property names tracked per event: client-made names are unbounded, the analysis needs a handful. */
const maxPropertiesPerEvent = 32;
/** Keys combine an event index and a property index into one number. */
const propertySpace = 1 << 16;

/** The key of one event's property in `UserActivity.distinct` and wherever distinct candidates are looked up. */
export function distinctKey(eventIndex: number, propertyIndex: number): number {
  return eventIndex * propertySpace + propertyIndex;
}

export interface UserActivity {
  convertedMs: number;
  firstMs: number;
  /** The signup trait's value and the time of the user's own identify call that brought it (the latest wins). */
  trait: unknown;
  traitMs: number;
  /**
   * Event index -> times (epoch ms) of its events, in arrival order. Times, not days (8 bytes each either way): an
   * aliased id's events may be read before its alias, so its user's conversion cuts them at the end (mergeAliased),
   * to the millisecond as it cuts the user's own.
   */
  events: Map<number, number[]>;
  /** distinctKey(event index, property index) -> flat [hash, first time (epoch ms), hash, first time, ...]. */
  distinct: Map<number, number[]>;
}

/**
 * One streaming pass over validated messages, kept as a compact per-user aggregate: per event name, the times of
 * the user's events; per event property, the time each distinct value was first seen (the earliest few). Messages
 * at or after the user's conversion are dropped on arrival (an aliased id's, at the end: see mergeAliased), so they
 * cannot influence anything downstream.
 * Memory: about 8 bytes per product event, plus a small constant per user, event and property.
 */
export class DiscoveryCollector {
  readonly signupTrait: string | null;
  private readonly cutoffMs: number;
  private readonly conversionMs = new Map<string, number>();
  /** Conversions listed under anonymous ids: whose they are is known only once every claim is read. */
  private readonly visitorConversionMs = new Map<string, number>();
  private readonly users = new Map<string, UserActivity>();
  private readonly eventIndex = new Map<string, number>();
  private readonly eventNames: string[] = [];
  private readonly propertyIndex = new Map<string, number>();
  private readonly propertyNames: string[] = [];
  /** Per event index: the property indexes seen on it. */
  private readonly eventProperties: Set<number>[] = [];
  /** Users with a message only after their conversion. */
  private readonly lateConverters = new Set<string>();
  private readonly conversionCounts = { users: 0, visitors: 0, accounts: 0, unclaimedVisitors: 0 };
  private counts = { messages: 0, duplicates: 0, productEvents: 0, afterConversion: 0, afterCutoff: 0 };
  /** 53-bit fingerprints of user, day and messageId, to count a repeated message once. */
  private readonly seen = new Set<number>();
  private readonly claims = new ClaimSet();
  /** Anonymous visitors' messages, by anonymousId: whose they are is known only once every claim is read. */
  private readonly visitorMessages = new Map<string, DiscoveryMessage[]>();
  private identities = { merged: 0, anonymousLeftOut: 0, resolved: false };
  private firstMs = Number.POSITIVE_INFINITY;
  private lastMs = Number.NEGATIVE_INFINITY;

  constructor(conversions: Iterable<DiscoveryConversion>, options: DiscoveryCollectorOptions = {}) {
    this.signupTrait = options.signupTrait === undefined ? 'createdAt' : options.signupTrait;
    this.cutoffMs = options.cutoff ? options.cutoff.getTime() : Number.POSITIVE_INFINITY;
    for (const conversion of conversions) {
      if (conversion.type === 'account') {
        this.conversionCounts.accounts++;
        continue;
      }
      const at = Date.parse(conversion.convertedAt);
      if (Number.isNaN(at) || at >= this.cutoffMs) continue;
      const byId = conversion.type === 'user' ? this.conversionMs : this.visitorConversionMs;
      const known = byId.get(conversion.id);
      // The first conversion is the one signals must precede.
      if (known === undefined) this.conversionCounts[conversion.type === 'user' ? 'users' : 'visitors']++;
      if (known === undefined || at < known) byId.set(conversion.id, at);
    }
  }

  /** Adds one validated message. Order does not matter. */
  add(message: DiscoveryMessage): void {
    if (this.identities.resolved) throw new Error('DiscoveryCollector: add() after snapshot()');
    this.counts.messages++;
    const ms = Date.parse(message.timestamp);
    if (!(ms < this.cutoffMs)) {
      this.counts.afterCutoff++;
      return;
    }
    for (const claim of claimsOf(message.message)) this.claims.add(claim);
    if (message.identity.kind === 'visitor') {
      const list = this.visitorMessages.get(message.identity.id);
      if (list) list.push(message);
      else this.visitorMessages.set(message.identity.id, [message]);
      return;
    }
    this.addForUser(message.identity.id, message, ms);
  }

  /** Counts a message as the user's: its own, or one of an identity merged into it. */
  private addForUser(key: string, message: DiscoveryMessage, ms: number): void {
    // Ingest keys a stored event by user, day and messageId: a repeat rewrites the same item, so it counts once here too.
    const fingerprint = messageFingerprint(identityKey(message.identity), message.timestamp, message.messageId);
    if (this.seen.has(fingerprint)) {
      this.counts.duplicates++;
      return;
    }
    this.seen.add(fingerprint);
    if (ms >= this.conversionOf(key)) {
      this.droppedAfterConversion(key, 1);
      return;
    }
    const user = this.activityOf(key, ms);
    if (ms < this.firstMs) this.firstMs = ms;
    if (ms > this.lastMs) this.lastMs = ms;

    if (message.type === 'identify') {
      // The user's own identify calls only: a claimed visitor's traits stay the visitor's, as in the evaluator.
      const own = message.identity.kind === 'user' && message.identity.id === key;
      if (own && this.signupTrait !== null && ms >= user.traitMs) {
        const traits = message.traits ?? (message.message['traits'] as Record<string, unknown> | undefined);
        if (traits && Object.hasOwn(traits, this.signupTrait)) {
          user.trait = traits[this.signupTrait];
          user.traitMs = ms;
        }
      }
      return;
    }
    const name = eventName({ type: message.type, event: message.name ?? (message.message['event'] as string | undefined), timestamp: message.timestamp });
    if (name === undefined || name === '*') return;
    this.counts.productEvents++;
    let index = this.eventIndex.get(name);
    if (index === undefined) {
      index = this.eventNames.length;
      this.eventIndex.set(name, index);
      this.eventNames.push(name);
      this.eventProperties.push(new Set());
    }
    const times = user.events.get(index);
    if (times === undefined) user.events.set(index, [ms]);
    else times.push(ms);

    const properties = message.message['properties'];
    if (properties === null || typeof properties !== 'object' || Array.isArray(properties)) return;
    const seen = this.eventProperties[index]!;
    for (const property in properties) {
      if (!Object.hasOwn(properties, property)) continue;
      const value = (properties as Record<string, unknown>)[property];
      const type = typeof value;
      if (type !== 'string' && type !== 'number' && type !== 'boolean') continue;
      // A dotted name would be read as a path by the rules engine.
      if (property.includes('.')) continue;
      let propertyIndex = this.propertyIndex.get(property);
      if (propertyIndex === undefined) {
        if (this.propertyNames.length >= propertySpace) continue;
        propertyIndex = this.propertyNames.length;
        this.propertyIndex.set(property, propertyIndex);
        this.propertyNames.push(property);
      }
      if (!seen.has(propertyIndex)) {
        if (seen.size >= maxPropertiesPerEvent) continue;
        seen.add(propertyIndex);
      }
      const text = type === 'string' ? (value as string) : String(value);
      addDistinct(user.distinct, distinctKey(index, propertyIndex), hashValue(text.length > 200 ? text.slice(0, 200) : text), ms);
    }
  }

  /** The user's conversion time, as the conversions gave it; noConversion for none. */
  private conversionOf(key: string): number {
    return this.conversionMs.get(key) ?? noConversion;
  }

  /** The user's activity, made at its first message kept (`ms`) if need be, first seen no later than `ms`. */
  private activityOf(key: string, ms: number): UserActivity {
    let user = this.users.get(key);
    if (user === undefined) {
      user = { convertedMs: this.conversionOf(key), firstMs: ms, trait: undefined, traitMs: Number.NEGATIVE_INFINITY, events: new Map(), distinct: new Map() };
      this.users.set(key, user);
      this.lateConverters.delete(key);
    }
    if (ms < user.firstMs) user.firstMs = ms;
    return user;
  }

  /** Never counted: a conversion must not be "predicted" by what happened after it. */
  private droppedAfterConversion(key: string, messages: number): void {
    this.counts.afterConversion += messages;
    if (!this.users.has(key)) this.lateConverters.add(key);
  }

  /**
   * Once every claim is read: visitors' messages join the users that claimed them, and a userId aliased into another
   * user joins that user's activity (mergeAliased).
   */
  private resolveIdentities(): void {
    if (this.identities.resolved) return;
    this.identities.resolved = true;
    // A conversion listed under a userId aliased into another user, or under a claimed visitor's anonymousId (a CRM that
    // knew the person by it), is that user's, the earliest of a person's counting: the user's activity is cut at it, as
    // if it had been known on arrival, before its visitors' and aliased ids' activity join it (cut by the same time).
    const listed: [Identity, number][] = [
      ...[...this.conversionMs].map(([id, ms]): [Identity, number] => [{ kind: 'user', id }, ms]),
      ...[...this.visitorConversionMs].map(([id, ms]): [Identity, number] => [{ kind: 'visitor', id }, ms]),
    ];
    for (const [identity, convertedMs] of listed) {
      const root = this.claims.rootOf(identity);
      if (root.kind === 'visitor') {
        this.conversionCounts.unclaimedVisitors++;
        continue;
      }
      if ((identity.kind === 'user' && root.id === identity.id) || convertedMs >= this.conversionOf(root.id)) continue;
      this.conversionMs.set(root.id, convertedMs);
      const user = this.users.get(root.id);
      if (user !== undefined) this.cutAtConversion(root.id, user);
    }
    for (const [anonymousId, messages] of this.visitorMessages) {
      const root = this.claims.rootOf({ kind: 'visitor', id: anonymousId });
      if (root.kind === 'visitor') {
        this.identities.anonymousLeftOut++;
        continue;
      }
      this.identities.merged++;
      for (const message of messages) this.addForUser(root.id, message, Date.parse(message.timestamp));
    }
    this.visitorMessages.clear();
    for (const [id, activity] of [...this.users]) {
      const root = this.claims.rootOf({ kind: 'user', id });
      if (root.id === id) continue;
      this.identities.merged++;
      this.users.delete(id);
      this.mergeAliased(root.id, activity);
    }
  }

  /**
   * Adds an aliased userId's activity to its user's. Only its events before the user's conversion: they were read
   * under their own id, maybe before the alias, and filtered then by that id's conversion (usually none); a product
   * event dropped here moves from productEvents to afterConversion (its other messages after the conversion, such as
   * identify calls, are not in that count: only the time of its first message is kept). Never its signup trait: a
   * merged identity's traits stay its own, as in the evaluator.
   */
  private mergeAliased(key: string, from: UserActivity): void {
    const convertedMs = this.conversionOf(key);
    const { events, distinct, dropped } = activityBefore(from, convertedMs);
    const into = from.firstMs < convertedMs ? this.activityOf(key, from.firstMs) : undefined;
    if (into) {
      for (const [event, times] of events) into.events.set(event, [...(into.events.get(event) ?? []), ...times]);
      for (const [slot, values] of distinct) for (let i = 0; i < values.length; i += 2) addDistinct(into.distinct, slot, values[i]!, values[i + 1]!);
    }
    this.counts.productEvents -= dropped;
    if (dropped > 0 || !into) this.droppedAfterConversion(key, dropped);
  }

  /**
   * Cuts a user's activity at its conversion, now known earlier (an aliased id's): its product events and distinct
   * values from then on are dropped, and so is its signup trait when an identify call from then on set it (the value
   * before it was not kept; the signup falls back to the first message). A user with no message before it is gone,
   * counted as converted before its first message.
   */
  private cutAtConversion(key: string, user: UserActivity): void {
    user.convertedMs = this.conversionOf(key);
    const { events, distinct, dropped } = activityBefore(user, user.convertedMs);
    user.events = events;
    user.distinct = distinct;
    if (user.traitMs >= user.convertedMs) {
      user.trait = undefined;
      user.traitMs = Number.NEGATIVE_INFINITY;
    }
    this.counts.productEvents -= dropped;
    if (user.firstMs >= user.convertedMs) this.users.delete(key);
    this.droppedAfterConversion(key, dropped);
  }

  /** The aggregate, for discover(). */
  snapshot(): ActivitySnapshot {
    this.resolveIdentities();
    // An aliased id's conversion is its user's (resolveIdentities): a person counted once, as its user.
    const isUser = (id: string) => this.claims.rootOf({ kind: 'user', id }).id === id;
    const unseen = [...this.conversionMs.keys()].filter((id) => isUser(id) && !this.users.has(id) && !this.lateConverters.has(id)).length;
    return {
      signupTrait: this.signupTrait,
      users: this.users,
      eventNames: this.eventNames,
      propertyNames: this.propertyNames,
      eventProperties: this.eventProperties,
      firstMs: this.firstMs,
      lastMs: this.lastMs,
      input: {
        ...this.counts,
        users: this.users.size,
        mergedIdentifiers: this.identities.merged,
        anonymousLeftOut: this.identities.anonymousLeftOut,
        conversions: { ...this.conversionCounts, unseen, beforeFirstMessage: [...this.lateConverters].filter(isUser).length },
      },
    };
  }
}

/** What the collector gathered, for select.ts's discover(). */
export interface ActivitySnapshot {
  signupTrait: string | null;
  users: ReadonlyMap<string, UserActivity>;
  eventNames: readonly string[];
  propertyNames: readonly string[];
  eventProperties: readonly ReadonlySet<number>[];
  firstMs: number;
  lastMs: number;
  input: DiscoveryInput;
}

/** A user's activity before `convertedMs`: its events' times and distinct values, and how many events came at or after. */
function activityBefore(activity: UserActivity, convertedMs: number): Pick<UserActivity, 'events' | 'distinct'> & { dropped: number } {
  const events = new Map<number, number[]>();
  const distinct = new Map<number, number[]>();
  let dropped = 0;
  for (const [event, times] of activity.events) {
    const before = times.filter((ms) => ms < convertedMs);
    dropped += times.length - before.length;
    if (before.length > 0) events.set(event, before);
  }
  for (const [slot, values] of activity.distinct) {
    const before: number[] = [];
    for (let i = 0; i < values.length; i += 2) if (values[i + 1]! < convertedMs) before.push(values[i]!, values[i + 1]!);
    if (before.length > 0) distinct.set(slot, before);
  }
  return { events, distinct, dropped };
}

/** Keeps the earliest `keptDistinctValues` distinct values (by the time first seen) of one user, event and property. */
function addDistinct(store: Map<number, number[]>, key: number, hash: number, ms: number) {
  const values = store.get(key);
  if (values === undefined) {
    store.set(key, [hash, ms]);
    return;
  }
  let latest = -1;
  for (let i = 0; i < values.length; i += 2) {
    if (values[i] === hash) {
      if (ms < values[i + 1]!) values[i + 1] = ms;
      return;
    }
    if (latest < 0 || values[i + 1]! > values[latest + 1]!) latest = i;
  }
  if (values.length < keptDistinctValues * 2) values.push(hash, ms);
  else if (ms < values[latest + 1]!) {
    values[latest] = hash;
    values[latest + 1] = ms;
  }
}

/**
 * 53 bits identifying user, day and messageId (two 32-bit FNV-1a variants over the three, no string built): ingest
 * keys a stored event by them. A chance collision among a million messages is about one in ten million.
 */
function messageFingerprint(userKey: string, timestamp: string, messageId: string): number {
  let a = 0x811c9dc5;
  let b = 0x01234567;
  const mix = (text: string, end: number) => {
    for (let i = 0; i < end; i++) {
      const code = text.charCodeAt(i);
      a = Math.imul(a ^ code, 0x01000193);
      b = Math.imul(b ^ code, 0x5bd1e995);
      b ^= b >>> 15;
    }
    a = Math.imul(a ^ 10, 0x01000193);
    b = Math.imul(b ^ 10, 0x5bd1e995);
  };
  mix(userKey, userKey.length);
  mix(timestamp, 10);
  mix(messageId, messageId.length);
  return ((a >>> 0) % 0x200000) * 0x100000000 + (b >>> 0);
}

/** FNV-1a, 32 bits: a value's identity for distinct counting (a collision among a user's handful of values is negligible). */
function hashValue(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
