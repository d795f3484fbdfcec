import { createHash } from 'node:crypto';
import type { LeadEvent } from './lead-event';
import { leadEventType, maxLeadEventDetailBytes } from './lead-event-names';
import { dayMs, daysBetween, isoTime } from './days';
import { mostCountedFirst, type EntityFacts, type Evaluation } from './rules/engine';
import type { Ruleset } from './rules/ruleset';
import { chooseRoute, ownerOf } from './rules/routing';
import { changesByTimeAt, type TimeChanges } from './rules/time-changes';
import { feedbackHoldUntil, feedbackReasonLine, type LeadFeedback } from './lead-feedback';

/**
 * The lead state machine: none -> tier, tier -> tier, tier -> none, with a cooldown after disqualification,
 * and the lead event each transition publishes. Pure: the evaluator persists what this decides.
 */

export interface LeadHistoryEntry {
  tier: string | null;
  previousTier: string | null;
  at: string;
  reasons: string[];
}

/** The score at one evaluation: the inspector's score over time. Numbers and an ISO time only: the state is rewritten (and billed per KB) on every evaluation. */
export interface ScorePoint {
  at: string;
  total: number;
  engagement: number;
  fit: number;
}

/** A matched signal with its value and points, as lead events carry them. */
export interface MatchedSignal {
  name: string;
  value: number | string | boolean | null;
  points: number;
}

export interface LeadState {
  tier: string | null;
  /**
   * The route chosen at the last evaluation. A route that changes while the tier stays (a trait a tier routes by
   * changed) is saved here without a transition: no one is told, and the next lead event goes to the new route.
   */
  route: string | null;
  score: number;
  /** When the current tier was entered. */
  since: string | null;
  /**
   * A disqualified lead cannot qualify again before this time; nor can a lead sales gave feedback on (the reason is
   * in its history): one field for both holds keeps the state, billed per KB on every save, small.
   */
  cooldownUntil: string | null;
  /** Transitions so far; the idempotency key of a transition derives from it, so a re-delivery carries the same key. */
  sequence: number;
  rulesetVersion: string;
  evaluatedAt: string;
  /** Signals that matched: an account's member signals read them. */
  matched: string[];
  lastSeen: string | null;
  /** Newest last, at most maxHistory entries. */
  history: LeadHistoryEntry[];
  /**
   * The score each time one of its parts changed, newest last, at most maxScores entries; none while it is 0. Absent in
   * states saved before it was kept.
   */
  scores?: ScorePoint[];
  /** The matched signals' values and points at the last evaluation (what `matched` names), for the lead inspector. */
  signals?: MatchedSignal[];
  /** The last qualification (none -> tier): what a conversion reports it followed. Absent until the first one. */
  qualification?: { at: string; tier: string; signals: string[] };
  /**
   * The conversion (the rules file's `conversion`), recorded by the evaluation that first sees one, with the tier held
   * then and the signals matched (rule health's signal rates; absent in states recorded before they were kept). Its
   * time is the earliest converting message seen: a late one, seen by a later evaluation, moves it earlier. Absent
   * until it happens.
   */
  conversion?: { at: string; tier: string | null; signals?: string[] };
  /**
   * The user this identifier merged into (an aliased userId, an identified visitor judged as a lead), whose changes its
   * own are from then on: rule health judges the two as one person, as the backtest's report does. Absent for the rest.
   */
  mergedInto?: string;
}

export interface Transition {
  kind: 'qualified' | 'tier_changed' | 'disqualified' | 'converted' | 'feedback';
  previousTier: string | null;
  tier: string | null;
  sequence: number;
  /** Whether the rules' notification policy publishes this kind of transition. */
  notify: boolean;
  reasons: string[];
  /** Converted only: the conversion and the qualification it followed. */
  conversion?: ConversionReport;
  /** Feedback only: the newest feedback applied, as the Lead Feedback event carries it. */
  feedback?: NonNullable<LeadEvent['detail']['feedback']>;
}

export interface ConversionReport {
  convertedAt: string;
  tier: string | null;
  qualifiedAt: string;
  qualifiedTier: string;
  qualifiedOn: string[];
  daysSinceQualification: number;
}

