import { describe, expect, it } from 'vitest';
import { buildHealthReport, formatHealth, recordOf, rulesVersionOf, type EvaluatedLead, type RecordedBacktest } from '../../functions/analysis/live-health';
import { buildReport, outcome, type Conversion } from '../../functions/analysis/metrics';
import type { EntityHistoryResult } from '../../functions/analysis/replay';
import { addDays, dayEnd } from '../../functions/core/days';
import { feedbackOfReasonLine, feedbackReasonLine, type LeadFeedback } from '../../functions/core/lead-feedback';
import { mergedAway, mergedIntoOf, type LeadHistoryEntry, type LeadState } from '../../functions/core/lead-state';
import { loadRules } from '../../functions/core/rules/load';
import { topTierLift } from '../../functions/health/top-tier';

const dayMs = 86_400_000;
const now = new Date('2026-06-30T00:00:00Z');
const daysAgo = (days: number) => new Date(now.getTime() - days * dayMs).toISOString();
const ruleset = loadRules(`
version: 1
signals:
  active: { event: Login, window: 90d, points: 50 }
tiers:
  - { name: PQL-A, min_score: 50, route: sales }
policy: { feedback_reasons: { not_a_fit: 30d, bad_timing: 14d } }
`);

/** A lead state as the evaluator leaves it: only the fields rule health reads matter. */
function state(fields: { history?: LeadHistoryEntry[]; qualification?: LeadState['qualification']; conversion?: LeadState['conversion']; evaluatedAt?: string; matched?: string[]; rulesetVersion?: string }): LeadState {
  return {
    tier: null,
    route: null,
    score: 0,
    since: null,
    cooldownUntil: null,
    sequence: fields.history?.length ?? 0,
    rulesetVersion: fields.rulesetVersion ?? 'v1',
    evaluatedAt: fields.evaluatedAt ?? daysAgo(1),
    matched: fields.matched ?? [],
    lastSeen: null,
    history: fields.history ?? [],
    ...(fields.qualification ? { qualification: fields.qualification } : {}),
    ...(fields.conversion ? { conversion: fields.conversion } : {}),
  };
}

let serial = 0;
const user = (lead: LeadState, type: 'user' | 'account' = 'user'): EvaluatedLead => ({ ref: { workspace: 'default', type, id: `${type}_${serial++}` }, lead });

/** Qualified into `tier` `qualifiedDaysAgo`; converted `convertedAfterDays` later, if given; with these history lines after qualifying. */
function lead(tier: string, qualifiedDaysAgo: number, convertedAfterDays?: number, laterHistory: LeadHistoryEntry[] = []): LeadState {
  const at = daysAgo(qualifiedDaysAgo);
  return state({
    history: [{ tier, previousTier: null, at, reasons: [`${tier}: score 60 >= 50`] }, ...laterHistory],
    qualification: { at, tier, signals: ['active'] },
    ...(convertedAfterDays !== undefined ? { conversion: { at: daysAgo(qualifiedDaysAgo - convertedAfterDays), tier } } : {}),
  });
}

const nonLead = (convertedDaysAgo?: number) => state(convertedDaysAgo !== undefined ? { conversion: { at: daysAgo(convertedDaysAgo), tier: null } } : {});

const feedbackEntry = (tier: string, daysAgoGiven: number, feedback: Pick<LeadFeedback, 'outcome' | 'reason'>): LeadHistoryEntry => {
  const at = daysAgo(daysAgoGiven);
  return { tier: null, previousTier: tier, at, reasons: [feedbackReasonLine({ ...feedback, at, via: 'link', id: `f${serial++}` }, ruleset)] };
};

/** PQL-A: 100 leads, 40 converted (40%); non-leads: 300, 30 converted (10%). PQL-B: 5 leads. Feedback on some PQL-A leads. */
function plantedLeads(): EvaluatedLead[] {
  const leads: EvaluatedLead[] = [];
  for (let index = 0; index < 100; index++) {
    const history =
      index >= 90 ? [feedbackEntry('PQL-A', 10, { outcome: 'disqualified', reason: index < 97 ? 'not_a_fit' : 'bad_timing' })] : index === 89 ? [feedbackEntry('PQL-A', 10, { outcome: 'done', reason: null })] : [];
    leads.push(user(lead('PQL-A', 60, index < 40 ? 10 : undefined, history)));
  }
  for (let index = 0; index < 300; index++) leads.push(user(nonLead(index < 30 ? 20 : undefined)));
  for (let index = 0; index < 5; index++) leads.push(user(lead('PQL-B', 30, index < 2 ? 4 : undefined)));
  return leads;
}

