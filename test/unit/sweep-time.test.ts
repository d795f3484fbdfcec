import { describe, expect, it } from 'vitest';
import { changesByTimeAt, evaluate, type UsageEvent } from '../../functions/core/rules/engine';
import { loadRules } from '../../functions/core/rules/load';
import { factsFor } from '../support/facts';

const now = new Date('2024-06-15T12:00:00.000Z');
const hourMs = 3_600_000;
const dayMs = 24 * hourMs;
const at = (offsetMs: number) => new Date(now.getTime() + offsetMs);
const track = (event: string, when: Date): UsageEvent => ({ type: 'track', event, properties: {}, timestamp: when.toISOString() });
const rules = (signals: string) => loadRules(`version: 1\nsignals:\n${signals}\ntiers:\n  - { name: pql, min_score: 1, route: sales }\n`);
const sixHours = 6 * hourMs;

describe('when time alone can change an evaluation', () => {
  const cases: { name: string; signals: string; events: UsageEvent[]; expected: Date | null }[] = [
    { name: 'a rolling window: at the next midnight UTC', signals: '  a: { event: Login, window: 7d, points: 1 }', events: [track('Login', at(-dayMs))], expected: new Date('2024-06-16T00:00:00.000Z') },
    { name: 'inactivity: when the last activity is that many days old', signals: '  a: { inactive_for: 3d, points: 1 }', events: [track('Login', at(-2 * dayMs - hourMs))], expected: at(dayMs - hourMs) },
    { name: 'inactivity already reached: nothing more by time', signals: '  a: { inactive_for: 3d, points: 1 }', events: [track('Login', at(-4 * dayMs))], expected: null },
    { name: 'decaying points: every decay interval', signals: '  a: { event: Login, points: 10, decay: 7d }', events: [track('Login', at(-dayMs))], expected: at(sixHours) },
    { name: 'a lifetime count: never', signals: '  a: { event: Login, at_least: 1, points: 1 }', events: [track('Login', at(-dayMs))], expected: null },
    {
      name: 'several: the first of them',
      signals: '  a: { event: Login, window: 30d, points: 1 }\n  b: { inactive_for: 1d, points: -1 }',
      events: [track('Login', at(-20 * hourMs))],
      expected: at(4 * hourMs),
    },
  ];
  for (const { name, signals, events, expected } of cases) {
    it(name, () => {
      const ruleset = rules(signals);
      expect(changesByTimeAt(factsFor(events, ruleset), ruleset, now, sixHours)).toEqual(expected);
    });
  }

  it('is right: the evaluation is the same just before the moment and may differ from it on', () => {
    const ruleset = rules('  a: { inactive_for: 3d, points: 1 }');
    const facts = factsFor([track('Login', at(-2 * dayMs - hourMs))], ruleset);
    const moment = changesByTimeAt(facts, ruleset, now, sixHours)!;
    expect(evaluate(facts, ruleset, new Date(moment.getTime() - 1)).tier).toBe(evaluate(facts, ruleset, now).tier);
    expect(evaluate(facts, ruleset, moment).tier).not.toBe(evaluate(facts, ruleset, now).tier);
  });
});
