import { EventsBudget, type EventsLease } from '../../functions/core/events-budget';
import { entityKey, laterWaitEnd } from '../../functions/core/changes';
import { addDays, calendarOf, type Calendar } from '../../functions/core/days';
import { inReach, type DayRange, type StoredEntityState } from '../../functions/core/facts';
import { entityPartitionKey, shardOf } from '../../functions/adapters/dynamodb/item-keys';
import type { LeadEvent } from '../../functions/core/lead-event';
import { claimsBefore, identityKey, type Claim, type Identity } from '../../functions/core/identity';
import { RunHoldsTooManyEventsError, TooManyEventsError, type AccountMember, type CandidatePage, type ChangeMark, type EntityRef, type EntityRows, type EntityUpdate, type EvaluationCandidate, type EvaluationStore, type MembersRead, type RulesetProgress, type StoredEvent } from '../../functions/core/ports';
import type { DayRollup, UsageEvent } from '../../functions/core/rules/engine';

interface Entity {
  ref: EntityRef;
  /** Its shard (InMemoryEvaluationStore.shardOf), worked out once: every page of candidates looks at every entity's. */
  shard: string;
  traits: Record<string, unknown>;
  /** Users: the accounts they belong to. Accounts: their members. */
  links: string[];
  events: StoredEvent[];
  days: Map<string, DayRollup>;
  claim?: Claim;
  state?: StoredEntityState;
  revision: number;
  /**
   * The change marker: the days to re-read, a version bumped by every mark, when the oldest unevaluated change came,
   * the sequence of its first mark, till when a kept change waits (ChangeMark.notBefore), and whether an account's
   * traits changed (ChangeMark.traitsChanged).
   */
  marker?: { days: Set<string>; version: number; since: string; sequence: number; notBefore?: string; traitsChanged?: true };
  /** When a sweep is due; absent when the entity is not waiting for one. */
  sweepDue?: string;
}

type TrackedEvent = Omit<UsageEvent, 'type'> & { type?: string; messageId?: string; anonymousId?: string; previousId?: string; traits?: Record<string, unknown>; groupId?: string };

interface Token {
  revision: number;
}

const neverDue = '9999-12-31T00:00:00.000Z';

/**
 * The EvaluationStore port in memory, with one shard ("0") or `shards`, keeping the promises the DynamoDB store keeps: a
 * save is all or nothing and refused when an overlapping run saved since the read, a settled page forgets only the changes it
 * listed (not one made since), lead events wait in an outbox until marked published. For unit tests of the evaluator use case.
 */
export class InMemoryEvaluationStore implements EvaluationStore {
  readonly maxChangedDaysPerSave: number;
  readonly outbox: LeadEvent[] = [];
  /** The idempotency keys `markUndelivered` was given, in order. */
  readonly undelivered: string[] = [];
  /** The entities read by `entity()`, as "type id", in order. */
  readonly reads: string[] = [];
  /** The entities saved by `save()`, as "type id", in order. */
  readonly saves: string[] = [];
  /** Called once per `entity()` after the rows are read and before they are returned: a place for another run to overlap. */
  afterRead: ((ref: EntityRef) => Promise<void>) | undefined;
  /** The users whose states `members()` read, by id, in order. */
  readonly memberStatesRead: string[] = [];
  private readonly entities = new Map<string, Entity>();
  /** The idempotency keys of the outbox's events claimed by a publish in flight. */
  private readonly claimed = new Set<string>();
  /** By shard. */
  private readonly progress = new Map<string, RulesetProgress>();
  private readonly shards: number;
  /** Numbers the markers as made: a run tells the changes marked before it started from those marked since. */
  private sequence = 0;

  /** The rules' days, which events are stored by, as ingest stores them (its `timeZone`). */
  private readonly calendar: Calendar;

  /** The run's budget for events, in characters of their JSON (each event's, as the DynamoDB store counts its items'). */
  private readonly maxEventChars: number;

  constructor(options: { maxChangedDaysPerSave?: number; calendar?: Calendar; shards?: number; maxEventChars?: number } = {}) {
    this.maxChangedDaysPerSave = options.maxChangedDaysPerSave ?? 90;
    this.maxEventChars = options.maxEventChars ?? Number.POSITIVE_INFINITY;
    this.shards = options.shards ?? 1;
    this.calendar = options.calendar ?? calendarOf('UTC');
  }