const maxHistory = 20;
/** 30 points of about 70 bytes of JSON each, deflated with the rest of the state (compressed-json.ts). */
export const maxScores = 30;
/** A signal's string value (a trait) kept in the state is cut here: the state's size is billed on every save. */
const maxStateValueLength = 200;
const zeroScore = { total: 0, engagement: 0, fit: 0 };

/** The score history with this evaluation's score appended when it differs from the last one (none counts as 0). */
export function withScore(scores: readonly ScorePoint[], score: Evaluation['score'], at: Date): ScorePoint[] {
  const last = scores.at(-1) ?? zeroScore;
  if (last.total === score.total && last.engagement === score.engagement && last.fit === score.fit) return [...scores];
  return [...scores, { at: isoTime(at), total: score.total, engagement: score.engagement, fit: score.fit }].slice(-maxScores);
}

/** The evaluation's matched signals, with their values (a long string value cut) and points. */
export function matchedSignals(evaluation: Evaluation): MatchedSignal[] {
  return Object.entries(evaluation.signals)
    .filter(([, result]) => result.matched)
    .map(([name, result]) => ({ name, value: typeof result.value === 'string' ? result.value.slice(0, maxStateValueLength) : result.value, points: result.points }));
}

/**
 * Decides the lead state after an evaluation. `convertedAt` is the entity's conversion as core/conversion detected
 * it in what the evaluation read (null: none seen). The first one seen is recorded; an earlier one seen later (a late
 * event, read by a later evaluation than the message seen first) moves its time earlier, not its tier or signals, and
 * publishes nothing. A converted customer leaves the tiers unless the rules keep them in; a conversion of an entity
 * that once qualified is a `converted` transition (one lead event, whatever its tier does at the same time), while
 * that of one that never qualified is only recorded: no one worked it.
 * Sales feedback not applied yet (oldest first) takes the lead out of the tiers until its hold ends (the newest one's),
 * adds a history entry each, and is one `feedback` transition, always published: sales' word reaches the CRM.
 */
export function decide(
  previous: LeadState | undefined,
  evaluation: Evaluation,
  facts: Pick<EntityFacts, 'lastSeen'>,
  ruleset: Ruleset,
  now: Date,
  convertedAt: string | null = null,
  feedback: readonly LeadFeedback[] = [],
): { state: LeadState; transition?: Transition } {
  const previousTier = previous?.tier ?? null;
  const given = [...feedback].sort((a, b) => a.at.localeCompare(b.at) || a.id.localeCompare(b.id));
  const newest = given.at(-1);
  // A loop rather than entries().filter().map(): no pair per signal, for every entity a backtest decides.
  const matched: string[] = [];
  for (const name in evaluation.signals) if (evaluation.signals[name]!.matched) matched.push(name);
  const conversion = previous?.conversion ? earlierConversion(previous.conversion, convertedAt) : convertedAt !== null ? { at: convertedAt, tier: previousTier, signals: matched } : undefined;
  const newlyConverted = conversion !== undefined && previous?.conversion === undefined;
  const coolingDown = previousTier === null && previous?.cooldownUntil != null && previous.cooldownUntil > isoTime(now);
  const outOfTiers = newest !== undefined || coolingDown || convertedOutOfTiers(conversion, ruleset);
  const tier = outOfTiers ? null : evaluation.tier;
  // The inspector's score over time and signal values, for leads (and the evaluation that ends one): kept for every
  // entity, they would grow every state a save rewrites and bills. A former lead keeps what it had.
  const inspected = tier !== null || previousTier !== null;
  const scores = inspected ? withScore(previous?.scores ?? [], evaluation.score, now) : previous?.scores;
  const signals = inspected ? matchedSignals(evaluation) : previous?.signals;
  const base: LeadState = {
    tier,
    route: outOfTiers ? null : evaluation.route,
    score: evaluation.score.total,
    since: previous?.since ?? null,
    cooldownUntil: previous?.cooldownUntil ?? null,
    sequence: previous?.sequence ?? 0,
    rulesetVersion: ruleset.version,
    evaluatedAt: isoTime(now),
    matched,
    lastSeen: facts.lastSeen,
    history: previous?.history ?? [],
  };
  // Set one by one rather than spread in: a spread into an object literal copies the generic (and slow) way.
  if (scores) base.scores = scores;
  if (signals) base.signals = signals;
  if (previous?.qualification) base.qualification = previous.qualification;
  if (conversion) base.conversion = conversion;
  if (newest !== undefined) return withFeedback(base, previousTier, given, ruleset, now);
  const reported = newlyConverted && previous?.qualification !== undefined;
  if (tier === previousTier && !reported) return { state: base };

  const kind = reported ? 'converted' : previousTier === null ? 'qualified' : tier === null ? 'disqualified' : 'tier_changed';
  const reasons =
    kind === 'converted' ? [`converted at ${conversion!.at}`, ...explain(evaluation, ruleset, tier, previousTier, 'a customer now: customers leave the tiers')] : explain(evaluation, ruleset, tier, previousTier);
  const sequence = base.sequence + 1;
  const cooldownDays = ruleset.file.policy.cooldown ?? 0;
  const state: LeadState = {
    ...base,
    since: tier !== previousTier ? isoTime(now) : base.since,
    sequence,
    cooldownUntil: kind === 'disqualified' && cooldownDays > 0 ? new Date(now.getTime() + cooldownDays * dayMs).toISOString() : base.cooldownUntil,
    history: [...base.history, { tier, previousTier, at: isoTime(now), reasons }].slice(-maxHistory),
    ...(kind === 'qualified' ? { qualification: { at: isoTime(now), tier: tier!, signals: matched } } : {}),
  };
  const report = reported ? conversionReport(conversion!, previous!.qualification!) : undefined;
  return { state, transition: { kind, previousTier, tier, sequence, notify: ruleset.file.policy.notify.includes(kind), reasons, ...(report ? { conversion: report } : {}) } };
}

