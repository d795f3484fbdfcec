import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildReport, formatSummary, outcome, rateText, replayedConversions, type Conversion } from '../../functions/analysis/metrics';
import { renderReportHtml } from '../../functions/analysis/html';
import { mondayOf } from '../../functions/core/days';
import { generatePlantedStream, type PlantedBehaviour } from '../../functions/cli/planted-stream';
import { addDays, dayEnd } from '../../functions/core/days';
import { EventHistory, mergeReplays, partitionHistory, replay, type EntityHistoryResult, type EventHistoryOptions, type ReplayResult } from '../../functions/analysis/replay';
import { lift, proportion } from '../../functions/analysis/stats';
import { validateMessage } from '../../functions/core/messages';
import { loadRules, type Ruleset } from '../../functions/core/rules/load';
import type { SampleMessage } from '../../functions/cli/sample-stream';

/** The history a replay runs on, from messages validated exactly as ingest validates them. */
function historyOf(messages: readonly object[], ruleset: Ruleset, options: EventHistoryOptions = {}): EventHistory {
  const history = new EventHistory(ruleset, options);
  messages.forEach((message, index) => {
    const accepted = validateMessage(message, index, 'test', new Date(0), { receivedAtKnown: false });
    if ('reason' in accepted) throw new Error(`message ${index}: ${accepted.path}: ${accepted.reason}`);
    history.add(accepted);
  });
  return history;
}

const firstAndLastDay = (messages: readonly SampleMessage[]) => ({ from: messages[0]!.timestamp.slice(0, 10), to: messages.at(-1)!.timestamp.slice(0, 10) });

describe('statistics', () => {
  it('gives Wilson intervals of known proportions', () => {
    const zero = proportion(0, 10);
    expect(zero.value).toBe(0);
    expect(zero.low).toBe(0);
    expect(zero.high).toBeCloseTo(0.2775, 4);
    const half = proportion(5, 10);
    expect(half.low).toBeCloseTo(0.2366, 4);
    expect(half.high).toBeCloseTo(0.7634, 4);
    const all = proportion(10, 10);
    expect(all.low).toBeCloseTo(0.7225, 4);
    expect(all.high).toBeCloseTo(1, 12);
    expect(proportion(0, 0)).toEqual({ value: 0, low: 0, high: 1 });
  });

  it('gives lift with the log-method interval, and Haldane-corrects a zero cell', () => {
    // 20/100 against 10/100: ratio 2, SE of the log = sqrt(1/20 - 1/100 + 1/10 - 1/100) = sqrt(0.13).
    const known = lift(20, 100, 10, 100)!;
    expect(known.value).toBeCloseTo(2, 10);
    expect(known.low).toBeCloseTo(2 * Math.exp(-1.959964 * Math.sqrt(0.13)), 6);
    expect(known.high).toBeCloseTo(2 * Math.exp(1.959964 * Math.sqrt(0.13)), 6);
    expect(known.low).toBeCloseTo(0.9866, 3);
    expect(known.high).toBeCloseTo(4.0543, 3);
    // Nobody converted outside: only the corrected ratio is finite, (5.5/101) / (0.5/101) = 11.
    const zero = lift(5, 100, 0, 100)!;
    expect(zero.value).toBeCloseTo(11, 10);
    expect(Number.isFinite(zero.high)).toBe(true);
    expect(lift(1, 0, 1, 10)).toBeNull();
  });

  it('gives no lift when nobody converted in either group, and one when only one group did', () => {
    // The correction alone would make these 2.75 (0.06 to 127) and 50.5 (1.30 to 1966).
    expect(lift(0, 7, 0, 21)).toBeNull();
    expect(lift(0, 1, 0, 100)).toBeNull();
    expect(lift(3, 7, 0, 21)!.value).toBeCloseTo(3.5 / 8 / (0.5 / 22), 10);
    expect(lift(0, 7, 3, 21)!.value).toBe(0);
  });

  it('centres the interval on the lift it shows, so the lift always lies within it', () => {
    // All 30 qualified converted (a zero cell): the interval was the corrected ratio's, 9.80 times exp(±z·se), around
    // the plain lift of 10.
    const all = lift(30, 30, 100, 1000)!;
    expect(all.value).toBeCloseTo(10, 12);
    expect(Math.sqrt(all.low * all.high)).toBeCloseTo(all.value, 10);
    const group = fc.integer({ min: 1, max: 5_000 }).chain((total) => fc.tuple(fc.oneof(fc.constant(0), fc.constant(total), fc.integer({ min: 0, max: total })), fc.constant(total)));
    fc.assert(
      fc.property(group, group, ([convertedIn, totalIn], [convertedOut, totalOut]) => {
        const estimate = lift(convertedIn, totalIn, convertedOut, totalOut);
        if (estimate === null) return convertedIn + convertedOut === 0;
        const { value, low, high } = estimate;
        const within = low <= value && value <= high && Number.isFinite(high);
        // On the log scale the lift is the interval's middle, whenever it is above 0.
        const centred = convertedIn === 0 ? value === 0 && low === 0 : Math.abs(Math.log(value) - (Math.log(low) + Math.log(high)) / 2) < 1e-9;
        return within && centred;
      }),
      { numRuns: 2_000 },
    );
  });

  it('keeps a lift of 0 inside the interval when none of the qualified converted', () => {
    // The corrected ratio alone gives 0/2 against 10/1000 an interval of 1.18 to 214: "predicts conversion".
    const none = lift(0, 2, 10, 1000)!;
    expect(none).toMatchObject({ value: 0, low: 0 });
    expect(none.high).toBeGreaterThan(1);
    expect(lift(0, 100, 10, 100)).toMatchObject({ value: 0, low: 0 });
    expect(lift(0, 100, 10, 100)!.high).toBeCloseTo(0.8018, 4);
  });
});

const plantedRules = loadRules(`
version: 1
signals:
  scheduled_report: { event: Report Scheduled, points: 50 }
  changed_theme: { event: Theme Changed, points: 10 }
  opened_help: { event: Help Opened, points: 10 }
tiers:
  - { name: PQL, min_score: 50, route: sales }
`);
const plantedBehaviours: PlantedBehaviour[] = [
  { name: 'scheduled', share: 0.3, conversionRate: 0.3, events: [{ event: 'Report Scheduled', count: [1, 2] }] },
  { name: 'theme', share: 0.4, events: [{ event: 'Theme Changed' }] },
  { name: 'help', share: 0.5, events: [{ event: 'Help Opened', count: [1, 3] }] },
];

