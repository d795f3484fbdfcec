import { describe, expect, it } from 'vitest';
import { accountConversion, convertsBy, firstConversion, type ConversionMessage } from '../../functions/core/conversion';
import { leadEventDetailSchema } from '../../functions/core/lead-event';
import { buildLeadEvent, decide, type LeadState } from '../../functions/core/lead-state';
import type { Evaluation } from '../../functions/core/rules/engine';
import { loadRules, RulesError, type Ruleset } from '../../functions/core/rules/load';
import { rulesJsonSchema } from '../../functions/core/rules/json-schema';
import { factsFor } from '../support/facts';

const now = new Date('2024-06-15T12:00:00.000Z');
const dayMs = 86_400_000;
const at = (days: number) => new Date(now.getTime() + days * dayMs);
const iso = (days: number) => at(days).toISOString();

function rules(conversion: string, rest = ''): Ruleset {
  return loadRules(`version: 1
signals:
  logins: { event: Logged In, points: 10 }
tiers:
  - { name: hot, min_score: 30, route: sales }
  - { name: warm, min_score: 10, route: nurture }
${conversion}
${rest}`);
}
const orderRule = rules('conversion: { event: Order Completed, where: { total: { gte: 100 }, currency: USD } }').file.conversion!;
const planRule = rules('conversion: { trait: plan, is: { in: [pro, business] } }').file.conversion!;
const track = (event: string, timestamp: string, properties: Record<string, unknown> = {}): ConversionMessage => ({ type: 'track', event, properties, timestamp });
const identify = (traits: Record<string, unknown>, timestamp: string): ConversionMessage => ({ type: 'identify', traits, timestamp });
const group = (traits: Record<string, unknown>, timestamp: string): ConversionMessage => ({ type: 'group', traits, timestamp });

describe('conversion detection', () => {
  it('an event converts when its name matches and every where filter holds, at the boundaries included', () => {
    expect(convertsBy(orderRule, track('Order Completed', iso(0), { total: 100, currency: 'USD' }), 'user')).toBe(true);
    expect(convertsBy(orderRule, track('Order Completed', iso(0), { total: 99.99, currency: 'USD' }), 'user')).toBe(false);
    expect(convertsBy(orderRule, track('Order Completed', iso(0), { total: 500 }), 'user')).toBe(false);
    // A number sent as a string compares as that number; a string that is no number never does.
    expect(convertsBy(orderRule, track('Order Completed', iso(0), { total: '500', currency: 'USD' }), 'user')).toBe(true);
    expect(convertsBy(orderRule, track('Order Completed', iso(0), { total: '500 USD', currency: 'USD' }), 'user')).toBe(false);
    expect(convertsBy(orderRule, track('Order Started', iso(0), { total: 500, currency: 'USD' }), 'user')).toBe(false);
    expect(convertsBy(orderRule, { type: 'page', timestamp: iso(0), properties: { total: 500, currency: 'USD' } }, 'user')).toBe(false);
    const any = rules('conversion: { event: Order Completed }').file.conversion!;
    expect(convertsBy(any, track('Order Completed', iso(0)), 'user')).toBe(true);
    expect(convertsBy(any, { type: 'track', event: 'Order Completed', timestamp: iso(0) }, 'user')).toBe(true);
  });

  it('a trait converts on the call that sets it to a matching value, from identify for users and group for accounts', () => {
    expect(convertsBy(planRule, identify({ plan: 'pro' }, iso(0)), 'user')).toBe(true);
    expect(convertsBy(planRule, identify({ plan: 'free' }, iso(0)), 'user')).toBe(false);
    expect(convertsBy(planRule, group({ plan: 'business' }, iso(0)), 'user')).toBe(false);
    expect(convertsBy(planRule, group({ plan: 'business' }, iso(0)), 'account')).toBe(true);
    expect(convertsBy(planRule, identify({ plan: 'pro' }, iso(0)), 'account')).toBe(false);
    expect(convertsBy(planRule, track('Order Completed', iso(0), { plan: 'pro' }), 'user')).toBe(false);
    // RudderStack's identify carries its traits in context.traits only.
    expect(convertsBy(planRule, { type: 'identify', timestamp: iso(0), context: { traits: { plan: 'pro' } } }, 'user')).toBe(true);
    expect(convertsBy(planRule, { type: 'group', timestamp: iso(0), context: { traits: { plan: 'pro' } } }, 'account')).toBe(false);
  });

  it('a call that does not carry the trait never converts, even for negative conditions', () => {
    const notFree = rules('conversion: { trait: plan, is: { not_equals: free } }').file.conversion!;
    expect(convertsBy(notFree, identify({ email: 'a@example.com' }, iso(0)), 'user')).toBe(false);
    expect(convertsBy(notFree, identify({ plan: 'team' }, iso(0)), 'user')).toBe(true);
    expect(convertsBy(notFree, { type: 'identify', timestamp: iso(0) }, 'user')).toBe(false);
  });

  it('accounts have no events of their own: an event rule never converts an account message', () => {
    expect(convertsBy(orderRule, track('Order Completed', iso(0), { total: 500, currency: 'USD' }), 'account')).toBe(false);
  });

  it('the first conversion is the earliest converting message, whatever their order', () => {
    const messages = [track('Order Completed', iso(3), { total: 200, currency: 'USD' }), track('Order Completed', iso(1), { total: 150, currency: 'USD' }), track('Order Completed', iso(0), { total: 10, currency: 'USD' })];
    expect(firstConversion(orderRule, messages)).toBe(iso(1));
    expect(firstConversion(orderRule, [...messages].reverse())).toBe(iso(1));
    expect(firstConversion(orderRule, [])).toBeNull();
  });

  it('an account converts at its first member conversion, or when its own traits meet a trait rule', () => {
    expect(accountConversion(orderRule, { plan: 'pro' }, [null, iso(-2), undefined, iso(-5)], now)).toBe(iso(-5));
    expect(accountConversion(orderRule, {}, [null, undefined], now)).toBeNull();
    expect(accountConversion(planRule, { plan: 'business' }, [], now)).toBe(now.toISOString());
    expect(accountConversion(planRule, { plan: 'business' }, [iso(-1)], now)).toBe(iso(-1));
    expect(accountConversion(planRule, { plan: 'free' }, [], now)).toBeNull();
  });
});