/**
 * A lead whose identity another user claimed (an alias, an identified visitor): its events count for that user now,
 * and it is no longer judged on its own, so it leaves its tier, once and for good: a disqualification naming the
 * user, published as any disqualification is. Without it, the tier it held would stay in the CRM and the lead status.
 */
export function mergedAway(previous: LeadState, into: { id: string }, ruleset: Ruleset, now: Date): { state: LeadState; transition: Transition } {
  return outOfTiers(previous, mergedReason(into.id), ruleset, now);
}

const mergedReason = (user: string) => `merged into user ${user}: its events count for that user now`;
const mergedReasonPattern = /^merged into user (.+): its events count for that user now$/;

/**
 * The user an identifier merged into: its state's `mergedInto`, or, for a lead merged before states kept it, the user
 * its last transition's reason names (mergedAway). Undefined for the rest.
 */
export function mergedIntoOf(lead: LeadState): string | undefined {
  if (lead.mergedInto !== undefined) return lead.mergedInto;
  const last = lead.history.at(-1);
  if (last === undefined || last.tier !== null) return undefined;
  for (const reason of last.reasons) {
    const match = mergedReasonPattern.exec(reason);
    if (match) return match[1];
  }
  return undefined;
}

/**
 * The state of a visitor lead no one claimed once the rules judge no visitors as leads (identity.anonymous_leads turned
 * off): out of its tier, as the backtest of those rules never has it in one.
 */
export function visitorNotJudged(previous: LeadState, ruleset: Ruleset, now: Date): { state: LeadState; transition: Transition } {
  return outOfTiers(previous, 'an anonymous visitor no one claimed: the rules judge no visitors as leads (identity.anonymous_leads)', ruleset, now);
}

function outOfTiers(previous: LeadState, reason: string, ruleset: Ruleset, now: Date): { state: LeadState; transition: Transition } {
  const reasons = [reason];
  const sequence = previous.sequence + 1;
  const at = isoTime(now);
  const state: LeadState = {
    ...previous,
    tier: null,
    route: null,
    since: at,
    sequence,
    evaluatedAt: at,
    history: [...previous.history, { tier: null, previousTier: previous.tier, at, reasons }].slice(-maxHistory),
  };
  return { state, transition: { kind: 'disqualified', previousTier: previous.tier, tier: null, sequence, notify: ruleset.file.policy.notify.includes('disqualified'), reasons } };
}