describe('the backtest on a stream with planted signals', () => {
  const stream = generatePlantedStream({ seed: 3, users: 2_000, days: 45, baseRate: 0.06, behaviours: plantedBehaviours });
  const history = historyOf(stream.messages, plantedRules);
  const result = replay(history, firstAndLastDay(stream.messages));
  const report = buildReport({ replay: result, conversions: stream.conversions, conversionsFrom: 'the planted stream', ruleset: plantedRules, rulesSource: 'planted.rules.yaml', horizonDays: 30, input: { eventsRead: stream.messages.length, linesSkipped: 0, mergedIdentifiers: 0, anonymousLeftOut: 0 } });
  const signal = (name: string) => report.signals.find((candidate) => candidate.signal === name)!;

  it('recovers the planted lift (p1 / p0 = 0.3 / 0.06 = 5) inside its 95% interval, for the signal and the tier built on it', () => {
    const planted = signal('scheduled_report');
    expect(planted.lift!.low).toBeLessThan(5);
    expect(planted.lift!.high).toBeGreaterThan(5);
    expect(planted.lift!.low).toBeGreaterThan(2);
    const tier = report.tiers[0]!;
    expect(tier.lift!.low).toBeLessThan(5);
    expect(tier.lift!.high).toBeGreaterThan(5);
    // The planted behaviour's users, and only they, reached the tier: before they converted.
    const doers = stream.users.filter((user) => user.did.includes('scheduled')).length;
    expect(tier.qualified.entities).toBe(doers);
    expect(tier.precision).toBeCloseTo(tier.qualified.rate.value, 4);
    expect(report.input.entities).toEqual({ user: 2_000, account: 200 });
  });

  it('gives noise signals a lift whose interval includes 1, and warns about them', () => {
    for (const name of ['changed_theme', 'opened_help']) {
      const noise = signal(name);
      expect(noise.lift!.low, name).toBeLessThan(1);
      expect(noise.lift!.high, name).toBeGreaterThan(1);
      expect(noise.fireRate).toBeGreaterThan(0.3);
    }
    expect(report.warnings).toContain("Signals whose lift's 95% interval includes 1 (no evidence they predict conversion on this data): changed_theme, opened_help.");
    expect(report.warnings.some((warning) => warning.startsWith('Tier PQL'))).toBe(false);
  });

  it('counts recall over every converter, and lists the converters it missed', () => {
    const tier = report.tiers[0]!;
    const converters = tier.qualified.converted + tier.notQualified.converted;
    expect(tier.recall).toBeCloseTo(tier.qualified.converted / converters, 4);
    expect(report.missedConverters).toHaveLength(50);
    // One tier: every converter it did not qualify first is missed, listed or not, and the summary says how many.
    expect(report.missedConverterCount).toBe(tier.notQualified.converted);
    expect(report.missedConverterCount).toBeGreaterThan(50);
    expect(formatSummary(report)).toContain(`Converters never qualified before converting (10 of ${report.missedConverterCount}): `);
    const missed = new Set(report.missedConverters.map((entity) => entity.id));
    for (const user of stream.users.filter((candidate) => missed.has(candidate.id))) expect(user.did).not.toContain('scheduled');
    // Score thresholds: 50 is the tier's own threshold, so the same users qualify.
    expect(report.thresholds.find((point) => point.minScore === 50)!.qualified).toBe(tier.qualified.entities);
    expect(report.thresholds[0]!.qualified).toBe(2_000);
  });

  it('counts at every score threshold the users whose running maximum reached it before they converted', () => {
    const convertedAt = new Map<string, string>();
    for (const { id, convertedAt: at } of stream.conversions) if (!convertedAt.has(id) || at < convertedAt.get(id)!) convertedAt.set(id, at);
    const periodStart = `${result.from}T00:00:00.000Z`;
    const judged = result.entities.filter((entity) => {
      const converted = convertedAt.get(entity.id);
      return entity.type === 'user' && !(converted !== undefined && converted < (entity.firstSeen > periodStart ? entity.firstSeen : periodStart));
    });
    // Scores move by 10 to 70 at once here, so a rise often passes several thresholds.
    expect(report.thresholds.length).toBeGreaterThan(10);
    for (const { minScore, qualified } of report.thresholds) {
      const reached = judged.filter((user) => {
        const at = user.maxScore.find((point) => point.score >= minScore)?.at;
        const converted = convertedAt.get(user.id);
        return at !== undefined && (converted === undefined || at < converted);
      });
      expect(qualified, `min score ${minScore}`).toBe(reached.length);
    }
  });

  it('counts alerts per week from the tier entries', () => {
    const entries = result.entities.flatMap((entity) => entity.transitions.filter((transition) => transition.to === 'PQL'));
    expect(report.weekly.reduce((sum, week) => sum + (week.qualified['PQL'] ?? 0), 0)).toBe(entries.length);
    const days = (Date.parse(result.steps.at(-1)!) - Date.parse(`${result.from}T00:00:00Z`)) / 86_400_000;
    expect(report.tiers[0]!.alertsPerWeek).toBeCloseTo(entries.length / (Math.round(days) / 7), 1);
    expect(report.weekly.every((week) => mondayOf(week.week) === week.week)).toBe(true);
  });
});

/** Every kind of signal, trait signals on traits that change, accounts, a cooldown: what could leak, can. */
const everythingRules = loadRules(`
version: 1
signup: { trait: createdAt }
signals:
  reports: { event: Report Scheduled, window: 14d, points: 25, decay: 7d }
  early_theme: { event: Theme Changed, since_signup: 7d, points: 10 }
  invites: { event: Teammate Invited, distinct: invitee, window: 30d, at_least: 2, points: 20 }
  rows: { event: Data Exported, sum: rows, window: 30d, at_least: 5000, points: 15 }
  logins: { event: Logged In, window: 7d, at_least: 3, points: 15 }
  ever_exported: { event: Data Exported, points: 5 }
  inactive: { inactive_for: 7d, points: -40 }
  old: { signup_older_than: 30d, points: -10 }
  pro: { trait: plan, is: pro, points: -100 }
  big: { trait: employees, of: account, is: { gte: 100 }, points: 10 }
  engaged: { all: [logins, invites], points: 10 }
  team_logins: { level: account, event: Logged In, window: 7d, at_least: 5, points: 30 }
  team_active: { level: account, active_users: 7d, at_least: 2, points: 30 }
  builders: { level: account, members_matching: invites, points: 20 }
  has_lead: { level: account, best_member_tier: hot, points: 20 }
  account_big: { level: account, trait: employees, is: { gte: 100 }, points: 10 }
tiers:
  - { name: hot, min_score: 45, route: sales, level: user }
  - { name: warm, min_score: 20, route: nurture, level: user }
  - { name: team, min_score: 50, route: sales, level: account }
policy: { cooldown: 5d }
`);
const everythingBehaviours: PlantedBehaviour[] = [
  { name: 'reports', share: 0.3, conversionRate: 0.3, events: [{ event: 'Report Scheduled', count: [1, 3] }] },
  { name: 'invites', share: 0.3, conversionRate: 0.25, events: [{ event: 'Teammate Invited', count: [1, 4], distinct: 'invitee' }] },
  { name: 'exports', share: 0.3, events: [{ event: 'Data Exported', count: [1, 3], properties: { rows: [500, 2000, 4000] } }] },
  { name: 'theme', share: 0.4, events: [{ event: 'Theme Changed' }] },
];