  // ---- what ingest would store ----

  /**
   * Stores a user's event and marks the user, as ingest does; `receivedAt` is when the change counts as made. An
   * event with an anonymousId claims that visitor for the user (core/identity).
   */
  track(workspace: string, userId: string, event: TrackedEvent, receivedAt = event.timestamp): void {
    const user = this.entityOf({ workspace, type: 'user', id: userId });
    user.events.push({ type: 'track', messageId: `m${user.events.length}`, userId, ...event });
    this.markEntity(user, this.calendar.dayOf(event.timestamp), receivedAt);
  }

  /** Stores an anonymous visitor's event (no userId) and marks the visitor, as ingest does. */
  trackVisitor(workspace: string, anonymousId: string, event: Omit<TrackedEvent, 'anonymousId'>): void {
    const visitor = this.entityOf({ workspace, type: 'visitor', id: anonymousId });
    visitor.events.push({ type: 'track', messageId: `m${visitor.events.length}`, anonymousId, ...event });
    this.markEntity(visitor, this.calendar.dayOf(event.timestamp), event.timestamp);
  }

  /** Sets traits of a user or an account. */
  setTraits(ref: EntityRef, traits: Record<string, unknown>): void {
    Object.assign(this.entityOf(ref).traits, traits);
  }

  /** The traits of a user or an account, as set. */
  traitsOf(ref: EntityRef): Readonly<Record<string, unknown>> {
    return this.entityOf(ref).traits;
  }

  /** Makes a user a member of an account. */
  join(workspace: string, userId: string, accountId: string): void {
    const user = this.entityOf({ workspace, type: 'user', id: userId });
    const account = this.entityOf({ workspace, type: 'account', id: accountId });
    if (!user.links.includes(accountId)) user.links.push(accountId);
    if (!account.links.includes(userId)) account.links.push(userId);
  }

  /** The saved state of an entity. */
  stateOf(ref: EntityRef): StoredEntityState | undefined {
    return this.entities.get(entityKey(ref))?.state;
  }

  /**
   * The changes waiting for a run, taken off the lists: what the table's stream carries to the deployed evaluator,
   * which evaluates them without a list (core evaluateChanges).
   */
  takeChanges(): ChangeMark[] {
    const marks: ChangeMark[] = [];
    for (const entity of this.entities.values()) {
      if (!entity.marker) continue;
      marks.push({ ref: entity.ref, days: [...entity.marker.days].sort(), since: entity.marker.since, ...(entity.marker.traitsChanged ? { traitsChanged: true } : {}) });
      delete entity.marker;
    }
    return marks;
  }

  isMarked(ref: EntityRef): boolean {
    return this.entities.get(entityKey(ref))?.marker !== undefined;
  }

  /** When the entity's sweep is due, if it waits for one. */
  sweepDueOf(ref: EntityRef): string | undefined {
    return this.entities.get(entityKey(ref))?.sweepDue;
  }

  // ---- the port ----

  async pendingLeadEvents(): Promise<LeadEvent[]> {
    return structuredClone(this.outbox.filter((event) => !this.claimed.has(event.detail.idempotencyKey)));
  }

  /** A claim lasts until the event is published or marked undelivered: no run here dies holding one. */
  async claimLeadEvents(_shard: string, events: readonly LeadEvent[]): Promise<LeadEvent[]> {
    const claimed = events.filter((event) => !this.claimed.has(event.detail.idempotencyKey));
    for (const event of claimed) this.claimed.add(event.detail.idempotencyKey);
    return claimed;
  }

  async markPublished(_shard: string, events: readonly LeadEvent[]): Promise<void> {
    const delivered = new Set(events.map((event) => event.detail.idempotencyKey));
    for (const key of delivered) this.claimed.delete(key);
    this.outbox.splice(0, this.outbox.length, ...this.outbox.filter((event) => !delivered.has(event.detail.idempotencyKey)));
  }

  /** Its state and outbox change together, so an undelivered event waits as it is; the keys are kept for assertions. */
  async markUndelivered(_shard: string, events: readonly LeadEvent[]): Promise<void> {
    for (const event of events) this.claimed.delete(event.detail.idempotencyKey);
    this.undelivered.push(...events.map((event) => event.detail.idempotencyKey));
  }

  async rulesetProgress(shard: string): Promise<RulesetProgress> {
    return structuredClone(this.progress.get(shard) ?? {});
  }

