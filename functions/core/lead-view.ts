import type { DeliveryLogEntry } from './delivery';
import type { StoredEntityState } from './facts';
import { mergedIntoOf, type LeadHistoryEntry, type LeadState, type ScorePoint } from './lead-state';
import type { StoredMessage } from './messages';
import type { EntityRef } from './ports';
import { eventName, type UsageEvent } from './rules/engine';

/**
 * The lead inspector's views: what `pql-radar leads list|show --json` prints and what the local runtime's /leads pages
 * show, made here from what one adapter read (adapters/dynamodb/lead-reader.ts), so the two cannot differ. Pure.
 */

/** Events a lead's view lists, newest first: names and times only, never properties. */
export const maxLastEvents = 20;

/**
 * The error a lead that was never evaluated gets, naming what was asked for, and where else its id was evaluated
 * (`elsewhere`: as another type, or in another workspace), the likelier mistake being the type or the workspace.
 */
export function unknownLeadError(ref: EntityRef, elsewhere: readonly EntityRef[] = []): string {
  const unknown = `no lead ${ref.type} ${JSON.stringify(ref.id)} in workspace ${JSON.stringify(ref.workspace)}: nothing of that type and id has been evaluated`;
  if (elsewhere.length === 0) return unknown;
  return `${unknown}; that id has been evaluated as ${elsewhere.map((other) => `${other.type === 'account' ? 'an' : 'a'} ${other.type} in workspace ${JSON.stringify(other.workspace)}`).join(', and as ')}`;
}

/** What the inspector reads of one entity, before any formatting. */
export interface LeadRecord {
  ref: EntityRef;
  state: StoredEntityState;
  traits: Record<string, unknown>;
  /** A user's accounts, or an account's members, each with its tier (null: no tier, or never evaluated). */
  related: { id: string; tier: string | null }[];
  /** The entity's latest stored messages, in any order, at least maxLastEvents when it has that many. */
  messages: StoredMessage[];
  /** The delivery log's attempts for this lead, newest first. */
  deliveries: DeliveryLogEntry[];
}

export interface LeadView {
  entity: EntityRef;
  tier: string | null;
  route: string | null;
  /** When the current tier was entered. */
  since: string | null;
  /** Engagement and fit are null for a state saved before scores were kept, until its score next changes. */
  score: { total: number; engagement: number | null; fit: number | null };
  /** The score over time, oldest first (lead-state.ts maxScores). */
  scores: ScorePoint[];
  /** Value and points are null for a state saved before they were kept, until its next evaluation. */
  signals: { name: string; value: number | string | boolean | null; points: number | null }[];
  /** Transitions with their reasons, newest first. */
  transitions: LeadHistoryEntry[];
  qualification: LeadState['qualification'] | null;
  conversion: LeadState['conversion'] | null;
  cooldownUntil: string | null;
  /** The user this identifier merged into (an alias, an identified visitor): judged as that user since. */
  mergedInto: string | null;
  evaluatedAt: string;
  rulesetVersion: string;
  firstSeen: string | null;
  lastSeen: string | null;
  /** Traits as identify (or group, for an account) set them: for the operator's eyes, never logged. */
  traits: Record<string, unknown>;
  /** A user's accounts; empty for an account. */
  accounts: { id: string; tier: string | null }[];
  /** An account's members; empty for a user. */
  members: { id: string; tier: string | null }[];
  /** Newest first, at most maxLastEvents. An account has none of its own: its members' events are theirs. */
  lastEvents: { name: string; at: string }[];
  deliveries: { at: string; destination: string; detailType: string; attempt: number; outcome: string; status: number | null }[];
}

/** A lead as the list shows it. */
export interface LeadSummary {
  workspace: string;
  type: EntityRef['type'];
  id: string;
  tier: string;
  route: string | null;
  score: number;
  since: string | null;
}

export interface LeadFilters {
  workspace?: string;
  tier?: string;
  route?: string;
  /** Only leads that entered their tier at or after this time. */
  since?: Date;
}