describe('the rules file conversion', () => {
  const problems = (conversion: string) => {
    try {
      rules(conversion);
    } catch (error) {
      expect(error).toBeInstanceOf(RulesError);
      return (error as RulesError).problems.map(({ path, line, message }) => ({ path, line, message }));
    }
    throw new Error('expected the rules to be rejected');
  };

  it('is optional, keeps converted customers out of the tiers by default, and is in the JSON Schema', () => {
    expect(rules('').file.conversion).toBeUndefined();
    expect(orderRule.keep_in_tiers).toBe(false);
    expect(rules('').file.policy.notify).toContain('converted');
    const schema = rulesJsonSchema() as { properties: Record<string, { properties?: Record<string, unknown> }> };
    expect(Object.keys(schema.properties['conversion']!.properties!)).toEqual(['event', 'where', 'trait', 'is', 'keep_in_tiers']);
  });

  it.each([
    ['conversion: { where: { total: 1 } }', 'conversion', /give either event/],
    ['conversion: { event: Order Completed, trait: plan, is: pro }', 'conversion', /give either event/],
    ['conversion: { trait: plan }', 'conversion.is', /needs is/],
    ['conversion: { trait: plan, is: pro, where: { a: 1 } }', 'conversion.where', /give event/],
    ['conversion: { event: Order Completed, is: pro }', 'conversion.is', /give trait/],
    ['conversion: { event: Order Completed, when: now }', 'conversion.when', /unknown key/],
    ['conversion: { event: Order Completed, where: { total: { between: 1 } } }', 'conversion.where.total', /one of: equals/],
    ['conversion: { event: Order Completed, keep_in_tiers: maybe }', 'conversion.keep_in_tiers', /.+/],
  ])('%s is refused at %s, with its line', (conversion, path, message) => {
    const problem = problems(conversion).find((candidate) => candidate.path === path);
    expect(problem, JSON.stringify(problems(conversion))).toBeDefined();
    expect(problem!.message).toMatch(message);
    expect(problem!.line).toBe(7);
  });
});