/** The state after sales feedback: out of the tiers until the newest feedback's hold ends, each one in the history. */
function withFeedback(base: LeadState, previousTier: string | null, given: readonly LeadFeedback[], ruleset: Ruleset, now: Date): { state: LeadState; transition: Transition } {
  const entries = given.map((feedback) => ({ tier: null, previousTier, at: isoTime(now), reasons: [feedbackReasonLine(feedback, ruleset)] }));
  const { outcome, reason, at: givenAt, via } = given.at(-1)!;
  const heldUntil = feedbackHoldUntil(given.at(-1)!, ruleset);
  const sequence = base.sequence + 1;
  const state: LeadState = { ...base, since: previousTier !== null ? isoTime(now) : base.since, sequence, cooldownUntil: heldUntil, history: [...base.history, ...entries].slice(-maxHistory) };
  return { state, transition: { kind: 'feedback', previousTier, tier: null, sequence, notify: true, reasons: entries.at(-1)!.reasons, feedback: { outcome, reason, givenAt, via, heldUntil } } };
}

/** How often a sweep looks again at an entity whose points decay (continuously). */
export const defaultDecayIntervalMs = 6 * 3_600_000;

/** The recorded conversion, at `seenAt` when that is earlier. */
const earlierConversion = (recorded: NonNullable<LeadState['conversion']>, seenAt: string | null): NonNullable<LeadState['conversion']> =>
  seenAt !== null && seenAt < recorded.at ? { ...recorded, at: seenAt } : recorded;

/** A converted customer leaves the tiers for good, unless the rules keep customers in them. */
const convertedOutOfTiers = (conversion: LeadState['conversion'], ruleset: Ruleset): boolean =>
  conversion !== undefined && ruleset.file.conversion !== undefined && !ruleset.file.conversion.keep_in_tiers;

/**
 * When the state machine must run again for an entity that gets no new events (epoch ms; Infinity: not before its
 * next change), for the evaluator's sweeps and the backtest alike: a lead whenever time can change its evaluation; an
 * entity without a tier when time can raise it into one, or when the cooldown holding it out ends while its
 * evaluation has a tier; a converted customer out of the tiers never for itself. Besides, a user in an account when
 * time turns a signal its accounts read of it (`members_matching`), so that the outcome they read is current.
 * `changes`: changesByTimeAt of the same facts, evaluation and time with this decayIntervalMs, when the caller has them
 * already (or with any interval, when time-changes' decayIntervalMatters says it does not matter).
 */
export function nextDecisionAt(state: LeadState, evaluation: Evaluation, facts: EntityFacts, ruleset: Ruleset, now: Date, decayIntervalMs: number, changes?: TimeChanges): number {
  const converted = state.tier === null && convertedOutOfTiers(state.conversion, ruleset);
  // A customer out of the tiers is swept for its accounts' sake only.
  if (converted && ruleset.memberSignals.size === 0) return Number.POSITIVE_INFINITY;
  const { any, qualifying, readByAccounts } = changes ?? changesByTimeAt(facts, evaluation, ruleset, now, decayIntervalMs);
  if (state.tier !== null) return any;
  if (converted) return readByAccounts;
  const cooldownEnds = state.cooldownUntil !== null && evaluation.tier !== null ? Date.parse(state.cooldownUntil) : Number.POSITIVE_INFINITY;
  return Math.min(qualifying, readByAccounts, cooldownEnds > now.getTime() ? cooldownEnds : Number.POSITIVE_INFINITY);
}

/**
 * Whether a user's evaluation moves its accounts, which the evaluator and the backtest then decide again: it had new
 * days (counts, active members), its tier changed (members' tiers), or a signal its accounts read of it as a member
 * (`members_matching`, Ruleset.memberSignals) matched before and not now, or the other way round.
 */
export function movesAccounts(ruleset: Ruleset, previous: LeadState | undefined, state: LeadState, newDays: boolean): boolean {
  if (newDays || state.tier !== (previous?.tier ?? null)) return true;
  for (const name of ruleset.memberSignals) if ((previous?.matched.includes(name) ?? false) !== state.matched.includes(name)) return true;
  return false;
}

