import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClaimSet, claimsOf, identityKey, identityOf, mergedInto, parseIdentityKey, rootOf, utf8Before, type Claim, type Identity } from '../../functions/core/identity';

const visitor = (id: string): Identity => ({ kind: 'visitor', id });
const user = (id: string): Identity => ({ kind: 'user', id });
const message = (fields: { type?: string; userId?: string; anonymousId?: string; previousId?: string; at: string; messageId: string }) => ({
  type: fields.type ?? 'track',
  ...fields,
  timestamp: fields.at,
});

/** Every ordering of a list. */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, index) => permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [item, ...rest]));
}

/** The root of each identity, as the backtest resolves it from claims read in the given order. */
function roots(claims: readonly Claim[], identities: readonly Identity[]): Record<string, string> {
  const set = new ClaimSet();
  for (const claim of claims) set.add(claim);
  return Object.fromEntries(identities.map((identity) => [identityKey(identity), identityKey(set.rootOf(identity))]));
}

describe('identity of a message', () => {
  it('is the user when there is a userId, else the anonymous visitor', () => {
    expect(identityOf({ userId: 'u1', anonymousId: 'a1' })).toEqual(user('u1'));
    expect(identityOf({ anonymousId: 'a1' })).toEqual(visitor('a1'));
  });

  it('never confuses a userId `anonymous:x` with the anonymousId `x`', () => {
    const a = identityKey(identityOf({ userId: 'anonymous:x' }));
    const b = identityKey(identityOf({ anonymousId: 'x' }));
    expect(a).not.toBe(b);
    expect(parseIdentityKey(a)).toEqual(user('anonymous:x'));
    expect(parseIdentityKey(b)).toEqual(visitor('x'));
    expect(() => parseIdentityKey('other:x')).toThrow(/kind must be user or visitor/);
  });
});

describe('claims a message makes', () => {
  it('claims the visitor of a message with both ids', () => {
    expect(claimsOf(message({ userId: 'u1', anonymousId: 'a1', at: 't1', messageId: 'm1' }))).toEqual([{ from: visitor('a1'), to: 'u1', at: 't1', messageId: 'm1' }]);
  });

  it('claims an alias previousId both as a visitor and as an earlier user', () => {
    const claims = claimsOf(message({ type: 'alias', userId: 'b', previousId: 'a', at: 't1', messageId: 'm1' }));
    expect(claims.map((claim) => identityKey(claim.from))).toEqual(['visitor:a', 'user:a']);
  });

  it('claims nothing for anonymous messages or self-aliases', () => {
    expect(claimsOf(message({ anonymousId: 'a1', at: 't1', messageId: 'm1' }))).toEqual([]);
    expect(claimsOf(message({ type: 'alias', userId: 'u', previousId: 'u', at: 't1', messageId: 'm1' })).map((claim) => identityKey(claim.from))).toEqual(['visitor:u']);
  });
});

describe('resolution', () => {
  const signup: Claim = { from: visitor('anon'), to: 'A', at: '2025-01-02T00:00:00.000Z', messageId: 'm2' };
  const alias: Claim = { from: user('A'), to: 'B', at: '2025-01-03T00:00:00.000Z', messageId: 'm3' };
  const otherDevice: Claim = { from: visitor('phone'), to: 'B', at: '2025-01-04T00:00:00.000Z', messageId: 'm4' };
  const laterClaim: Claim = { from: visitor('anon'), to: 'C', at: '2025-01-05T00:00:00.000Z', messageId: 'm5' };
  const sameTimeClaim: Claim = { from: visitor('anon'), to: 'D', at: signup.at, messageId: 'm1' };

  it('resolves a chain (anon -> A, alias A -> B) to B, whatever the order the claims arrive in', () => {
    const identities = [visitor('anon'), user('A'), user('B'), visitor('phone'), visitor('stranger')];
    const expected = { 'visitor:anon': 'user:B', 'user:A': 'user:B', 'user:B': 'user:B', 'visitor:phone': 'user:B', 'visitor:stranger': 'visitor:stranger' };
    for (const order of permutations([signup, alias, otherDevice])) expect(roots(order, identities)).toEqual(expected);
  });

  it('gives an identifier claimed twice to its first claim, by message time then messageId, in any order', () => {
    for (const order of permutations([signup, laterClaim, alias])) expect(roots(order, [visitor('anon')])).toEqual({ 'visitor:anon': 'user:B' });
    for (const order of permutations([signup, sameTimeClaim])) expect(roots(order, [visitor('anon')])).toEqual({ 'visitor:anon': 'user:D' });
  });

  it('is idempotent: the same claim again changes nothing', () => {
    const set = new ClaimSet();
    expect(set.add(signup)).toBe(true);
    expect(set.add({ ...signup })).toBe(false);
    expect(set.rootOf(visitor('anon'))).toEqual(user('A'));
  });

  it('ignores the latest claim of a loop (alias A -> B, then B -> A)', () => {
    const back: Claim = { from: user('B'), to: 'A', at: '2025-01-06T00:00:00.000Z', messageId: 'm6' };
    for (const order of permutations([signup, alias, back])) {
      expect(roots(order, [visitor('anon'), user('A'), user('B')])).toEqual({ 'visitor:anon': 'user:B', 'user:A': 'user:B', 'user:B': 'user:B' });
    }
  });

  it('lists what merges into a user from the claims known to the evaluator', () => {
    const claims = new Map([signup, alias, otherDevice].map((claim) => [identityKey(claim.from), claim]));
    expect(mergedInto(user('B'), claims).map(identityKey).sort()).toEqual(['user:A', 'visitor:anon', 'visitor:phone']);
    expect(mergedInto(user('A'), claims)).toEqual([]);
    expect(rootOf(visitor('anon'), (identity) => claims.get(identityKey(identity)))).toEqual(user('B'));
  });
});

describe('utf8Before', () => {
  it('orders strings by their UTF-8 bytes, as DynamoDB compares them, characters past U+FFFF included', () => {
    expect(utf8Before('m-\uFF5E', 'm-\u{1F600}')).toBe(true);
    expect('m-\uFF5E' < 'm-\u{1F600}').toBe(false);
    const text = fc.string({ unit: fc.oneof(fc.constantFrom('a', 'z', '\uE000', '\uFF5E', '\u{1F600}', '\u{10FFFF}'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })), maxLength: 6 });
    fc.assert(
      fc.property(text, text, (a, b) => {
        expect(utf8Before(a, b)).toBe(Buffer.compare(Buffer.from(a), Buffer.from(b)) < 0);
      }),
      { seed: 49, numRuns: 2000 },
    );
  });
});

