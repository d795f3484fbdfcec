import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { maxStateBytes } from '../../functions/core/facts';
import { daySizeWarnings, worstDaySize } from '../../functions/core/rules/day-size';
import { maxDistinctValueLength, maxNameBytes, maxNamesPerDay, rollupDay, type UsageEvent } from '../../functions/core/rules/engine';
import { maxDistinctValues } from '../../functions/core/rules/limits';
import { loadRules, loadRulesJson, RulesError } from '../../functions/core/rules/load';
import { maxIdentifierLength, segmentMessageSchema } from '../../functions/core/segment-schema';
import { loadRulesFile } from '../../functions/local/rules-file';

/** A rules file counting distinct values of `count` properties, each of any product event. */
const distinctRules = (count: number, more = '') =>
  `version: 1\nsignals:\n${Array.from({ length: count }, (_, index) => `  distinct_${index}: { event: "*", distinct: p${index}, window: 7d, points: 1 }\n`).join('')}${more}` +
  'tiers:\n  - { name: hot, min_score: 1000, route: sales }\n';

/** The fewest distinct signals whose values alone, at the engine's bounds, pass `bytes`. */
const signalsPast = (bytes: number) => Math.floor(bytes / (maxDistinctValues * maxDistinctValueLength)) + 1;

/** The problems a load throws; none when it loads. */
const problemsOf = (load: () => unknown) => {
  try {
    load();
  } catch (error) {
    if (error instanceof RulesError) return error.problems;
    throw error;
  }
  return [];
};