describe('decide with conversions', () => {
  const ruleset = rules('conversion: { event: Order Completed }');
  const keeping = rules('conversion: { event: Order Completed, keep_in_tiers: true }');
  const evaluation = (tier: string | null, total = tier === 'hot' ? 30 : tier === 'warm' ? 10 : 0): Evaluation => ({
    signals: { logins: { matched: total > 0, value: total / 10, points: total, category: 'engagement' } },
    score: { total, engagement: total, fit: 0 },
    tier,
    route: tier === 'hot' ? 'sales' : tier === 'warm' ? 'nurture' : null,
    owner: null,
  });
  const facts = { lastSeen: iso(0) };
  const qualifiedHot = (rulesetUsed: Ruleset): LeadState => decide(undefined, evaluation('hot'), facts, rulesetUsed, now).state;

  it('records a lead conversion once, as one converted transition that takes the customer out of the tiers', () => {
    const converted = decide(qualifiedHot(ruleset), evaluation('hot'), facts, ruleset, at(3), iso(2.5));
    expect(converted.transition).toMatchObject({
      kind: 'converted',
      previousTier: 'hot',
      tier: null,
      sequence: 2,
      notify: true,
      conversion: { convertedAt: iso(2.5), tier: 'hot', qualifiedAt: now.toISOString(), qualifiedTier: 'hot', qualifiedOn: ['logins'], daysSinceQualification: 2 },
    });
    expect(converted.state).toMatchObject({ tier: null, route: null, conversion: { at: iso(2.5), tier: 'hot' }, since: iso(3) });

    // Later evaluations keep the first conversion and publish nothing; the customer stays out of the tiers.
    const later = decide(converted.state, evaluation('hot'), facts, ruleset, at(4), iso(3.5));
    expect(later.transition).toBeUndefined();
    expect(later.state).toMatchObject({ tier: null, sequence: 2, conversion: { at: iso(2.5), tier: 'hot' } });
  });

  it('moves a recorded conversion earlier when a later evaluation sees an earlier one (a late event), and publishes nothing', () => {
    const converted = decide(qualifiedHot(ruleset), evaluation('hot'), facts, ruleset, at(3), iso(2.5)).state;
    const lateEarlier = decide(converted, evaluation(null), facts, ruleset, at(4), iso(1.5));
    expect(lateEarlier.transition).toBeUndefined();
    // The time only: the tier and signals are those of the evaluation that recorded it.
    expect(lateEarlier.state).toMatchObject({ tier: null, sequence: 2, conversion: { at: iso(1.5), tier: 'hot', signals: ['logins'] } });
    expect(lateEarlier.state.history).toEqual(converted.history);
  });

  it('keeps converted customers in the tiers when the rules say so, and reports the tier change with the conversion', () => {
    const converted = decide(qualifiedHot(keeping), evaluation('warm'), facts, keeping, at(1), iso(1));
    expect(converted.transition).toMatchObject({ kind: 'converted', previousTier: 'hot', tier: 'warm', conversion: { tier: 'hot' } });
    expect(converted.state).toMatchObject({ tier: 'warm', route: 'nurture' });
    const next = decide(converted.state, evaluation('hot'), facts, keeping, at(2));
    expect(next.transition).toMatchObject({ kind: 'tier_changed', previousTier: 'warm', tier: 'hot' });
  });

  it('records the conversion of an entity that never qualified without a transition, and it never qualifies after', () => {
    const converted = decide(undefined, evaluation('hot'), facts, ruleset, now, iso(-1));
    expect(converted.transition).toBeUndefined();
    expect(converted.state).toMatchObject({ tier: null, sequence: 0, conversion: { at: iso(-1), tier: null } });
    expect(decide(converted.state, evaluation('hot'), facts, ruleset, at(1)).transition).toBeUndefined();
  });

  it('reports a lead disqualified before converting with no tier held, routed by the tier it qualified in', () => {
    const dropped = decide(qualifiedHot(ruleset), evaluation(null), facts, ruleset, at(1)).state;
    const converted = decide(dropped, evaluation(null), facts, ruleset, at(10), iso(9));
    expect(converted.transition).toMatchObject({ kind: 'converted', previousTier: null, tier: null, conversion: { tier: null, qualifiedTier: 'hot', daysSinceQualification: 9 } });
    const event = buildLeadEvent('acme', factsFor([], ruleset), evaluation(null), converted.transition!, ruleset, at(10));
    expect(event.detail.route).toBe('sales');
  });

  it('publishes a Lead Converted event routed to the tier held, and respects the notify policy', () => {
    const converted = decide(decide(undefined, evaluation('warm'), facts, ruleset, now).state, evaluation('warm'), facts, ruleset, at(2), iso(2));
    const event = buildLeadEvent('acme', factsFor([], ruleset), evaluation('warm'), converted.transition!, ruleset, at(2));
    expect(event.detailType).toBe('Lead Converted');
    expect(leadEventDetailSchema.parse(event.detail)).toEqual(event.detail);
    expect(event.detail).toMatchObject({ tier: null, previousTier: 'warm', route: 'nurture', conversion: { convertedAt: iso(2), tier: 'warm', daysSinceQualification: 2, qualifiedOn: ['logins'] } });
    expect(event.detail.reasons[0]).toBe(`converted at ${iso(2)}`);

    const quiet = rules('conversion: { event: Order Completed }', 'policy: { notify: [qualified] }');
    const silent = decide(qualifiedHot(quiet), evaluation('hot'), facts, quiet, at(1), iso(1));
    expect(silent.transition).toMatchObject({ kind: 'converted', notify: false });
  });

  it('ignores a recorded conversion once the rules no longer define one', () => {
    const converted = decide(qualifiedHot(ruleset), evaluation('hot'), facts, ruleset, at(1), iso(1)).state;
    const without = rules('');
    expect(decide(converted, evaluation('hot'), facts, without, at(2)).transition).toMatchObject({ kind: 'qualified', tier: 'hot' });
  });
});