  async saveRulesetProgress(shard: string, progress: RulesetProgress): Promise<void> {
    this.progress.set(shard, structuredClone(progress));
  }

  async oldestChange(shard: string): Promise<string | undefined> {
    return this.entitiesOf(shard).flatMap((entity) => (entity.marker ? [entity.marker.since] : [])).sort()[0];
  }

  /** Every changed user, then every changed account, then the entities due for a sweep (all evaluated ones for everyone), users first. */
  async candidates(shard: string, now: Date, limit: number, options: { everyone: boolean; after?: string }): Promise<CandidatePage> {
    // A run reads the changes marked before it started (`upTo`), as the DynamoDB store reads the lists written before;
    // pages of changes go on past those listed already (`listed`), settled or not, as it goes on past a list.
    const cursor: { phase: 'changed' | 'sweep'; offset: number; upTo: number; listed: string[] } = options.after ? JSON.parse(options.after) : { phase: 'changed', offset: 0, upTo: this.sequence, listed: [] };
    const all = this.entitiesOf(shard);
    const due = (entity: Entity) => entity.sweepDue !== undefined && (options.everyone || entity.sweepDue <= now.toISOString());
    const listedBefore = new Set(cursor.listed);
    const changed = (entity: Entity) => entity.marker !== undefined && entity.marker.sequence <= cursor.upTo && !listedBefore.has(entityKey(entity.ref));
    const listed = all.filter(cursor.phase === 'changed' ? changed : due).sort(
      (a, b) => (a.ref.type === b.ref.type ? 0 : a.ref.type === 'user' ? -1 : 1) || entityKey(a.ref).localeCompare(entityKey(b.ref)),
    );
    const reason: EvaluationCandidate['reason'] = cursor.phase === 'changed' ? 'changed' : options.everyone ? 'rules-changed' : 'sweep';
    const offset = cursor.phase === 'changed' ? 0 : cursor.offset;
    const page = listed.slice(offset, offset + limit);
    const candidates = page.map((entity): EvaluationCandidate => {
      const marker = cursor.phase === 'changed' ? entity.marker : undefined;
      return {
        ref: entity.ref,
        reason,
        days: [...(marker?.days ?? [])].sort(),
        ...(marker ? { since: marker.since } : {}),
        ...(marker?.notBefore !== undefined ? { notBefore: marker.notBefore } : {}),
        ...(marker?.traitsChanged ? { traitsChanged: true as const } : {}),
      };
    });
    // What settle may forget: each listed marker as it was read (a mark after this bumps its version).
    const changes = cursor.phase === 'changed' ? page.map((entity) => ({ key: entityKey(entity.ref), version: entity.marker!.version })) : [];
    const next =
      offset + limit < listed.length
        ? JSON.stringify({ ...cursor, offset: offset + limit, listed: [...cursor.listed, ...(cursor.phase === 'changed' ? page.map((entity) => entityKey(entity.ref)) : [])] })
        : cursor.phase === 'changed'
          ? JSON.stringify({ phase: 'sweep', offset: 0, upTo: cursor.upTo, listed: [] })
          : undefined;
    return { candidates, changes, ...(next !== undefined ? { next } : {}) };
  }

  async settle(_shard: string, changes: unknown, marks: readonly ChangeMark[]): Promise<void> {
    for (const { key, version } of (changes ?? []) as { key: string; version: number }[]) {
      const entity = this.entities.get(key)!;
      if (entity.marker?.version === version) delete entity.marker;
    }
    await this.keep(marks);
  }

  /** Entities spread over the shards as the DynamoDB store spreads them: by their partition key. */
  shardOf(ref: EntityRef): string {
    return shardOf(entityPartitionKey(ref.workspace, ref.type, ref.id), this.shards);
  }

  private entitiesOf(shard: string): Entity[] {
    return [...this.entities.values()].filter((entity) => entity.shard === shard);
  }

  async keep(marks: readonly ChangeMark[]): Promise<void> {
    for (const mark of marks) {
      const entity = this.entityOf(mark.ref);
      for (const day of mark.days) this.markEntity(entity, day, mark.since);
      if (mark.days.length === 0) this.markEntity(entity, undefined, mark.since);
      const notBefore = laterWaitEnd(entity.marker!.notBefore, mark.notBefore);
      if (notBefore !== undefined) entity.marker!.notBefore = notBefore;
      if (mark.traitsChanged) entity.marker!.traitsChanged = true;
    }
  }