/** The leads currently in a tier that pass the filters, newest `since` first (then by type and id, for a stable order). */
export function leadList(states: readonly { ref: EntityRef; lead: LeadState }[], filters: LeadFilters = {}): LeadSummary[] {
  const since = filters.since?.toISOString();
  return states
    .filter(({ ref, lead }) => lead.tier !== null && (filters.workspace === undefined || ref.workspace === filters.workspace))
    .filter(({ lead }) => (filters.tier === undefined || lead.tier === filters.tier) && (filters.route === undefined || lead.route === filters.route))
    .filter(({ lead }) => since === undefined || (lead.since !== null && lead.since >= since))
    .map(({ ref, lead }) => ({ workspace: ref.workspace, type: ref.type, id: ref.id, tier: lead.tier!, route: lead.route, score: lead.score, since: lead.since }))
    .sort((a, b) => (b.since ?? '').localeCompare(a.since ?? '') || a.type.localeCompare(b.type) || a.id.localeCompare(b.id));
}

/** The tiers and routes leads are in now, of one workspace when given: what the list can be filtered by. */
export function leadChoices(states: readonly { ref: EntityRef; lead: LeadState }[], workspace: string | undefined): { tiers: string[]; routes: string[] } {
  const all = leadList(states, workspace !== undefined ? { workspace } : {});
  const distinct = (values: (string | null)[]) => [...new Set(values.filter((value): value is string => value !== null))].sort();
  return { tiers: distinct(all.map((row) => row.tier)), routes: distinct(all.map((row) => row.route)) };
}

/** One lead's view. A record whose state holds no lead state (stored, never evaluated) is not a lead: undefined. */
export function leadView(record: LeadRecord): LeadView | undefined {
  const lead = record.state.lead;
  if (!lead) return undefined;
  const scores = lead.scores ?? [];
  // The parts kept with the score: none for a state saved before they were kept; 0 for a history that has stayed 0.
  const kept = lead.scores === undefined ? undefined : (scores.at(-1) ?? { total: 0, engagement: 0, fit: 0 });
  const related = record.related.map(({ id, tier }) => ({ id, tier }));
  return {
    entity: { ...record.ref },
    tier: lead.tier,
    route: lead.route,
    since: lead.since,
    // A kept history ends at the score of the lead's last evaluation in a tier; an empty one means it has stayed 0
    // (withScore appends no 0). A former lead's parts and signal values are no longer kept (lead-state's decide): its
    // total and matched signals are current, their parts unknown once they differ from what was kept.
    score: kept !== undefined && kept.total === lead.score ? { total: kept.total, engagement: kept.engagement, fit: kept.fit } : { total: lead.score, engagement: null, fit: null },
    scores: scores.map((point) => ({ ...point })),
    signals:
      lead.signals !== undefined && sameNames(lead.signals.map((signal) => signal.name), lead.matched)
        ? lead.signals.map((signal) => ({ ...signal }))
        : lead.matched.map((name) => ({ name, value: null, points: null })),
    transitions: lead.history.toReversed().map((entry) => ({ ...entry, reasons: [...entry.reasons] })),
    qualification: lead.qualification ?? null,
    conversion: lead.conversion ?? null,
    cooldownUntil: lead.cooldownUntil,
    mergedInto: mergedIntoOf(lead) ?? null,
    evaluatedAt: lead.evaluatedAt,
    rulesetVersion: lead.rulesetVersion,
    firstSeen: record.state.firstSeen,
    lastSeen: record.state.lastSeen,
    traits: record.traits,
    accounts: record.ref.type === 'account' ? [] : related,
    members: record.ref.type === 'account' ? related : [],
    lastEvents: lastEvents(record.messages),
    deliveries: record.deliveries.map((entry) => ({
      at: entry.at,
      destination: entry.destination,
      detailType: entry.detailType,
      attempt: entry.attempt,
      outcome: entry.outcome,
      status: entry.status ?? null,
    })),
  };
}

/** The latest messages as names and times, newest first: track events by name, pages and screens as the rules name them, others by type. */
export function lastEvents(messages: readonly StoredMessage[], limit = maxLastEvents): { name: string; at: string }[] {
  return messages
    .toSorted((a, b) => b.timestamp.localeCompare(a.timestamp) || a.messageId.localeCompare(b.messageId))
    .slice(0, limit)
    .map((message) => ({ name: eventName(message as unknown as UsageEvent) ?? message.type, at: message.timestamp }));
}

const sameNames = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((name) => b.includes(name));