describe("a day rollup's worst size, from the rules", () => {
  it('leaves the examples and a few distinct signals alone', () => {
    const examples = join(import.meta.dirname, '../../examples');
    const files = readdirSync(examples).filter((name) => name.endsWith('.rules.yaml'));
    expect(files.length).toBeGreaterThan(0);
    for (const name of files) expect(daySizeWarnings(loadRulesFile(join(examples, name)).ruleset)).toEqual([]);
    expect(daySizeWarnings(loadRules(distinctRules(3)))).toEqual([]);
  });

  it('refuses rules whose day can pass the bound a state is kept within, naming the distinct signals and the figure', () => {
    const count = signalsPast(maxStateBytes);
    const text = distinctRules(count);
    const problems = problemsOf(() => loadRules(text, 'many.rules.yaml'));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ path: 'signals', line: 2 });
    const message = problems[0]!.message;
    expect(message).toMatch(/^a day's rollup of one user can reach [\d.]+ KB of JSON, more than the 192 KB a state is kept within: DynamoDB may refuse to save such a day/);
    expect(message).toContain(`for each of the ${count} distinct signals ${Array.from({ length: count }, (_, index) => `distinct_${index}`).join(', ')}`);
    const figure = Number(/can reach ([\d.]+) KB/.exec(message)![1]) * 1024;
    expect(figure).toBeGreaterThan(count * maxDistinctValues * maxDistinctValueLength);
    // Read as JSON (the backtest's workers), refused the same way, without a line.
    const signals = Object.fromEntries(Array.from({ length: count }, (_, index) => [`distinct_${index}`, { event: '*', distinct: `p${index}`, points: 1 }]));
    const json = JSON.stringify({ version: 1, signals, tiers: [{ name: 'hot', min_score: 1000, route: 'sales' }] });
    expect(problemsOf(() => loadRulesJson(json))).toEqual([{ path: 'signals', message: expect.stringMatching(/^a day's rollup of one user can reach/) }]);
  });

  it('warns of rules whose two open days cannot both fit, and loads them', () => {
    const count = signalsPast(maxStateBytes / 2);
    const warnings = daySizeWarnings(loadRules(distinctRules(count)));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^signals: a day's rollup of one user can reach [\d.]+ KB of JSON, more than half the 192 KB a state is kept within: two such days/);
    expect(warnings[0]).toContain(`for each of the ${count} distinct signals distinct_0,`);
  });

  it('bounds a day the engine rolls up from the worst a client can send, and not by much more', () => {
    // Every kind of measure field: a sum, sessions, and the first event a time-to-value signal reads.
    const rules = loadRules(
      distinctRules(
        3,
        '  seats: { event: "*", sum: seats, window: 7d, points: 1 }\n  sessions: { event: "*", count: sessions, window: 7d, points: 1 }\n' +
          '  quick: { from: signup, to: distinct_0, within: 7d, points: 1 }\n',
      ),
    );
    // The longest names ingest takes, kept as they are, and the longest values a distinct measure keeps as they are.
    expect(maxNameBytes).toBe(maxIdentifierLength);
    const name = (index: number) => `${index}`.padStart(maxIdentifierLength, 'n');
    expect(segmentMessageSchema.safeParse({ type: 'track', userId: 'u', event: name(0) }).success).toBe(true);
    expect(segmentMessageSchema.safeParse({ type: 'track', userId: 'u', event: `${name(0)}n` }).success).toBe(false);
    const value = (signal: number, index: number) => `${signal}:${index}`.padStart(maxDistinctValueLength, 'v');
    const events: UsageEvent[] = Array.from({ length: 2 * maxDistinctValues }, (_, index) => ({
      type: 'track',
      event: name(index % (maxNamesPerDay + 1)),
      properties: { p0: value(0, index), p1: value(1, index), p2: value(2, index), seats: -1.2345678901234567e-7 * (index + 1) },
      timestamp: new Date(Date.UTC(2024, 5, 15, 0, 0, index)).toISOString(),
    }));
    const rollup = rollupDay('2024-06-15', events, rules);
    expect(Object.keys(rollup.names)).toHaveLength(maxNamesPerDay);
    for (const signal of ['distinct_0', 'distinct_1', 'distinct_2']) expect(rollup.measures[signal]!.distinct).toHaveLength(maxDistinctValues);
    expect(rollup.measures['distinct_0']!.first).toBeDefined();
    expect(rollup.measures['sessions']!.sessions).toBeGreaterThan(0);

    const real = Buffer.byteLength(JSON.stringify(rollup));
    const bound = worstDaySize(rules).bytes;
    expect(bound).toBeGreaterThanOrEqual(real);
    expect(bound).toBeLessThanOrEqual(real * 1.25);
  });

  it('bounds it in bytes when clients send three-byte characters and characters JSON escapes, as long as ingest takes them', () => {
    const rules = loadRules(distinctRules(3));
    const text = (prefix: string, fill: string, length: number) => `${prefix}`.padStart(length, fill);
    const events: UsageEvent[] = Array.from({ length: 2 * maxDistinctValues }, (_, index) => ({
      type: 'track',
      event: text(`${index % (maxNamesPerDay + 1)}`, index % 2 === 0 ? '語' : '\u0001', maxIdentifierLength),
      properties: { p0: text(`${index}`, '語', maxDistinctValueLength), p1: text(`${index}`, '\u0001', maxDistinctValueLength), p2: text(`${index}`, '"', maxDistinctValueLength) },
      timestamp: new Date(Date.UTC(2024, 5, 15, 0, 0, index)).toISOString(),
    }));
    const rollup = rollupDay('2024-06-15', events, rules);
    // As many names and values as before, three to six times the bytes as sent, and no more than the bound as kept.
    expect(Object.keys(rollup.names)).toHaveLength(maxNamesPerDay);
    expect(rollup.measures['distinct_1']!.distinct).toHaveLength(maxDistinctValues);
    expect(Buffer.byteLength(JSON.stringify(events))).toBeGreaterThan(3 * worstDaySize(rules).bytes);
    expect(Buffer.byteLength(JSON.stringify(rollup))).toBeLessThanOrEqual(worstDaySize(rules).bytes);
  });
});