  async entity(ref: EntityRef, changedDays: readonly string[] = [], daysFrom?: string): Promise<EntityRows> {
    this.reads.push(`${ref.type} ${ref.id}`);
    const entity = this.entityOf(ref);
    const token: Token = { revision: entity.revision };
    const rows: EntityRows = {
      ...(entity.state ? { state: structuredClone(entity.state) } : {}),
      changedDays: [...changedDays],
      traits: structuredClone(entity.traits),
      accounts: ref.type === 'user' ? [...entity.links] : [],
      ...(entity.claim ? { claim: structuredClone(entity.claim) } : {}),
      // Feedback is the DynamoDB store's (tested against DynamoDB Local); none here.
      feedback: [],
      // As the DynamoDB store reads them with the rows: every stored day from daysFrom on.
      ...(daysFrom !== undefined && ref.type !== 'account' ? { days: { from: daysFrom, rollups: structuredClone([...entity.days.values()].filter((rollup) => rollup.day >= daysFrom)) } } : {}),
      token,
    };
    const overlap = this.afterRead;
    if (overlap) {
      this.afterRead = undefined;
      await overlap(ref);
    }
    return rows;
  }

  async claims(workspace: string, identities: readonly Identity[]): Promise<Map<string, Claim>> {
    const claims = new Map<string, Claim>();
    for (const identity of identities) {
      const claim = this.entities.get(entityKey({ workspace, type: identity.kind, id: identity.id }))?.claim;
      if (claim) claims.set(identityKey(identity), structuredClone(claim));
    }
    return claims;
  }

  async claim(workspace: string, claim: Claim, now: Date): Promise<{ held: Claim; replaced?: Claim }> {
    const entity = this.entityOf({ workspace, type: claim.from.kind, id: claim.from.id });
    const replaced = entity.claim;
    if (replaced && !claimsBefore(claim, replaced)) return { held: structuredClone(replaced) };
    // Taken from no one or another user now; an earlier claim of the same user keeps when it took the identity.
    const storedAt = replaced?.to === claim.to ? replaced.storedAt : now.toISOString();
    entity.claim = { ...structuredClone(claim), ...(storedAt !== undefined ? { storedAt } : {}) };
    return { held: structuredClone(entity.claim), ...(replaced ? { replaced } : {}) };
  }

  async mark(ref: EntityRef, days: readonly string[], at: Date): Promise<void> {
    for (const day of days) this.markEntity(this.entityOf(ref), day, at.toISOString());
  }

  eventsBudget = () => new EventsBudget(this.maxEventChars);

  /** Takes each event from the lease as the DynamoDB store takes each item, and gives them all back when one does not fit. */
  async events(ref: EntityRef, days: readonly string[] | 'all', lease: EventsLease = this.eventsBudget().lease()): Promise<StoredEvent[]> {
    const stored = this.entityOf(ref).events;
    const events = structuredClone(days === 'all' ? stored : stored.filter((event) => days.includes(this.calendar.dayOf(event.timestamp))));
    const taken = { chars: 0, events: 0 };
    try {
      takeEach(ref, events, lease, taken);
    } catch (error) {
      lease.giveBack(taken.chars, taken.events);
      throw error;
    }
    return events;
  }

  async eachEventDay(ref: EntityRef, days: readonly string[] | 'all', onDay: (day: string, events: StoredEvent[]) => void, lease: EventsLease = this.eventsBudget().lease()): Promise<void> {
    const byDay = new Map<string, StoredEvent[]>();
    for (const event of this.entityOf(ref).events) {
      const day = this.calendar.dayOf(event.timestamp);
      if (days === 'all' || days.includes(day)) byDay.set(day, [...(byDay.get(day) ?? []), event]);
    }
    // As the DynamoDB store holds them: each day until the reader has had the four after it.
    const held: { day: string; chars: number; events: number }[] = [];
    try {
      for (const day of [...byDay.keys()].sort()) {
        const events = structuredClone(byDay.get(day)!);
        const taken = { day, chars: 0, events: 0 };
        held.push(taken);
        takeEach(ref, events, lease, taken, day);
        onDay(day, events);
        while (held[0]!.day < addDays(day, -3)) {
          const { chars, events: count } = held.shift()!;
          lease.giveBack(chars, count);
        }
      }
    } finally {
      for (const { chars, events } of held) lease.giveBack(chars, events);
    }
  }