describe('no future data reaches a decision', () => {
  const stream = generatePlantedStream({ seed: 11, users: 150, accounts: 12, days: 40, baseRate: 0.05, behaviours: everythingBehaviours });
  const { from, to } = firstAndLastDay(stream.messages);
  const full = replay(historyOf(stream.messages, everythingRules), { from, to });

  const upTo = (entity: EntityHistoryResult, at: string) => ({
    transitions: entity.transitions.filter((transition) => transition.at <= at),
    firstFired: Object.fromEntries(Object.entries(entity.firstFired).filter(([, time]) => time <= at)),
    maxScore: entity.maxScore.filter((point) => point.at <= at),
  });

  it('has something to decide: qualifications, disqualifications, account tiers, later traits', () => {
    const transitions = full.entities.flatMap((entity) => entity.transitions);
    expect(transitions.some((transition) => transition.to === 'hot')).toBe(true);
    expect(transitions.some((transition) => transition.to === 'team')).toBe(true);
    expect(transitions.some((transition) => transition.from !== null && transition.to === null)).toBe(true);
    expect(full.entities.some((entity) => Object.hasOwn(entity.firstFired, 'pro'))).toBe(true);
    expect(full.accountsEvaluated).toBe(true);
  });

  it.each([7, 15, 24, 33])('decides every step up to day %i the same with and without the events after it', (offset) => {
    const cut = addDays(from, offset);
    const at = dayEnd(cut);
    const past = stream.messages.filter((message) => message.timestamp <= at);
    expect(past.length).toBeLessThan(stream.messages.length);
    const truncated = replay(historyOf(past, everythingRules), { from, to: cut });
    const seenByThen = full.entities.filter((entity) => entity.firstSeen <= at);
    expect(truncated.entities.map((entity) => `${entity.type} ${entity.id}`).sort()).toEqual(seenByThen.map((entity) => `${entity.type} ${entity.id}`).sort());
    const byKey = new Map(truncated.entities.map((entity) => [`${entity.type} ${entity.id}`, entity]));
    for (const entity of seenByThen) {
      const key = `${entity.type} ${entity.id}`;
      expect(upTo(byKey.get(key)!, at), key).toEqual(upTo(entity, at));
    }
    expect(to > cut).toBe(true);
  });

  it('uses a trait only from the moment it was set', () => {
    const rules = loadRules(`
version: 1
signals:
  pro: { trait: plan, is: pro, points: 50 }
  acme: { trait: industry, of: account, is: software, points: 10 }
tiers:
  - { name: paying, min_score: 50, route: sales }
`);
    const messages = [
      { type: 'identify', userId: 'ann', traits: { plan: 'free' }, timestamp: '2025-01-01T10:00:00Z', messageId: 'm1' },
      { type: 'track', userId: 'ann', event: 'Logged In', timestamp: '2025-01-02T10:00:00Z', messageId: 'm2' },
      // Out of order on purpose: the input need not be sorted.
      { type: 'identify', userId: 'ann', traits: { plan: 'pro' }, timestamp: '2025-01-05T10:00:00Z', messageId: 'm4' },
      { type: 'group', userId: 'ann', groupId: 'acme', traits: { industry: 'software' }, timestamp: '2025-01-04T10:00:00Z', messageId: 'm3' },
      { type: 'identify', userId: 'ann', traits: { plan: 'free' }, timestamp: '2025-01-08T10:00:00Z', messageId: 'm5' },
    ];
    const result = replay(historyOf(messages, rules), { from: '2025-01-01', to: '2025-01-10' });
    const ann = result.entities.find((entity) => entity.id === 'ann')!;
    expect(ann.firstFired).toEqual({ acme: '2025-01-04T23:59:59.999Z', pro: '2025-01-05T23:59:59.999Z' });
    expect(ann.transitions).toEqual([
      { at: '2025-01-05T23:59:59.999Z', from: null, to: 'paying' },
      { at: '2025-01-08T23:59:59.999Z', from: 'paying', to: null },
    ]);
    expect(ann.maxScore).toEqual([
      { at: '2025-01-01T23:59:59.999Z', score: 0 },
      { at: '2025-01-04T23:59:59.999Z', score: 10 },
      { at: '2025-01-05T23:59:59.999Z', score: 60 },
    ]);
  });
});

