import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { acceptCommonMessage, parseEvent, resolvedTime } from '../../functions/cli/backtest-input';
import { validateMessage } from '../../functions/core/messages';

/**
 * The backtest's validation fast path (acceptCommonMessage) must give exactly what ingest's validation gives (zod
 * and normalise): the same AcceptedMessage, key order included, for every message it takes, and it must never take
 * a message ingest refuses. Messages are generated around the common shapes, with the unusual values zod cares
 * about mixed in (empty, numeric, overlong, lone-surrogate identifiers, bad times, nulls, arrays, extra fields).
 */

const awkwardString = fc.oneof(
  fc.constantFrom('', 'a', 'user_1', 'x'.repeat(200), 'x'.repeat(201), '\ud800', 'é', '__proto__', 'constructor', 'toString', ' '),
  fc.string({ maxLength: 12 }),
);
const identifier = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('user_1', 'user_2', 'anon-9', 'u') }, { weight: 3, arbitrary: awkwardString }, { weight: 1, arbitrary: fc.constantFrom(42, 0, -1, 1.5, null, true, [], {}) });
const time = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: Date.UTC(1999, 0, 1), max: Date.UTC(2030, 0, 1) }).map((ms) => new Date(ms).toISOString()) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '2025-01-01T00:00:00Z',
      '2025-01-01T00:00:00+02:00',
      '2025-01-01T00:00:00.123456789Z',
      '2024-02-29T12:00:00Z',
      '2023-02-29T12:00:00Z',
      '2025-13-01T00:00:00Z',
      '2025-01-01',
      '2025-01-01T00:00Z',
      '2025-01-01 00:00:00Z',
      '1999-12-31T23:59:59Z',
      '0000-01-01T00:00:00Z',
      '2025-01-01T24:00:00Z',
      '2025-01-01T00:00:00-00:00',
      '2025-01-01T00:00:00+0200',
      '2025-01-01T00:00:00.5-0530',
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom(1735689600, null, '', 'now') },
);
const jsonValue = fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.boolean(), fc.constant(null), fc.double({ noNaN: true, noDefaultInfinity: true }));
const record = fc.oneof(
  { weight: 8, arbitrary: fc.dictionary(fc.oneof(fc.constantFrom('plan', 'createdAt', 'employees', 'name', 'groupId', 'traits', '0', '10'), fc.string({ maxLength: 5 })), fc.oneof(jsonValue, fc.array(jsonValue, { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 3 }), jsonValue, { maxKeys: 2 })), { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom(null, [], 'text', 3) },
);
const context = fc.oneof(
  { weight: 6, arbitrary: fc.record({ groupId: identifier, traits: record, ip: fc.constant('1.2.3.4'), library: fc.constant({ name: 'analytics.js' }) }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: fc.constantFrom(null, [], 'ctx') },
);
/** Mostly a valid value, sometimes an awkward one; present or absent (JSON.stringify drops undefined). */
const mostly = <T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>, absent = 4) =>
  fc.oneof({ weight: 16, arbitrary: good as fc.Arbitrary<T | U | undefined> }, { weight: 1, arbitrary: bad as fc.Arbitrary<T | U | undefined> }, { weight: absent, arbitrary: fc.constant(undefined) });
/** Now and then (one time in `every`). */
const rarely = <T,>(arbitrary: fc.Arbitrary<T>, every = 8) => fc.oneof({ weight: 1, arbitrary: arbitrary as fc.Arbitrary<T | undefined> }, { weight: every - 1, arbitrary: fc.constant(undefined) });
const goodId = fc.constantFrom('user_1', 'user_2', 'anon-9', 'u', '', null);
const message = fc.record({
  type: fc.oneof({ weight: 12, arbitrary: fc.constantFrom('track', 'identify', 'group', 'page', 'screen') }, { weight: 1, arbitrary: fc.constantFrom('alias', 'Track', 'constructor', '', 7) }),
  messageId: fc.oneof({ weight: 8, arbitrary: fc.string({ minLength: 1, maxLength: 10 }) }, { weight: 1, arbitrary: identifier }, { weight: 1, arbitrary: fc.constant(undefined) }),
  userId: mostly(goodId, identifier),
  anonymousId: mostly(goodId, identifier),
  timestamp: mostly(fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 0, 1) }).map((ms) => new Date(ms).toISOString()), time, 1),
  originalTimestamp: rarely(time, 8),
  sentAt: rarely(time, 8),
  event: mostly(fc.constantFrom('Dashboard Created', 'Logged In'), fc.oneof(awkwardString, fc.constant(3)), 6),
  name: mostly(fc.constantFrom('Pricing', 'Home'), fc.oneof(awkwardString, fc.constant(null))),
  category: mostly(fc.constantFrom('Docs', ''), fc.constant(5)),
  groupId: mostly(fc.constantFrom('acct_1', 'acct_2'), identifier),
  previousId: rarely(identifier, 4),
  properties: mostly(record, fc.constantFrom(null, [], 'text')),
  traits: mostly(record, fc.constantFrom(null, [], 'text')),
  context: mostly(context, fc.constantFrom(null, [], 'ctx')),
  integrations: mostly(record, fc.constantFrom(null, [], 'text'), 4),
  extra: rarely(jsonValue, 3),
  receivedAt: rarely(time, 4),
  deep: rarely(fc.letrec((tie) => ({ node: fc.oneof({ depthSize: 'large', maxDepth: 12 }, fc.constant(1), fc.array(tie('node'), { maxLength: 2 }), fc.record({ k: tie('node') })) })).node, 6),
});