  async dayRollups(ref: EntityRef, days: readonly string[]): Promise<DayRollup[]> {
    const stored = this.entityOf(ref).days;
    return structuredClone(days.flatMap((day) => stored.get(day) ?? []));
  }

  async dayRollupsIn(entities: readonly { ref: EntityRef; ranges: readonly DayRange[] }[]): Promise<DayRollup[][]> {
    return entities.map(({ ref, ranges }) => structuredClone([...this.entityOf(ref).days.values()].filter((rollup) => inReach(ranges, rollup.day))));
  }

  async accountTraits(workspace: string, ids: readonly string[]): Promise<Record<string, unknown>[]> {
    return ids.map((id) => structuredClone(this.entityOf({ workspace, type: 'account', id }).traits));
  }

  async members(ref: EntityRef, read: MembersRead = {}): Promise<AccountMember[]> {
    return this.entityOf(ref).links.map((id) => {
      const savedState = read.saved?.(id);
      if (savedState) return { id, state: savedState };
      this.memberStatesRead.push(id);
      const member = this.entities.get(entityKey({ workspace: ref.workspace, type: 'user', id }));
      const sweepDue = member?.sweepDue !== undefined && member.sweepDue !== neverDue ? member.sweepDue : undefined;
      return { id, ...(member?.state ? { state: structuredClone(member.state) } : {}), ...(sweepDue ? { sweepDue } : {}) };
    });
  }

  async save(ref: EntityRef, update: EntityUpdate, token: unknown): Promise<boolean> {
    const read = token as Token;
    const entity = this.entityOf(ref);
    if (entity.revision !== read.revision) return false;
    for (const rollup of [...update.rebuiltDays, ...update.days]) entity.days.set(rollup.day, structuredClone(rollup));
    entity.state = structuredClone(update.state);
    entity.revision++;
    entity.sweepDue = update.nextSweep?.toISOString() ?? neverDue;
    if (update.event) this.outbox.push(structuredClone(update.event));
    this.saves.push(`${ref.type} ${ref.id}`);
    return true;
  }

  async sweepBy(ref: EntityRef, at: Date, token: unknown, options: { postpone?: boolean } = {}): Promise<boolean> {
    const entity = this.entityOf(ref);
    if (entity.state === undefined || entity.revision !== (token as Token).revision) return false;
    const time = at.toISOString();
    if (options.postpone || entity.sweepDue === undefined || entity.sweepDue > time) entity.sweepDue = time;
    entity.revision++;
    return true;
  }

  /** Marks the entity changed on `day` (or on no day: its traits or members moved). */
  private markEntity(entity: Entity, day: string | undefined, at: string): void {
    // A change marked before a run started is that run's, marked again since or not, as a change list written before
    // it is (the DynamoDB store); the version tells settle that a mark came since.
    if (!entity.marker) entity.marker = { days: new Set(), version: 0, since: at, sequence: ++this.sequence };
    if (day !== undefined) entity.marker.days.add(day);
    if (at < entity.marker.since) entity.marker.since = at;
    entity.marker.version++;
  }

  private entityOf(ref: EntityRef): Entity {
    const key = entityKey(ref);
    let entity = this.entities.get(key);
    if (!entity) {
      entity = { ref, shard: this.shardOf(ref), traits: {}, links: [], events: [], days: new Map(), revision: 0 };
      this.entities.set(key, entity);
    }
    return entity;
  }
}

/**
 * Takes each event from the lease (its JSON's characters, as the DynamoDB store counts an item's), counted into `taken`;
 * throws when one does not fit.
 */
function takeEach(ref: EntityRef, events: readonly StoredEvent[], lease: EventsLease, taken: { chars: number; events: number }, day?: string): void {
  const of = day === undefined ? ref.id : `${ref.id} on ${day}`;
  for (const event of events) {
    const chars = JSON.stringify(event).length;
    taken.chars += chars;
    taken.events++;
    const fits = lease.take(chars, 1);
    if (fits !== 'fits') throw fits === 'too many' ? new TooManyEventsError(`too many events of ${of}`) : new RunHoldsTooManyEventsError(`no room for the events of ${of}`);
  }
}