describe('the replay', () => {
  const rules = loadRules(`
version: 1
signals:
  exported: { event: Data Exported, window: 7d, points: 30 }
  never_seen: { event: Nothing Like This, points: 5 }
tiers:
  - { name: lead, min_score: 30, route: sales }
policy: { cooldown: 3d }
`);
  const track = (userId: string, event: string, timestamp: string, messageId: string) => ({ type: 'track', userId, event, timestamp, messageId });

  it('qualifies at the end of the event\'s day, drops out when the window passes, and re-qualifies when its cooldown ends', () => {
    const messages = [
      track('bo', 'Data Exported', '2025-02-01T09:00:00Z', 'a'),
      // Qualifies on score again, but the 3-day cooldown after dropping out on 02-08 holds it back.
      track('bo', 'Data Exported', '2025-02-09T10:00:00Z', 'b'),
      // The cooldown is over at the end of 02-11: a sweep looks at bo then, by time alone, before this event.
      track('bo', 'Logged In', '2025-02-12T08:00:00Z', 'c'),
    ];
    const result = replay(historyOf(messages, rules), { from: '2025-02-01', to: '2025-02-14' });
    expect(result.steps[0]).toBe('2025-02-01T23:59:59.999Z');
    expect(result.entities[0]!.transitions).toEqual([
      { at: '2025-02-01T23:59:59.999Z', from: null, to: 'lead' },
      // The 7-day window ending 02-08 starts on 02-02.
      { at: '2025-02-08T23:59:59.999Z', from: 'lead', to: null },
      { at: '2025-02-11T23:59:59.999Z', from: null, to: 'lead' },
    ]);
    // Signals and scores are what the rules say at every step, whether or not the evaluator would have looked.
    expect(result.entities[0]!.firstFired).toEqual({ exported: '2025-02-01T23:59:59.999Z' });
  });

  it('counts an event received on a later day from then with asReceived, as the evaluator could, and from its own time without', () => {
    const lateRules = loadRules(`
version: 1
signals:
  exported_twice: { event: Data Exported, window: 7d, at_least: 2, points: 30 }
  exported_thrice_ever: { event: Data Exported, at_least: 3, points: 30 }
  exported_four_ever: { event: Data Exported, at_least: 4, points: 1 }
tiers:
  - { name: top, min_score: 60, route: sales }
  - { name: lead, min_score: 30, route: nurture }
`);
    const messages = [
      track('di', 'Data Exported', '2025-02-01T09:00:00Z', 'a'),
      // Late for a day already counted when it comes, and for a day with nothing else (its day made then).
      { ...track('di', 'Data Exported', '2025-02-01T10:00:00Z', 'b'), receivedAt: '2025-02-04T08:00:00Z' },
      { ...track('di', 'Data Exported', '2025-02-02T12:00:00Z', 'c'), receivedAt: '2025-02-06T09:00:00Z' },
      track('di', 'Data Exported', '2025-02-03T11:00:00Z', 'd'),
      // Received the same day: on time.
      { ...track('di', 'Logged In', '2025-02-03T11:00:00Z', 'e'), receivedAt: '2025-02-03T23:00:00Z' },
    ];
    const period = { from: '2025-02-01', to: '2025-02-08' };
    const asTimed = historyOf(messages, lateRules);
    const timed = replay(asTimed, period).entities[0]!;
    expect(timed.transitions).toEqual([
      { at: '2025-02-01T23:59:59.999Z', from: null, to: 'lead' },
      { at: '2025-02-02T23:59:59.999Z', from: 'lead', to: 'top' },
    ]);
    expect(timed.firstFired['exported_four_ever']).toBe('2025-02-03T23:59:59.999Z');

    const asReceived = historyOf(messages, lateRules, { asReceived: true });
    const received = replay(asReceived, period).entities[0]!;
    expect(received.transitions).toEqual([
      { at: '2025-02-03T23:59:59.999Z', from: null, to: 'lead' },
      { at: '2025-02-04T23:59:59.999Z', from: 'lead', to: 'top' },
    ]);
    // The lifetime total took the day made late in: 4 events by 02-06, not before.
    expect(received.firstFired).toEqual({ exported_twice: '2025-02-03T23:59:59.999Z', exported_thrice_ever: '2025-02-04T23:59:59.999Z', exported_four_ever: '2025-02-06T23:59:59.999Z' });
    expect([asTimed.stats.lateEvents, asReceived.stats.lateEvents]).toEqual([2, 2]);
  });

  it('steps every stepDays days, counts a repeated messageId once, and keeps nothing after `until`', () => {
    const messages = [
      track('cy', 'Data Exported', '2025-03-01T09:00:00Z', 'same'),
      track('cy', 'Data Exported', '2025-03-01T10:00:00Z', 'same'),
      track('cy', 'Data Exported', '2025-03-02T10:00:00Z', 'same'),
      track('cy', 'Data Exported', '2025-03-20T10:00:00Z', 'late'),
    ];
    const history = new EventHistory(rules, { until: dayEnd('2025-03-10') });
    for (const [index, message] of messages.entries()) {
      const accepted = validateMessage(message, index, 'test', new Date(0), { receivedAtKnown: false });
      if ('reason' in accepted) throw new Error(accepted.reason);
      history.add(accepted);
    }
    expect(history.stats).toMatchObject({ messages: 2, duplicates: 1, ignoredAfter: 1, firstTimestamp: '2025-03-01T09:00:00.000Z', lastTimestamp: '2025-03-02T10:00:00.000Z' });
    const result = replay(history, { from: '2025-03-01', to: '2025-03-10', stepDays: 3 });
    expect(result.steps).toEqual(['2025-03-01', '2025-03-04', '2025-03-07', '2025-03-10'].map(dayEnd));
    expect(result.entities[0]!.transitions).toEqual([
      { at: dayEnd('2025-03-01'), from: null, to: 'lead' },
      { at: dayEnd('2025-03-10'), from: 'lead', to: null },
    ]);
    expect(() => replay(history, { from: '2025-03-05', to: '2025-03-01' })).toThrow('is after');
  });

  it('ends a period that is no whole number of steps with a shorter step on its last day, whose days are judged too', () => {
    const messages = [track('di', 'Data Exported', '2025-03-01T09:00:00Z', 'a'), track('ed', 'Data Exported', '2025-03-11T09:00:00Z', 'b')];
    // Twelve days in steps of a week: 03-01, 03-08, and 03-12 for the last four days (03-09 to 03-12).
    const result = replay(historyOf(messages, rules), { from: '2025-03-01', to: '2025-03-12', stepDays: 7 });
    expect(result.steps).toEqual(['2025-03-01', '2025-03-08', '2025-03-12'].map(dayEnd));
    expect(result.entities.find((entity) => entity.id === 'ed')!.transitions).toEqual([{ at: dayEnd('2025-03-12'), from: null, to: 'lead' }]);
    const report = buildReport({ replay: result, conversions: [], conversionsFrom: 'none', ruleset: rules, rulesSource: 'r.yaml', horizonDays: 30, input: { eventsRead: 2, linesSkipped: 0, mergedIdentifiers: 0, anonymousLeftOut: 0 } });
    expect(report.period).toEqual({ from: '2025-03-01', to: '2025-03-12', stepDays: 7, horizonDays: 30 });
    expect(report.tiers[0]!.qualified.entities).toBe(2);
    expect(formatSummary(report)).toContain('Period 2025-03-01 to 2025-03-12, a step every 7 days (the last, on 2025-03-12, after 4 days), ');
    expect(renderReportHtml(report)).toContain('<span data-metric="period:stepDays" data-value="7">7</span> days (the last 4 days)</dd>');
    expect(formatSummary({ ...report, period: { ...report.period, to: '2025-03-15' } })).toContain('a step every 7 days, conversions');
  });

  it("begins the period, and counts its weeks for alerts per week, by the days of the rules' time zone", () => {
    const days = Array.from({ length: 7 }, (_, index) => addDays('2025-01-06', index));
    // Auckland is at UTC+13 in January, Kiritimati at UTC+14: their days begin on the UTC day before.
    for (const timezone of ['UTC', 'America/New_York', 'Pacific/Auckland', 'Pacific/Kiritimati']) {
      const zoned = loadRules(`version: 1\ntimezone: ${timezone}\nsignals:\n  exported: { event: Data Exported, points: 30 }\ntiers:\n  - { name: lead, min_score: 30, route: sales }\n`);
      const hour = 3_600_000;
      const periodStart = zoned.calendar.startOf(days[0]!);
      // One lead a day, at local noon; and one that converted an hour before the period began there: not judged.
      const messages = days.map((day, index) => track(`u${index}`, 'Data Exported', new Date(zoned.calendar.startOf(day) + 12 * hour).toISOString(), `m${index}`));
      const early = new Date(periodStart - hour).toISOString();
      const result = replay(historyOf([track('early', 'Data Exported', early, 'e'), ...messages], zoned), { from: days[0]!, to: days.at(-1)!, stepDays: 1 });
      const report = buildReport({ replay: result, conversions: [{ type: 'user', id: 'early', convertedAt: early }], conversionsFrom: 'a test list', ruleset: zoned, rulesSource: 'r.yaml', horizonDays: 30, input: { eventsRead: 8, linesSkipped: 0, mergedIdentifiers: 0, anonymousLeftOut: 0 } });
      const entries = result.entities.flatMap((entity) => entity.transitions.filter((transition) => transition.to === 'lead'));
      expect(entries.length, timezone).toBe(messages.length + 1);
      // The early user qualified before the period (the replay's warm-up): a lead, not one of the period's alerts.
      expect(entries.filter((entry) => Date.parse(entry.at) < periodStart), timezone).toHaveLength(1);
      expect(report.tiers[0]!.alertsPerWeek, timezone).toBeCloseTo(messages.length / (days.length / 7), 9);
      expect(report.warnings, timezone).toContain('1 entities converted before the period began or before their first event: they are not judged.');
    }
  });

  it('makes the leads of the history before --from leads when the period begins, not alerts of its first day', () => {
    const rules = loadRules('version: 1\nsignals:\n  exported: { event: Data Exported, window: 30d, points: 30 }\ntiers:\n  - { name: lead, min_score: 30, route: sales }\n');
    const messages = [
      track('before', 'Data Exported', '2025-02-20T12:00:00Z', 'b1'),
      track('before', 'Data Exported', '2025-03-03T12:00:00Z', 'b2'),
      track('during', 'Data Exported', '2025-03-05T12:00:00Z', 'd1'),
    ];
    const result = replay(historyOf(messages, rules), { from: '2025-03-01', to: '2025-03-14', stepDays: 1 });
    const transitionsOf = (id: string) => result.entities.find((entity) => entity.id === id)!.transitions;
    // Qualified by the history before the period: at the warm-up, the day before it, as the rules live then had it.
    expect(transitionsOf('before')).toEqual([{ at: dayEnd('2025-02-28'), from: null, to: 'lead' }]);
    expect(transitionsOf('during')).toEqual([{ at: dayEnd('2025-03-05'), from: null, to: 'lead' }]);
    expect(result.steps[0]).toBe(dayEnd('2025-03-01'));
    expect(result.steps).toHaveLength(14);
    const report = buildReport({ replay: result, conversions: [], conversionsFrom: 'a test list', ruleset: rules, rulesSource: 'r.yaml', horizonDays: 30, input: { eventsRead: 3, linesSkipped: 0, mergedIdentifiers: 0, anonymousLeftOut: 0 } });
    // Both are leads of the period; only the one made during it is an alert of it.
    expect(report.tiers[0]!.qualified.entities).toBe(2);
    expect(report.tiers[0]!.alertsPerWeek).toBeCloseTo(1 / 2, 9);
    expect(report.weekly.reduce((sum, week) => sum + week.qualified['lead']!, 0)).toBe(1);
  });

  it('names an anonymous visitor judged as a lead a visitor, apart from a user of the same id, as the lead events do', () => {
    const rules = loadRules('version: 1\nidentity: { anonymous_leads: true }\nsignals:\n  exported: { event: Data Exported, window: 30d, points: 30 }\ntiers:\n  - { name: lead, min_score: 30, route: sales }\n');
    const messages = [
      track('x', 'Report Run', '2025-03-02T12:00:00Z', 'u1'),
      { type: 'track', anonymousId: 'x', event: 'Data Exported', timestamp: '2025-03-03T12:00:00Z', messageId: 'v1' },
    ];
    const result = replay(historyOf(messages, rules), { from: '2025-03-01', to: '2025-03-10', stepDays: 1 });
    expect(result.entities.map(({ type, id, transitions }) => ({ type, id, transitions }))).toEqual([
      { type: 'user', id: 'x', transitions: [] },
      { type: 'visitor', id: 'x', transitions: [{ at: dayEnd('2025-03-03'), from: null, to: 'lead' }] },
    ]);
    // A conversion names its entity's type: the user's is not the visitor's.
    const conversions: Conversion[] = [{ type: 'user', id: 'x', convertedAt: '2025-03-05T00:00:00.000Z' }];
    const report = buildReport({ replay: result, conversions, conversionsFrom: 'a test list', ruleset: rules, rulesSource: 'r.yaml', horizonDays: 30, input: { eventsRead: 2, linesSkipped: 0, mergedIdentifiers: 0, anonymousLeftOut: 0 } });
    expect(report.input.entities).toEqual({ user: 2, account: 0 });
    expect(report.tiers[0]!.qualified).toMatchObject({ entities: 1, converted: 0 });
    expect(report.missedConverters).toEqual([{ type: 'user', id: 'x', convertedAt: '2025-03-05T00:00:00.000Z' }]);
  });

  it("gives an aliased user's events to its new user, but not its traits or accounts, as ingest and the evaluator keep them", () => {
    const merged = loadRules(`
version: 1
signup: { trait: createdAt }
signals:
  exported: { event: Data Exported, window: 7d, points: 10 }
  settled: { signup_older_than: 3d, points: 10 }
  big_account: { trait: employees, of: account, is: { gte: 100 }, points: 10 }
tiers:
  - { name: lead, min_score: 30, route: sales }
`);
    const messages = [
      { type: 'identify', userId: 'new', traits: { createdAt: '2025-03-01T00:00:00Z' }, timestamp: '2025-03-01T08:00:00Z', messageId: 'i-new' },
      { type: 'identify', userId: 'old', traits: { createdAt: '2025-03-05T00:00:00Z' }, timestamp: '2025-03-05T08:00:00Z', messageId: 'i-old' },
      { type: 'group', userId: 'old', groupId: 'acme', traits: { employees: 500 }, timestamp: '2025-03-05T08:00:00Z', messageId: 'g-old' },
      track('old', 'Data Exported', '2025-03-05T09:00:00Z', 'e-old'),
      { type: 'alias', userId: 'new', previousId: 'old', timestamp: '2025-03-06T08:00:00Z', messageId: 'alias' },
    ];
    const result = replay(historyOf(messages, merged), { from: '2025-03-06', to: '2025-03-06' });
    const newUser = result.entities.find((entity) => entity.type === 'user' && entity.id === 'new')!;
    // old's export (10) and new's own signup, 5 days back (10): not old's later createdAt, nor acme's size. Its signup
    // was 3 days old already at the warm-up, the day before the period.
    expect(result.scoreRange.user?.max).toBe(20);
    expect(newUser.maxScore).toEqual([{ at: dayEnd('2025-03-05'), score: 10 }, { at: dayEnd('2025-03-06'), score: 20 }]);
    expect(newUser.transitions).toEqual([]);
    expect(newUser.firstFired).toEqual({ exported: dayEnd('2025-03-06'), settled: dayEnd('2025-03-05') });
  });

  /** One signal and one tier, and a conversion the events can make: for the conversions listed under merged ids. */
  const aliasRules = loadRules(`
version: 1
conversion: { trait: plan, is: pro }
signals:
  exported: { event: Data Exported, points: 10 }
tiers:
  - { name: lead, min_score: 10, route: sales }
`);

  it('counts a conversion listed under an aliased userId or a claimed visitor as its user\'s, judged as that user', () => {
    const messages = [
      track('new', 'Data Exported', '2025-03-01T09:00:00Z', 'e-new'),
      track('old', 'Logged In', '2025-03-02T09:00:00Z', 'l-old'),
      { type: 'alias', userId: 'new', previousId: 'old', timestamp: '2025-03-03T08:00:00Z', messageId: 'alias' },
      { type: 'track', anonymousId: 'visitor', event: 'Logged In', timestamp: '2025-03-01T07:00:00Z', messageId: 'l-visitor' },
      { type: 'track', userId: 'other', anonymousId: 'visitor', event: 'Logged In', timestamp: '2025-03-02T07:00:00Z', messageId: 'l-other' },
    ];
    // Visitors as leads (identity.anonymous_leads), so that the claimed visitor is judged apart until its claim, as a user aliased away is.
    const result = replay(historyOf(messages, aliasRules, { anonymous: true }), { from: '2025-03-01', to: '2025-03-05' });
    expect(result.entities.filter((entity) => entity.mergedInto !== undefined).map(({ type, id, mergedInto }) => ({ type, id, mergedInto }))).toEqual([
      { type: 'user', id: 'old', mergedInto: 'new' },
      { type: 'visitor', id: 'visitor', mergedInto: 'other' },
    ]);
    // As a CRM lists them: under the ids it knew the people by. The earlier of two conversions of one person counts.
    const conversions: Conversion[] = [
      { type: 'user', id: 'old', convertedAt: '2025-03-04T00:00:00.000Z' },
      { type: 'user', id: 'new', convertedAt: '2025-03-05T00:00:00.000Z' },
      { type: 'visitor', id: 'visitor', convertedAt: '2025-03-04T12:00:00.000Z' },
    ];
    const report = buildReport({ replay: result, conversions, conversionsFrom: 'a test list', ruleset: aliasRules, rulesSource: 'r.yaml', horizonDays: 30, input: { eventsRead: messages.length, linesSkipped: 0, mergedIdentifiers: 2, anonymousLeftOut: 0 } });
    expect(report.input.entities).toEqual({ user: 2, account: 0 });
    // new qualified on its first day and converted (as old) on the 4th: a lead that converted.
    expect(report.tiers[0]!.qualified).toMatchObject({ entities: 1, converted: 1 });
    expect(report.missedConverters).toEqual([{ type: 'user', id: 'other', convertedAt: '2025-03-04T12:00:00.000Z' }]);
    expect(report.warnings.filter((warning) => warning.includes('never appear'))).toEqual([]);
  });

  it("counts a conversion listed under a claimed visitor as its user's when visitors are not judged on their own", () => {
    const messages = [
      { type: 'track', anonymousId: 'visitor', event: 'Logged In', timestamp: '2025-03-01T07:00:00Z', messageId: 'l-visitor' },
      { type: 'track', userId: 'other', anonymousId: 'visitor', event: 'Data Exported', timestamp: '2025-03-02T07:00:00Z', messageId: 'e-other' },
      { type: 'track', anonymousId: 'later', event: 'Logged In', timestamp: '2025-03-01T07:00:00Z', messageId: 'l-later' },
      // Claimed after the last step: not that user's by the period's end.
      { type: 'track', userId: 'third', anonymousId: 'later', event: 'Logged In', timestamp: '2025-03-07T07:00:00Z', messageId: 'l-third' },
    ];
    // The ids the file lists as visitors (the CLI passes them): a browser history has one or more per user.
    const named = { namedVisitors: new Set(['visitor', 'later']) };
    const result = replay(historyOf(messages, aliasRules, named), { from: '2025-03-01', to: '2025-03-05' });
    expect(result.entities.map(({ type, id }) => `${type} ${id}`)).toEqual(['user other']);
    expect(result.claimedVisitors).toEqual([{ id: 'visitor', into: 'other' }]);
    expect(replay(historyOf(messages, aliasRules), { from: '2025-03-01', to: '2025-03-05' }).claimedVisitors).toEqual([]);
    // Partitioned, each claimed visitor goes with its user: merged, the same as the whole.
    expect(mergeReplays(partitionHistory(historyOf(messages, aliasRules, named), 3).map((part) => replay(part, { from: '2025-03-01', to: '2025-03-05' })))).toEqual(result);
    const conversions: Conversion[] = [
      { type: 'visitor', id: 'visitor', convertedAt: '2025-03-04T12:00:00.000Z' },
      { type: 'visitor', id: 'later', convertedAt: '2025-03-04T12:00:00.000Z' },
    ];
    const report = buildReport({ replay: result, conversions, conversionsFrom: 'a test list', ruleset: aliasRules, rulesSource: 'r.yaml', horizonDays: 30, input: { eventsRead: messages.length, linesSkipped: 0, mergedIdentifiers: 1, anonymousLeftOut: 1 } });
    expect(report.tiers[0]!.qualified).toMatchObject({ entities: 1, converted: 1 });
    expect(report.warnings.filter((warning) => warning.includes('never appear'))).toEqual(['1 converted entities never appear in the events by the last step: they are not judged.']);
  });

  it("lists a conversion the events make under an aliased userId once, as its user's", () => {
    const messages = [
      track('old', 'Data Exported', '2025-03-01T09:00:00Z', 'e-old'),
      { type: 'identify', userId: 'old', traits: { plan: 'pro' }, timestamp: '2025-03-02T09:00:00Z', messageId: 'i-old' },
      { type: 'alias', userId: 'new', previousId: 'old', timestamp: '2025-03-04T08:00:00Z', messageId: 'alias' },
    ];
    const result = replay(historyOf(messages, aliasRules), { from: '2025-03-01', to: '2025-03-05' });
    expect(replayedConversions(result)).toEqual([{ type: 'user', id: 'new', convertedAt: '2025-03-02T09:00:00.000Z' }]);
  });

  it('judges a person from the first of its identifiers: a lead and a conversion under a userId aliased away later are a hit', () => {
    const messages = [
      track('old', 'Data Exported', '2025-03-01T09:00:00Z', 'e-old'),
      { type: 'identify', userId: 'old', traits: { plan: 'pro' }, timestamp: '2025-03-02T09:00:00Z', messageId: 'i-old' },
      track('new', 'Logged In', '2025-03-03T09:00:00Z', 'l-new'),
      { type: 'alias', userId: 'new', previousId: 'old', timestamp: '2025-03-04T08:00:00Z', messageId: 'alias' },
      track('never', 'Logged In', '2025-03-01T10:00:00Z', 'l-never'),
    ];
    const result = replay(historyOf(messages, aliasRules), { from: '2025-03-01', to: '2025-03-05' });
    const report = buildReport({ replay: result, conversions: replayedConversions(result), conversionsFrom: 'the events', ruleset: aliasRules, rulesSource: 'r.yaml', horizonDays: 30, input: { eventsRead: messages.length, linesSkipped: 0, mergedIdentifiers: 1, anonymousLeftOut: 0 } });
    // new's own first message came after the conversion old made: judged alone, it converted before it was first seen.
    expect(report.warnings.filter((warning) => warning.includes('before their first event'))).toEqual([]);
    expect(report.input.entities).toEqual({ user: 2, account: 0 });
    // old qualified at the end of 03-01 and converted on 03-02, a day later: the person's tier and signal, both hits.
    expect(report.tiers[0]).toMatchObject({ qualified: { entities: 1, converted: 1 }, notQualified: { entities: 1, converted: 0 }, medianDaysToConversion: expect.closeTo(9 / 24, 5) });
    expect(report.signals[0]).toMatchObject({ signal: 'exported', fired: { entities: 1, converted: 1 }, fireRate: 0.5 });
    expect(report.thresholds.find((point) => point.minScore === 10)).toMatchObject({ qualified: 1, precision: 1, recall: 1 });
    expect(report.missedConverters).toEqual([]);
  });
});