describe('rule health after go-live', () => {
  const report = buildHealthReport({ leads: plantedLeads(), now, periodDays: 90 });
  const tier = (name: string) => report.tiers.find((candidate) => candidate.tier === name)!;

  it("recovers a tier's conversion rate, the non-leads' and the lift with its interval", () => {
    const a = tier('PQL-A');
    expect(a.qualified).toMatchObject({ entities: 100, converted: 40 });
    expect(a.qualified.rate.value).toBeCloseTo(0.4);
    expect(a.qualified.rate.low).toBeLessThan(0.4);
    expect(a.qualified.rate.high).toBeGreaterThan(0.4);
    // The non-leads exclude PQL-B's five leads: they entered a tier.
    expect(a.notQualified).toMatchObject({ entities: 300, converted: 30 });
    expect(a.lift!.value).toBeCloseTo(4, 1);
    expect(a.lift!.low).toBeGreaterThan(2.5);
    expect(a.lift!.low).toBeLessThan(4);
    expect(a.lift!.high).toBeGreaterThan(4);
    expect(a.medianDaysToConversion).toBe(10);
    // 100 entries over the 60 days since the first transition of the period (the rules went live then).
    expect(a.alertsPerWeek).toBeCloseTo(100 / (60 / 7), 2);
    expect(report.entities).toEqual({ user: 405, account: 0 });
  });

  it('warns about small samples as the backtest does, and not about a tier with enough', () => {
    expect(report.warnings).toContain('Tier PQL-B: only 5 qualified entities (under 30): too few to trust its rates.');
    expect(report.warnings.filter((warning) => warning.startsWith('Tier PQL-A'))).toEqual([]);
    expect(tier('PQL-B').qualified).toMatchObject({ entities: 5, converted: 2 });
  });

  it('counts the leads given sales feedback per tier by outcome and reason', () => {
    expect(tier('PQL-A').feedback).toEqual([
      { outcome: 'disqualified', reason: 'not_a_fit', leads: 7 },
      { outcome: 'disqualified', reason: 'bad_timing', leads: 3 },
      { outcome: 'done', reason: null, leads: 1 },
    ]);
    expect(tier('PQL-B').feedback).toEqual([]);
  });

  it('counts a lead given feedback twice once, by the latest given', () => {
    const twice = buildHealthReport({
      leads: [
        user(lead('PQL-A', 30, undefined, [feedbackEntry('PQL-A', 20, { outcome: 'done', reason: null }), feedbackEntry('PQL-A', 10, { outcome: 'disqualified', reason: 'not_a_fit' })])),
        user(lead('PQL-A', 30, undefined, [feedbackEntry('PQL-A', 10, { outcome: 'disqualified', reason: 'not_a_fit' })])),
      ],
      now,
      periodDays: 90,
    });
    expect(twice.tiers[0]!.feedback).toEqual([{ outcome: 'disqualified', reason: 'not_a_fit', leads: 2 }]);
    expect(formatHealth(twice)).toMatch(/leads given feedback[\s\S]*disqualified not_a_fit 2$/m);
  });

  it('leaves out what falls outside the period: old qualifications, old feedback, entities converted before it', () => {
    const old = buildHealthReport({
      leads: [
        // Qualified before the period, evaluated in it: neither a lead of the period nor a non-lead.
        user(lead('PQL-A', 120, undefined, [feedbackEntry('PQL-A', 100, { outcome: 'disqualified', reason: 'not_a_fit' })])),
        user(lead('PQL-A', 120, 5)),
        user(nonLead(95)),
        user(state({ evaluatedAt: daysAgo(91) })),
        user(nonLead()),
      ],
      now,
      periodDays: 90,
    });
    expect(old.tiers).toEqual([]);
    expect(old.entities).toEqual({ user: 2, account: 0 });
    const withNewLead = buildHealthReport({ leads: [user(lead('PQL-A', 120)), user(lead('PQL-A', 10)), user(nonLead())], now, periodDays: 90 });
    expect(withNewLead.tiers[0]).toMatchObject({ tier: 'PQL-A', qualified: { entities: 1 }, notQualified: { entities: 1 } });
  });

  it('runs the period to the latest state when a pass of a later time saved some (evaluate --at), and says so', () => {
    const inThreeWeeks = new Date(now.getTime() + 21 * dayMs).toISOString();
    const ahead = state({ evaluatedAt: inThreeWeeks, history: [{ tier: 'PQL-A', previousTier: null, at: inThreeWeeks, reasons: [] }], qualification: { at: inThreeWeeks, tier: 'PQL-A', signals: ['active'] } });
    const report = buildHealthReport({ leads: [user(lead('PQL-A', 7)), user(ahead), user(nonLead())], now, periodDays: 90 });
    expect(report.period.to).toBe(inThreeWeeks);
    expect(report.tiers[0]).toMatchObject({ tier: 'PQL-A', qualified: { entities: 2 } });
    // Two entries over the four weeks from the first to the period's end.
    expect(report.tiers[0]!.alertsPerWeek).toBeCloseTo(2 / 4, 5);
    expect(report.warnings).toContain(`A pass of a later time than now (evaluate --at) saved some states: the period runs to ${inThreeWeeks}, the latest of them.`);
    expect(buildHealthReport({ leads: [user(lead('PQL-A', 7))], now, periodDays: 90 }).period.to).toBe(now.toISOString());
  });

  it('counts the entries so far as the week\'s while the states cover less than a week (rules just live), and says so', () => {
    const hoursAgo = (hours: number) => new Date(now.getTime() - hours * 3_600_000).toISOString();
    const fresh = (at: string) => state({ evaluatedAt: at, history: [{ tier: 'PQL-A', previousTier: null, at, reasons: [] }], qualification: { at, tier: 'PQL-A', signals: ['active'] } });
    const report = buildHealthReport({ leads: [user(fresh(hoursAgo(2))), user(fresh(hoursAgo(1))), user(nonLead())], now, periodDays: 90 });
    expect(report.tiers[0]!.alertsPerWeek).toBe(2);
    expect(report.warnings).toContain('The states cover less than a day (from the first entry into a tier, as the rules went live): alerts/wk counts the entries so far, not a week\'s rate yet.');
    const threeDays = buildHealthReport({ leads: [user(lead('PQL-A', 3)), user(nonLead())], now, periodDays: 90 });
    expect(threeDays.tiers[0]!.alertsPerWeek).toBe(1);
    expect(threeDays.warnings.some((warning) => warning.startsWith('The states cover 3 day(s)'))).toBe(true);
  });

  it('does not count a qualification after converting: the rules did not find that customer', () => {
    const late = buildHealthReport({ leads: [user(lead('PQL-A', 10, -5)), user(nonLead())], now, periodDays: 90 });
    expect(late.tiers[0]!.qualified.entities).toBe(0);
    expect(late.tiers[0]!.notQualified).toMatchObject({ entities: 2, converted: 1 });
  });

  it('gives no lift when neither the leads nor the non-leads converted, and the daily job reports none', () => {
    const none = buildHealthReport({ leads: [...Array.from({ length: 7 }, () => user(lead('PQL-A', 10))), ...Array.from({ length: 21 }, () => user(nonLead()))], now, periodDays: 90 });
    expect(none.tiers[0]).toMatchObject({ qualified: { entities: 7, converted: 0 }, notQualified: { entities: 21, converted: 0 }, lift: null });
    expect(none.warnings).toContain('Tier PQL-A: no lift (nobody converted in either group).');
    expect(formatHealth(none)).toMatch(/PQL-A +user +0\/7 0% \(0%-\d+%\) +0\/21 0% \(0%-\d+%\) +- /);
    expect(topTierLift(none, ['PQL-A'])).toBeUndefined();
  });

  it("gives the daily job a lower bound of 0 when none of the top tier's leads converted and non-leads did", () => {
    const leads = [...Array.from({ length: 2 }, () => user(lead('PQL-A', 10))), ...Array.from({ length: 1000 }, (_, index) => user(nonLead(index < 10 ? 5 : undefined)))];
    const report = buildHealthReport({ leads, now, periodDays: 90 });
    expect(report.tiers[0]).toMatchObject({ qualified: { entities: 2, converted: 0 }, lift: { value: 0, low: 0 } });
    expect(report.warnings).toContainEqual(expect.stringMatching(/^Tier PQL-A: its lift's 95% interval \(0\.00 to \d+\) includes 1/));
    expect(topTierLift(report, ['PQL-A'])!.lift.low).toBe(0);
  });

  it('compares an account tier with the accounts that did not qualify, not the users', () => {
    const accounts = buildHealthReport({ leads: [user(lead('ACCT', 10, 1), 'account'), user(nonLead(3), 'account'), user(nonLead(3)), user(nonLead())], now, periodDays: 90 });
    expect(accounts.tiers[0]).toMatchObject({ tier: 'ACCT', level: 'account', qualified: { entities: 1, converted: 1 }, notQualified: { entities: 1, converted: 1 } });
  });

  it('prints the period in words', () => {
    expect(formatHealth(buildHealthReport({ leads: plantedLeads(), now, periodDays: 1 }))).toMatch(/^Rule health: the last 1 day \(2026-06-29 to 2026-06-30\)/);
    const none = buildHealthReport({ leads: [], now, periodDays: 14 });
    expect(formatHealth(none)).toMatch(/^Rule health: the last 14 days \(/);
    expect(none.warnings).toContain('No entity was evaluated in the last 14 days.');
  });

  it('prints a table with each tier and the warnings', () => {
    const text = formatHealth(report);
    expect(text).toMatch(/PQL-A +user +40\/100 40% \(31%-50%\) +30\/300 10% \(7.1%-14%\) +4.00 \(2.64-6.06\)/);
    expect(text).toContain('disqualified not_a_fit 7');
    expect(text).toContain('Warnings:');
  });
});

describe('identifiers merged into a user', () => {
  const ref = (type: 'user' | 'visitor', id: string) => ({ workspace: 'default', type, id });
  // A visitor qualified (visitors as leads), then signed up as u-1 and converted as u-1, who never qualified on its own.
  const visitorLead: LeadState = {
    ...lead('PQL-A', 30, undefined, [feedbackEntry('PQL-A', 25, { outcome: 'done', reason: null })]),
    matched: ['active'],
    evaluatedAt: daysAgo(20),
  };
  const person = (mergedInto?: string): EvaluatedLead[] => [
    { ref: ref('visitor', 'v-1'), lead: { ...visitorLead, ...(mergedInto !== undefined ? { mergedInto } : {}) } },
    { ref: ref('user', 'u-1'), lead: { ...state({ conversion: { at: daysAgo(10), tier: null, signals: [] } }) } },
  ];

  it('judges them as one person with their user: a lead under one id that converted under the other is a lead that converted', () => {
    const apart = buildHealthReport({ leads: person(), now, periodDays: 90 });
    expect(apart.entities.user).toBe(2);
    expect(apart.tiers[0]).toMatchObject({ qualified: { entities: 1, converted: 0 }, notQualified: { entities: 1, converted: 1 } });
    const one = buildHealthReport({ leads: person('u-1'), now, periodDays: 90 });
    expect(one.entities.user).toBe(1);
    expect(one.tiers[0]).toMatchObject({ qualified: { entities: 1, converted: 1 }, notQualified: { entities: 0, converted: 0 }, medianDaysToConversion: 20 });
    expect(one.tiers[0]!.feedback).toEqual([{ outcome: 'done', reason: null, leads: 1 }]);
    // The signal the visitor matched fired for the person who converted.
    expect(one.signals).toMatchObject([{ signal: 'active', fired: { entities: 1, converted: 1 } }]);
  });

  it("reads the user from a lead's last transition when its state was saved before states named it", () => {
    const before = mergedAway(visitorLead, { id: 'u-1' }, ruleset, new Date(daysAgo(20))).state;
    expect(before.mergedInto).toBeUndefined();
    expect(mergedIntoOf(before)).toBe('u-1');
    expect(mergedIntoOf(visitorLead)).toBeUndefined();
    const report = buildHealthReport({ leads: [{ ref: ref('visitor', 'v-1'), lead: before }, person()[1]!], now, periodDays: 90 });
    expect(report.entities.user).toBe(1);
    expect(report.tiers[0]).toMatchObject({ qualified: { entities: 1, converted: 1 } });
  });

  it('follows a chain of merges to the last user, and judges one whose user has no state on its own', () => {
    const chain: EvaluatedLead[] = [
      { ref: ref('user', 'old'), lead: { ...lead('PQL-A', 40), mergedInto: 'middle' } },
      { ref: ref('user', 'middle'), lead: { ...state({}), mergedInto: 'last' } },
      { ref: ref('user', 'last'), lead: nonLead(5) },
      { ref: ref('user', 'orphan'), lead: { ...lead('PQL-A', 40), mergedInto: 'nobody' } },
    ];
    const report = buildHealthReport({ leads: chain, now, periodDays: 90 });
    expect(report.entities.user).toBe(2);
    expect(report.tiers[0]).toMatchObject({ qualified: { entities: 2, converted: 1 }, notQualified: { entities: 0, converted: 0 } });
  });
});

describe("each signal's live conversion rate", () => {
  /** 60 users the signal fired for (30 converted: it matched when they converted), 240 it did not (24 converted). */
  const leads = [
    ...Array.from({ length: 60 }, (_, index) => user(state(index < 30 ? { conversion: { at: daysAgo(5), tier: null, signals: ['invited'] } } : { matched: ['invited'] }))),
    ...Array.from({ length: 240 }, (_, index) => user(state(index < 24 ? { conversion: { at: daysAgo(5), tier: null, signals: [] }, matched: ['invited'] } : {}))),
    // A converter recorded before the signals were kept at conversion: its current matches say nothing of then.
    user(state({ conversion: { at: daysAgo(5), tier: null }, matched: ['invited'] })),
  ];
  const report = buildHealthReport({ leads, now, periodDays: 90 });

  it('recovers the planted rates and lift, leaving out converters whose signals at conversion are unknown', () => {
    expect(report.signals).toHaveLength(1);
    const invited = report.signals[0]!;
    expect(invited).toMatchObject({ signal: 'invited', level: 'user', fired: { entities: 60, converted: 30 }, notFired: { entities: 240, converted: 24 }, fireRate: 0.2 });
    expect(invited.lift!.value).toBeCloseTo(5, 1);
    expect(invited.lift!.low).toBeGreaterThan(3);
    expect(formatHealth(report)).toMatch(/invited +user +20% +30\/60 50% .* +24\/240 10% .* +5\.00 \(/);
  });
});

describe('promised vs delivered', () => {
  const backtest = (version: string): RecordedBacktest => ({
    rules: { source: 'rules.yaml', version },
    period: { from: '2026-01-01', to: '2026-03-31', stepDays: 1, horizonDays: 30 },
    generatedAt: '2026-04-01T00:00:00.000Z',
    conversionsFrom: 'the event stream',
    tiers: [{ tier: 'PQL-A', qualified: outcome(200, 90), notQualified: outcome(2000, 160), lift: { value: 5.63, low: 4.5, high: 7 }, alertsPerWeek: 15.4, medianDaysToConversion: 8 }],
    signals: [{ signal: 'active', level: 'user', fired: outcome(300, 100), notFired: outcome(1900, 150), lift: { value: 4.2, low: 3.3, high: 5.4 }, fireRate: 0.14 }],
  });

  it("puts the backtest of the period's rules version beside each tier", () => {
    const report = buildHealthReport({ leads: plantedLeads(), now, periodDays: 90, backtest: backtest('v1') });
    expect(report.rulesVersion).toBe('v1');
    expect(report.promised).toMatchObject({ rules: { version: 'v1' }, period: { horizonDays: 30 } });
    expect(report.tiers.find((tier) => tier.tier === 'PQL-A')!.promised).toMatchObject({ qualified: { entities: 200, converted: 90 }, lift: { value: 5.63 } });
    expect(report.tiers.find((tier) => tier.tier === 'PQL-B')!.promised).toBeNull();
    const text = formatHealth(report);
    expect(text).toContain('Promised vs delivered: the backtest of rules version v1 (2026-01-01 to 2026-03-31, conversions within 30 days)');
    expect(text).toMatch(/PQL-A +90\/200 45% .* +40\/100 40% .* +5\.63 \(4\.50-7\.00\) +4\.00 \(2\.64-6\.06\) +15\.4 +11\.7/);
    expect(report.warnings.some((warning) => warning.startsWith('No backtest is recorded'))).toBe(false);
  });

  it("ignores a backtest of other rules, and says none is recorded for the period's", () => {
    const report = buildHealthReport({ leads: plantedLeads(), now, periodDays: 90, backtest: backtest('v0') });
    expect(report.promised).toBeNull();
    expect(report.tiers.every((tier) => tier.promised === null)).toBe(true);
    expect(formatHealth(report)).not.toContain('Promised vs delivered');
    expect(report.warnings).toContain('No backtest is recorded for rules version v1: `pql-radar backtest --rules FILE --record` puts its figures beside these.');
  });

  it('compares a tier with the same group as the recorded backtest: the non-leads, not the leads of other tiers', () => {
    // The same entities in a backtest and live: 18 PQL-A leads (6 convert), 8 PQL-B leads (2 convert), 34 non-leads (4 convert).
    const twoTiers = loadRules(`
version: 1
signals:
  active: { event: Login, points: 50 }
tiers:
  - { name: PQL-A, min_score: 50, route: sales }
  - { name: PQL-B, min_score: 20, route: sales }
`);
    const groups = [
      { tier: 'PQL-A', entities: 18, converted: 6 },
      { tier: 'PQL-B', entities: 8, converted: 2 },
      { tier: null, entities: 34, converted: 4 },
    ];
    const steps = Array.from({ length: 28 }, (_, index) => dayEnd(addDays('2026-05-01', index)));
    const entities: EntityHistoryResult[] = [];
    const conversions: Conversion[] = [];
    const live: EvaluatedLead[] = [];
    for (const { tier, entities: count, converted } of groups) {
      for (let index = 0; index < count; index++) {
        const id = `${tier ?? 'none'}-${index}`;
        entities.push({ type: 'user', id, firstSeen: '2026-05-01T08:00:00.000Z', transitions: tier ? [{ at: steps[2]!, from: null, to: tier }] : [], firstFired: {}, maxScore: [{ at: steps[0]!, score: 0 }] });
        if (index < converted) conversions.push({ type: 'user', id, convertedAt: `${addDays('2026-05-01', 10)}T12:00:00.000Z` });
        live.push(user(tier ? lead(tier, 60, index < converted ? 10 : undefined) : nonLead(index < converted ? 20 : undefined)));
      }
    }
    const backtestReport = buildReport({
      replay: { from: '2026-05-01', to: '2026-05-28', stepDays: 1, steps, accountsEvaluated: false, claimedVisitors: [], scoreRange: { user: { min: 0, max: 50 }, account: null }, entities },
      conversions,
      conversionsFrom: 'a test list',
      ruleset: twoTiers,
      rulesSource: 'rules.yaml',
      horizonDays: 30,
      input: { eventsRead: 0, linesSkipped: 0, mergedIdentifiers: 0, anonymousLeftOut: 0 },
    });
    const report = buildHealthReport({ leads: live, now, periodDays: 90, backtest: { ...recordOf(backtestReport), rules: { source: 'rules.yaml', version: 'v1' } } });
    for (const tier of report.tiers) {
      expect(tier.promised, tier.tier).toMatchObject({ qualified: tier.qualified, notQualified: tier.notQualified, lift: tier.lift });
    }
    const pqlA = report.tiers.find((tier) => tier.tier === 'PQL-A')!;
    expect(pqlA).toMatchObject({ qualified: { entities: 18, converted: 6 }, notQualified: { entities: 34, converted: 4 } });
    expect(pqlA.lift!.value).toBeCloseTo(6 / 18 / (4 / 34), 12);
  });

  it("takes the rules version of the period's latest evaluation, and warns when the period mixes versions", () => {
    const leads = [user(state({ rulesetVersion: 'old', evaluatedAt: daysAgo(40) })), user(state({ rulesetVersion: 'new', evaluatedAt: daysAgo(2) })), user(state({ rulesetVersion: 'older', evaluatedAt: daysAgo(100) }))];
    expect(rulesVersionOf(leads, now, 90)).toBe('new');
    expect(rulesVersionOf(leads, now, 1)).toBeNull();
    expect(buildHealthReport({ leads, now, periodDays: 90 }).warnings).toContain('The period\'s entities were last evaluated by 2 rules versions: its figures mix them; a shorter --since shows the latest alone.');
  });
});

describe('reading feedback back from a history line', () => {
  it('gives the outcome and reason feedbackReasonLine wrote, and nothing for other lines', () => {
    const line = (feedback: Pick<LeadFeedback, 'outcome' | 'reason'>) => feedbackReasonLine({ ...feedback, at: now.toISOString(), via: 'cli', id: 'x' }, ruleset);
    expect(feedbackOfReasonLine(line({ outcome: 'disqualified', reason: 'not_a_fit' }))).toEqual({ outcome: 'disqualified', reason: 'not_a_fit' });
    expect(feedbackOfReasonLine(line({ outcome: 'done', reason: null }))).toEqual({ outcome: 'done', reason: null });
    expect(feedbackOfReasonLine('PQL-A: score 60 >= 50')).toBeUndefined();
  });
});
