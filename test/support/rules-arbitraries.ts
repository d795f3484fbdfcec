import fc from 'fast-check';

/**
 * Generated pieces of rules files, for the property tests that run the evaluator on them
 * (test/unit/evaluator-backtest-properties.test.ts, test/unit/incremental-evaluation-properties.test.ts).
 */

export const eventNames = ['Report Run', 'Teammate Invited', 'Data Exported'] as const;

export const daysArb = fc.integer({ min: 1, max: 10 }).map((days) => `${days}d`);
export const eventArb = fc.constantFrom(...eventNames);
export const counted = { event: eventArb, at_least: fc.integer({ min: 1, max: 4 }), points: fc.integer({ min: -30, max: 60 }) };
/** Counted events, at most, inactivity, signup age, a user's and an account's traits. */
export const signalArb = fc.oneof(
  fc.record({ ...counted, window: daysArb }),
  fc.record({ ...counted, since_signup: daysArb }),
  fc.record({ event: eventArb, window: daysArb, at_most: fc.integer({ min: 0, max: 2 }), points: fc.integer({ min: -30, max: 30 }) }),
  fc.record({ inactive_for: fc.integer({ min: 1, max: 6 }).map((days) => `${days}d`), points: fc.integer({ min: -50, max: -5 }) }),
  fc.record({ signup_older_than: daysArb, points: fc.integer({ min: -30, max: 30 }) }),
  fc.record({ trait: fc.constant('employees'), is: fc.record({ gte: fc.constantFrom(10, 50, 200) }), points: fc.integer({ min: 5, max: 40 }) }),
  fc.record({ trait: fc.constant('employees'), of: fc.constant('account'), is: fc.record({ gte: fc.constantFrom(10, 50, 200) }), points: fc.integer({ min: 5, max: 40 }) }),
);
/** Signals of accounts: their members' events, their best member's tier, how many members match `s0`. */
export const accountSignalArb = fc.oneof(
  fc.record({ ...counted, window: daysArb, level: fc.constant('account') }),
  fc.record({ level: fc.constant('account'), best_member_tier: fc.constantFrom('hot', 'warm'), points: fc.integer({ min: 10, max: 60 }) }),
  fc.record({ level: fc.constant('account'), members_matching: fc.constant('s0'), at_least: fc.integer({ min: 1, max: 2 }), points: fc.integer({ min: 10, max: 60 }) }),
);

/**
 * The rest of the language: property filters, distinct counts and sums, days and sessions, periods (any and
 * consecutive), decay, time to value and combinations (of a signal named `base`, and `base_none` that never matches),
 * active members and every member matching.
 */
export const richSignalArb = fc.oneof(
  fc.record({ ...counted, window: daysArb, where: fc.constantFrom({ plan: 'pro' }, { seats: { gte: 2 } }) }),
  fc.record({ event: eventArb, distinct: fc.constant('invitee'), at_least: fc.integer({ min: 1, max: 3 }), window: daysArb, points: counted.points }),
  fc.record({ event: eventArb, sum: fc.constant('seats'), at_least: fc.integer({ min: 1, max: 8 }), window: daysArb, points: counted.points }),
  fc.record({ event: fc.constantFrom(...eventNames, '*'), count: fc.constantFrom('days', 'sessions'), at_least: fc.integer({ min: 1, max: 3 }), window: daysArb, points: counted.points }),
  fc.record({ event: eventArb, per: fc.constant('day'), window: fc.constantFrom('3d', '5d'), periods: fc.integer({ min: 1, max: 3 }), points: counted.points }),
  fc.record({ event: eventArb, per: fc.constant('day'), window: fc.constantFrom('4d', '6d'), consecutive: fc.integer({ min: 2, max: 3 }), points: counted.points }),
  fc.record({ event: eventArb, per: fc.constant('week'), window: fc.constant('14d'), at_least: fc.integer({ min: 1, max: 3 }), periods: fc.constant(2), points: counted.points }),
  fc.record({ ...counted, window: daysArb, decay: fc.constantFrom('1d', '2d') }),
  fc.record({ to: fc.constant('base'), within: fc.constantFrom('1d', '3d'), points: counted.points }),
  fc.record({ all: fc.constant(['base']), not: fc.constant('base_none'), points: counted.points }),
  fc.record({ any: fc.constant(['base', 'base_none']), points: counted.points }),
  fc.record({ active_users: fc.constantFrom('1d', '3d'), at_least: fc.integer({ min: 1, max: 2 }), level: fc.constant('account'), points: fc.integer({ min: 10, max: 60 }) }),
  fc.record({ members_matching: fc.constant('base'), every: fc.constant(true), level: fc.constant('account'), points: fc.integer({ min: 10, max: 60 }) }),
);
/** Signals of users, of both kinds (their accounts' traits included): no account level. */
export const userSignalArb = fc.oneof(signalArb, richSignalArb).filter((signal) => !('level' in signal));

/** A conversion by a pro plan: an event's property or a user's trait, taking leads out of their tiers or keeping them. */
export const conversionArb = fc.oneof(
  fc.record({ event: eventArb, where: fc.constant({ plan: 'pro' }), keep_in_tiers: fc.boolean() }),
  fc.record({ trait: fc.constant('plan'), is: fc.constant('pro'), keep_in_tiers: fc.boolean() }),
);

/** A product event's properties, for property filters, distinct counts and sums: taken in turn by a number. */
export const propertiesOf = (turn: number) => ({ plan: turn % 2 === 0 ? 'free' : 'pro', seats: (turn % 3) + 1, invitee: ['ann', 'bo', 'cy', 'di'][turn % 4] });