describe('the backtest validation fast path', () => {
  it('gives what validateMessage gives, or steps aside', () => {
    let taken = 0;
    // The run's clock after the generated times, or now and then among them, so that some are too far ahead of it.
    const clock = fc.oneof({ weight: 3, arbitrary: fc.constant(Date.UTC(2031, 0, 1)) }, { weight: 1, arbitrary: fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 0, 1) }) });
    fc.assert(
      fc.property(message, fc.integer({ min: 1, max: 1_000_000 }), clock, (generated, index, readAt) => {
        // Through JSON, as a line of a file: key order and values as JSON.parse gives them.
        const raw = JSON.parse(JSON.stringify(generated)) as Record<string, unknown>;
        const fast = acceptCommonMessage(raw, index, readAt);
        const full = validateMessage(JSON.parse(JSON.stringify(generated)), index, 'backtest', new Date(0), { receivedAtKnown: false, readAt: new Date(readAt) });
        if (fast === undefined) return;
        taken++;
        expect('reason' in full).toBe(false);
        expect(fast).toStrictEqual(full);
        expect(JSON.stringify(fast)).toBe(JSON.stringify(full));
        expect(Object.keys(fast.message)).toEqual(Object.keys((full as typeof fast).message));
      }),
      { numRuns: 8_000 },
    );
    // The generator must reach the fast path often enough for the comparison to mean something.
    expect(taken).toBeGreaterThan(1_000);
  });

  it('takes the common messages, and parseEvent gives the same either way', () => {
    const lines = [
      { type: 'track', userId: 'u1', messageId: 'm1', event: 'Logged In', properties: { method: 'sso' }, timestamp: '2025-02-01T10:00:00.000Z', context: { groupId: 'acct_1' } },
      { type: 'identify', userId: 'u1', anonymousId: 'a1', messageId: 'm2', traits: { plan: 'pro' }, timestamp: '2025-02-01T10:00:00Z' },
      { type: 'identify', userId: 'u1', messageId: 'm3', context: { traits: { plan: 'pro' } }, timestamp: '2025-02-01T10:00:00+01:00' },
      { type: 'group', userId: 'u1', messageId: 'm4', groupId: 'acct_1', traits: { employees: 9 }, timestamp: '2025-02-01T10:00:00Z' },
      { type: 'page', anonymousId: 'a1', userId: '', messageId: 'm5', name: 'Pricing', properties: {}, timestamp: '2025-02-01T10:00:00Z' },
      { type: 'screen', userId: null, anonymousId: 'a1', messageId: 'm6', timestamp: '2025-02-01T10:00:00Z' },
    ];
    const readAt = Date.UTC(2025, 1, 1);
    lines.forEach((line, index) => {
      const raw = JSON.parse(JSON.stringify(line));
      expect(acceptCommonMessage(raw, index + 1, readAt)).toBeDefined();
      expect(parseEvent('f', JSON.stringify(line), index + 1, readAt)).toStrictEqual(validateMessage(raw, index + 1, 'backtest', new Date(0), { receivedAtKnown: false }));
    });
  });

  it('resolves a time as Date.parse and toISOString do, the ones already written that way compared as text', () => {
    const slow = (timestamp: string) => {
      const time = Date.parse(timestamp);
      return time >= Date.UTC(2000, 0, 1) && time <= Date.UTC(9999, 11, 31, 23, 59, 59, 999) ? new Date(time).toISOString() : undefined;
    };
    const cases = [
      '1999-12-31T23:59:59.999Z',
      '2000-01-01T00:00:00.000Z',
      '9999-12-31T23:59:59.999Z',
      // Written otherwise: what text comparison would get wrong (an offset moves it before 2000 or after 9999).
      '2000-01-01T00:30:00.000+01:00',
      '9999-12-31T23:59:59.999-01:00',
      '2025-01-01T00:00:00Z',
      '2025-01-01T00:00:00.5Z',
    ];
    for (const timestamp of cases) expect(resolvedTime(timestamp)).toBe(slow(timestamp));
    expect(resolvedTime('2000-01-01T00:30:00.000+01:00')).toBeUndefined();
    expect(resolvedTime('2025-01-01T00:00:00Z')).toBe('2025-01-01T00:00:00.000Z');
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2040, 0, 1) }), (ms) => {
        const timestamp = new Date(ms).toISOString();
        expect(resolvedTime(timestamp)).toBe(slow(timestamp));
      }),
    );
  });
});