function conversionReport(conversion: NonNullable<LeadState['conversion']>, qualification: NonNullable<LeadState['qualification']>): ConversionReport {
  return {
    convertedAt: conversion.at,
    tier: conversion.tier,
    qualifiedAt: qualification.at,
    qualifiedTier: qualification.tier,
    qualifiedOn: qualification.signals,
    // Negative only when the converting message is older than the qualification (it arrived late).
    daysSinceQualification: daysBetween(qualification.at, new Date(conversion.at)),
  };
}

/** Why the lead is where it is, in words a salesperson can read. */
function explain(evaluation: Evaluation, ruleset: Ruleset, tier: string | null, previousTier: string | null, heldOut = 'in cooldown after an earlier disqualification'): string[] {
  const reasons: string[] = [];
  const tierRule = ruleset.file.tiers.find((candidate) => candidate.name === (tier ?? previousTier));
  const threshold = tierRule?.min_score;
  if (tier !== null) {
    reasons.push(`${tier}: score ${evaluation.score.total}${threshold !== undefined ? ` >= ${threshold}` : ''}${tierRule && tierRule.require.length > 0 ? `, with ${tierRule.require.join(', ')}` : ''}`);
  } else if (tierRule) {
    const missing = tierRule.require.filter((name) => !evaluation.signals[name]?.matched);
    if (threshold !== undefined && evaluation.score.total < threshold) reasons.push(`score ${evaluation.score.total} < ${threshold} needed for ${tierRule.name}`);
    if (missing.length > 0) reasons.push(`no longer matches ${missing.join(', ')}`);
    if (reasons.length === 0) reasons.push(heldOut);
  }
  const matched = Object.entries(evaluation.signals)
    .filter(([, result]) => result.matched && result.points !== 0)
    .sort(([, a], [, b]) => Math.abs(b.points) - Math.abs(a.points))
    .slice(0, 10);
  for (const [name, result] of matched) reasons.push(`${name} = ${String(result.value)} (${result.points > 0 ? '+' : ''}${result.points})`);
  return reasons;
}

export function idempotencyKey(workspace: string, entity: { type: string; id: string }, sequence: number): string {
  return createHash('sha256').update(`${workspace}\n${entity.type}\n${entity.id}\n${sequence}`).digest('hex').slice(0, 32);
}

const stringTrait = (traits: Record<string, unknown>, ...names: string[]) => {
  for (const name of names) {
    const value = traits[name];
    if (typeof value === 'string' && value !== '') return value.slice(0, 200);
  }
  return undefined;
};