describe('the report', () => {
  const rules = loadRules(`
version: 1
signals:
  a: { event: A, points: 10 }
  b: { event: B, points: 0 }
tiers:
  - { name: top, min_score: 10, route: sales }
`);
  const steps = Array.from({ length: 14 }, (_, index) => dayEnd(addDays('2025-04-01', index)));
  const entity = (id: string, firstSeen: string, qualifiedAt?: string): EntityHistoryResult => ({
    type: 'user',
    id,
    firstSeen,
    transitions: qualifiedAt ? [{ at: qualifiedAt, from: null, to: 'top' }] : [],
    firstFired: qualifiedAt ? { a: qualifiedAt } : {},
    maxScore: [{ at: steps[0]!, score: 0 }, ...(qualifiedAt ? [{ at: qualifiedAt, score: 10 }] : [])],
  });
  const replayResult: ReplayResult = {
    from: '2025-04-01',
    to: '2025-04-14',
    stepDays: 1,
    steps,
    accountsEvaluated: false,
    claimedVisitors: [],
    scoreRange: { user: { min: 0, max: 10 }, account: null },
    entities: [
      entity('u1', '2025-04-01T08:00:00.000Z', steps[1]), // qualified 04-02, converts 04-05: a hit
      entity('u2', '2025-04-01T08:00:00.000Z', steps[2]), // qualified 04-03, converts 40 days later: outside the horizon
      entity('u3', '2025-04-02T08:00:00.000Z', steps[5]), // converts 04-04, before qualifying on 04-06: missed
      entity('u4', '2025-04-03T08:00:00.000Z'), // never qualified, converts 04-10: missed
      entity('u5', '2025-04-03T08:00:00.000Z'), // never qualified, never converts
      entity('u6', '2025-04-05T08:00:00.000Z', steps[6]), // converted before it was first seen: not judged
      entity('u7', '2025-04-01T08:00:00.000Z', steps[3]), // qualified, never converts
    ],
  };
  const conversions: Conversion[] = [
    { type: 'user', id: 'u1', convertedAt: '2025-04-05T12:00:00.000Z' },
    { type: 'user', id: 'u1', convertedAt: '2025-04-09T12:00:00.000Z', value: 10 },
    { type: 'user', id: 'u2', convertedAt: '2025-05-13T12:00:00.000Z' },
    { type: 'user', id: 'u3', convertedAt: '2025-04-04T12:00:00.000Z' },
    { type: 'user', id: 'u4', convertedAt: '2025-04-10T12:00:00.000Z' },
    { type: 'user', id: 'u6', convertedAt: '2025-04-02T12:00:00.000Z' },
    { type: 'user', id: 'stranger', convertedAt: '2025-04-02T12:00:00.000Z' },
  ];
  const report = buildReport({ replay: replayResult, conversions, conversionsFrom: 'a test list', ruleset: rules, rulesSource: 'r.yaml', horizonDays: 30, input: { eventsRead: 100, linesSkipped: 2, mergedIdentifiers: 3, anonymousLeftOut: 4 }, generatedAt: new Date('2025-05-01T00:00:00Z') });

  it('applies the definitions: qualified before converting, converted within the horizon, judged entities only', () => {
    const top = report.tiers[0]!;
    // Qualified before converting: u1, u2, u7 (u3 qualified after it converted; u6 is not judged).
    expect(top.qualified).toMatchObject({ entities: 3, converted: 1 });
    // The comparison group: u3 (converted), u4 (converted), u5.
    expect(top.notQualified).toMatchObject({ entities: 3, converted: 2 });
    expect(top.precision).toBeCloseTo(1 / 3, 4);
    // Converters within the period plus the horizon (ending 05-14): u1, u2 (05-13), u3, u4.
    expect(top.recall).toBeCloseTo(1 / 4, 4);
    expect(top.f1).toBeCloseTo((2 * (1 / 3) * (1 / 4)) / (1 / 3 + 1 / 4), 4);
    expect(top.medianDaysToConversion).toBeCloseTo(2.5, 1);
    expect(top.lift!.value).toBeCloseTo(1 / 3 / (2 / 3), 3);
    expect(top.alertsPerWeek).toBeCloseTo(5 / 2, 2);
    expect(report.missedConverters.map((missed) => missed.id)).toEqual(['u3', 'u4']);
    expect(report.missedConverterCount).toBe(2);
    expect(report.signals.find((signal) => signal.signal === 'a')).toMatchObject({ fired: { entities: 3, converted: 1 }, fireRate: 2 / 3 });
    expect(report.input).toEqual({ eventsRead: 100, linesSkipped: 2, entities: { user: 7, account: 0 }, mergedIdentifiers: 3, anonymousLeftOut: 4, lateEvents: 0, asReceived: false, conversions: 7, conversionsFrom: 'a test list' });
    expect(formatSummary(report)).toContain('Identities: 3 identifiers merged into their users; 4 anonymous visitors nobody claimed left out');
    expect(report.weekly).toEqual([
      { week: '2025-03-31', qualified: { top: 4 } },
      { week: '2025-04-07', qualified: { top: 1 } },
      { week: '2025-04-14', qualified: { top: 0 } },
    ]);
  });

  it('warns about small groups, a lift interval that includes 1, signals that fire never or for nearly everyone, and unjudged input', () => {
    expect(report.warnings).toEqual(
      expect.arrayContaining([
        '2 malformed input lines were skipped (--skip-bad).',
        '1 converted entities never appear in the events by the last step: they are not judged.',
        '1 entities converted before the period began or before their first event: they are not judged.',
        'Tier top: only 3 qualified entities (under 30): too few to trust its rates.',
        'Tier top: only 3 entities in its comparison group (under 30): too few to trust its lift.',
        expect.stringMatching(/^Tier top: its lift's 95% interval \(0\.\d+ to \d+\.\d+\) includes 1/),
        'Signal b never fired: it tells nothing on this data.',
      ]),
    );
    const everyone = buildReport({
      replay: { ...replayResult, entities: replayResult.entities.map((item) => ({ ...item, firstFired: { ...item.firstFired, b: steps[0]! } })) },
      conversions,
      conversionsFrom: 'a test list',
      ruleset: rules,
      rulesSource: 'r.yaml',
      horizonDays: 30,
      input: { eventsRead: 100, linesSkipped: 0, mergedIdentifiers: 0, anonymousLeftOut: 0 },
    });
    expect(everyone.warnings).toContain('Signal b fired for 100% of users: it cannot tell them apart.');
  });

  it('shows no lift, in the JSON, the summary and the HTML, when nobody converted', () => {
    const none = buildReport({ replay: replayResult, conversions: [], conversionsFrom: 'a test list', ruleset: rules, rulesSource: 'r.yaml', horizonDays: 30, input: { eventsRead: 100, linesSkipped: 0, mergedIdentifiers: 0, anonymousLeftOut: 0 } });
    expect(none.tiers[0]).toMatchObject({ qualified: { entities: 5, converted: 0 }, notQualified: { entities: 2, converted: 0 }, lift: null });
    expect(none.signals.map((signal) => signal.lift)).toEqual([null, null]);
    expect(none.warnings).toContain('Tier top: no lift (nobody converted in either group).');
    expect(formatSummary(none)).toMatch(/top +both +0\/5 0% \(0%-\d+%\) +0\/2 0% \(0%-\d+%\) +- /);
    const html = renderReportHtml(none);
    expect(html).toContain('data-metric="tier:top:lift" data-value="null"');
    expect(html).not.toContain('data-metric="tier:top:lift:low"');
    expect(html).toContain('<span class="verdict none">no lift (nobody converted in either group)</span>');
  });

  it('says in the HTML why there is no lift: which group is empty (a signal that never fired), or that nobody converted', () => {
    const html = renderReportHtml(report);
    const signalB = report.signals.find((signal) => signal.signal === 'b')!;
    expect(signalB).toMatchObject({ fired: { entities: 0 }, lift: null });
    expect(signalB.notFired.entities).toBeGreaterThan(0);
    const row = html.split('<tr>').find((cells) => cells.includes('<code>b</code>'))!;
    expect(row).toContain('<span class="verdict none">no lift (never fired)</span>');
    expect(html).toMatch(/<text class="na"[^>]*><tspan data-metric="signal:b:lift" data-value="null">—<\/tspan> no lift \(never fired\)<\/text>/);
    const nobodyQualified = renderReportHtml({ ...report, tiers: [{ ...report.tiers[0]!, qualified: outcome(0, 0), lift: null }] });
    expect(nobodyQualified).toContain('<span class="verdict none">no lift (nobody qualified)</span>');
  });

  it('rounds a figure once, where it is written: the JSON keeps it exact', () => {
    // A Wilson lower bound of 9.4512%: rounded to 0.0945 in the report first, it was written 9.4%.
    const group = outcome(235, 31);
    expect(group.rate).toEqual(proportion(31, 235));
    expect(group.rate.low).toBeCloseTo(0.094512, 6);
    expect(rateText(group)).toBe('31/235 13% (9.5%-18%)');
    const html = renderReportHtml({ ...report, tiers: [{ ...report.tiers[0]!, qualified: group }] });
    expect(html).toContain(`<span data-metric="tier:top:qualified:rate:low" data-value="${group.rate.low}">9.5%</span>`);
    // The report's figures are the statistics' own, to the last digit.
    const top = report.tiers[0]!;
    expect(top.lift).toEqual(lift(top.qualified.converted, top.qualified.entities, top.notQualified.converted, top.notQualified.entities));
    expect(top.precision).toBe(1 / 3);
  });

  it('prints a summary with every tier and signal', () => {
    const summary = formatSummary(report);
    expect(summary).toContain('Backtest of r.yaml');
    expect(summary).toMatch(/top\s+both\s+1\/3 33% \(\d+\.?\d*%-\d+%\)\s+2\/3 67%/);
    expect(summary).toContain('Warnings:');
    expect(summary).toContain('Converters never qualified before converting (2): user u3, user u4');
  });
});