/** The lead event of a transition, with the context a salesperson needs, kept under the 64 KB detail budget. */
export function buildLeadEvent(
  workspace: string,
  facts: EntityFacts,
  evaluation: Evaluation,
  transition: Transition,
  ruleset: Ruleset,
  now: Date,
  /** Who the lead is: facts of a user-level entity may be those of an anonymous visitor (rules opting in). */
  entityType: 'user' | 'account' | 'visitor' = facts.type,
): LeadEvent {
  const since = ruleset.calendar.windowStart(now, Math.max(1, ruleset.maxWindowDays));
  const counts = new Map<string, number>();
  for (const day of facts.days) {
    if (day.day < since) continue;
    for (const [name, count] of Object.entries(day.names)) counts.set(name, (counts.get(name) ?? 0) + count);
  }
  const topEvents = [...counts.entries()]
    .sort(mostCountedFirst)
    .slice(0, 10)
    .map(([name, count]) => ({ name: name.slice(0, 200), count }));
  const traits = {
    ...(stringTrait(facts.traits, 'name', 'firstName') !== undefined ? { name: stringTrait(facts.traits, 'name', 'firstName')! } : {}),
    ...(stringTrait(facts.traits, 'email') !== undefined ? { email: stringTrait(facts.traits, 'email')! } : {}),
    ...(stringTrait(facts.traits, 'company', 'company_name') ?? stringTrait(facts.accountTraits[0] ?? {}, 'name') ? { company: (stringTrait(facts.traits, 'company', 'company_name') ?? stringTrait(facts.accountTraits[0] ?? {}, 'name'))! } : {}),
    ...(stringTrait(facts.traits, 'plan') ?? stringTrait(facts.accountTraits[0] ?? {}, 'plan') ? { plan: (stringTrait(facts.traits, 'plan') ?? stringTrait(facts.accountTraits[0] ?? {}, 'plan'))! } : {}),
  };
  const routing = leadEventRouting(transition, evaluation, facts, ruleset);
  const event: LeadEvent = {
    detailType: transition.kind === 'feedback' ? 'Lead Feedback' : leadEventType(transition.previousTier, transition.tier, transition.kind === 'converted'),
    detail: {
      workspace,
      entity: { type: entityType, id: facts.id },
      tier: transition.tier,
      previousTier: transition.previousTier,
      score: evaluation.score,
      signals: Object.entries(evaluation.signals)
        .filter(([, result]) => result.matched)
        .map(([name, result]) => ({ name, value: result.value, points: result.points })),
      ...routing,
      rulesetVersion: ruleset.version,
      evaluatedAt: isoTime(now),
      // The lead's own type: a visitor's facts are a user's, and a visitor and a user may share an id.
      idempotencyKey: idempotencyKey(workspace, { type: entityType, id: facts.id }, transition.sequence),
      reasons: transition.reasons,
      summary: summaryLine(facts, transition, evaluation, routing.owner),
      ...(transition.conversion ? { conversion: transition.conversion } : {}),
      ...(transition.feedback ? { feedback: transition.feedback } : {}),
      context: {
        traits,
        firstSeen: facts.firstSeen,
        lastSeen: facts.lastSeen,
        ...(facts.type === 'account' ? { members: facts.members.slice(0, 50).map((member) => ({ id: member.id, tier: member.tier })) } : {}),
        topEvents,
      },
    },
  };
  // Entity ids and names are bounded, so only an extreme member list can break the budget: shorten it until it fits.
  while (Buffer.byteLength(JSON.stringify(event.detail)) > maxLeadEventDetailBytes && (event.detail.context.members?.length ?? 0) > 0) {
    event.detail.context.members = event.detail.context.members!.slice(0, Math.floor(event.detail.context.members!.length / 2));
  }
  return event;
}

/**
 * Whoever was working the lead should hear what became of it: a disqualification goes to the route of the tier it
 * left, and a conversion to the route of the tier held when it converted (the tier it last qualified in, when it had
 * been disqualified since), not to the route of a tier it may still hold as a customer. A tier routing by a trait
 * gives the route the current traits choose, as it would now, so the route is always one the deployment delivers.
 * `owner` is there only when that tier names an owner trait, so events of rules without one stay as they were.
 */
function leadEventRouting(transition: Transition, evaluation: Evaluation, facts: EntityFacts, ruleset: Ruleset): { route: string | null; owner?: string | null } {
  const tierName = transition.conversion ? (transition.conversion.tier ?? transition.conversion.qualifiedTier) : (transition.tier ?? transition.previousTier);
  const tier = ruleset.file.tiers.find((candidate) => candidate.name === tierName);
  const heldNow = transition.conversion === undefined && transition.tier !== null;
  const route = heldNow ? evaluation.route : tier ? chooseRoute(tier.route, facts) : null;
  if (tier?.owner === undefined) return { route };
  return { route, owner: heldNow ? evaluation.owner : ownerOf(tier.owner, facts) };
}

/** One line for destinations that cannot loop over fields (e-mail subjects, CRM properties, input transformers). */
function summaryLine(facts: EntityFacts, transition: Transition, evaluation: Evaluation, owner: string | null | undefined): string {
  const matched = Object.entries(evaluation.signals)
    .filter(([, result]) => result.matched)
    .map(([name, result]) => (typeof result.value === 'boolean' ? name : `${name}=${String(result.value)}`));
  return `${facts.type} ${facts.id}: ${transition.previousTier ?? 'none'} -> ${transition.tier ?? 'none'}, score ${evaluation.score.total}${owner ? `, owner ${owner}` : ''}${matched.length > 0 ? `; ${matched.join(', ')}` : ''}`.slice(0, 1000);
}
