import { describe, expect, it } from 'vitest';
import { leadEventDetailSchema } from '../../functions/core/lead-event';
import { buildLeadEvent, decide } from '../../functions/core/lead-state';
import { evaluate, type EntityFacts, type UsageEvent } from '../../functions/core/rules/engine';
import { loadRules, RulesError, type RulesProblem } from '../../functions/core/rules/load';
import { rulesJsonSchema } from '../../functions/core/rules/json-schema';
import { chooseRoute, describeRoute, ownerOf, routesOf } from '../../functions/core/rules/routing';
import { formatProblem } from '../../functions/core/yaml-file';
import { factsFor } from '../support/facts';
import { readmeBlocks } from '../support/readme';

const now = new Date('2024-06-01T12:00:00.000Z');
const login: UsageEvent = { type: 'track', event: 'Logged In', timestamp: '2024-06-01T09:00:00.000Z' };

const regionRoute = { by: 'region', map: { emea: 'sales-emea', us: 'sales-us', apac: 'sales-apac' }, default: 'sales' };
const accountRegionRoute = { ...regionRoute, by: 'account.region' };

/** Only what routing reads: a user's traits and their accounts' traits (in account id order), or an account's own. */
const user = (traits: Record<string, unknown>, accountTraits: Record<string, unknown>[] = []) => ({ type: 'user' as const, traits, accountTraits });
const account = (traits: Record<string, unknown>) => ({ type: 'account' as const, traits, accountTraits: [] });

describe('chooseRoute', () => {
  it.each<[string, ReturnType<typeof user>, string]>([
    ['the map route of the trait value', user({ region: 'emea' }), 'sales-emea'],
    ['the value trimmed and without regard to case', user({ region: ' EMEA ' }), 'sales-emea'],
    ['the default when the trait is missing', user({}), 'sales'],
    ['the default when the trait is empty', user({ region: '  ' }), 'sales'],
    ['the default when the value is not in the map', user({ region: 'latam' }), 'sales'],
    ['the default for a value that is no string, number or boolean', user({ region: { code: 'emea' } }), 'sales'],
    ["the default for a value naming one of Object.prototype's members", user({ region: 'constructor' }), 'sales'],
    ["a user's own trait, not their accounts'", user({ region: 'us' }, [{ region: 'emea' }]), 'sales-us'],
  ])('gives %s', (_name, facts, route) => {
    expect(chooseRoute(regionRoute, facts)).toBe(route);
  });

  it.each<[string, ReturnType<typeof user>, string]>([
    ["an account's trait", user({}, [{ region: 'apac' }]), 'sales-apac'],
    ["the accounts' trait, not the user's own", user({ region: 'us' }, [{ region: 'emea' }]), 'sales-emea'],
    ['of several accounts, the first (by account id) whose trait is set', user({}, [{}, { region: '' }, { region: 'apac' }, { region: 'us' }]), 'sales-apac'],
    ['the first set even when its value is not in the map', user({}, [{ region: 'latam' }, { region: 'us' }]), 'sales'],
    ['the default without accounts', user({ region: 'us' }), 'sales'],
  ])('by account.region gives %s', (_name, facts, route) => {
    expect(chooseRoute(accountRegionRoute, facts)).toBe(route);
  });

  it('reads an account entity’s own trait, with or without account.', () => {
    expect(chooseRoute(accountRegionRoute, account({ region: 'us' }))).toBe('sales-us');
    expect(chooseRoute(regionRoute, account({ region: 'apac' }))).toBe('sales-apac');
  });

  it('compares numbers and booleans as their text', () => {
    expect(chooseRoute({ by: 'plan_id', map: { '2': 'enterprise', true: 'sales' }, default: 'nurture' }, user({ plan_id: 2 }))).toBe('enterprise');
    expect(chooseRoute({ by: 'vip', map: { true: 'sales' }, default: 'nurture' }, user({ vip: true }))).toBe('sales');
  });

  it('gives a literal route whatever the traits', () => {
    expect(chooseRoute('sales', user({ region: 'emea' }))).toBe('sales');
  });
});

describe('ownerOf', () => {
  it.each<[string, string | undefined, ReturnType<typeof user> | ReturnType<typeof account>, string | null]>([
    ['the trait value', 'owner_email', user({ owner_email: 'ann@example.com' }), 'ann@example.com'],
    ['null when the trait is missing', 'owner_email', user({}), null],
    ['null without an owner trait', undefined, user({ owner_email: 'ann@example.com' }), null],
    ['a number as text (a HubSpot owner id)', 'owner_id', user({ owner_id: 41629779 }), '41629779'],
    ["the first account's by account id that has it", 'account.owner_email', user({ owner_email: 'own@example.com' }, [{}, { owner_email: 'bo@example.com' }, { owner_email: 'cy@example.com' }]), 'bo@example.com'],
    ["an account's own", 'account.owner_email', account({ owner_email: 'di@example.com' }), 'di@example.com'],
  ])('is %s', (_name, owner, facts, expected) => {
    expect(ownerOf(owner, facts)).toBe(expected);
  });
});

describe('routesOf and describeRoute', () => {
  it('give every route a tier can give, once, and how it is chosen', () => {
    expect(routesOf('sales')).toEqual(['sales']);
    expect(routesOf({ by: 'region', map: { emea: 'sales-emea', uk: 'sales-emea', us: 'sales' }, default: 'sales' })).toEqual(['sales-emea', 'sales']);
    expect(describeRoute(regionRoute)).toBe('by region (emea: sales-emea, us: sales-us, apac: sales-apac; else sales)');
  });
});

const routedRules = `version: 1
signals:
  active: { event: Logged In, points: 10 }
tiers:
  - name: PQL-A
    min_score: 10
    route:
      by: region
      map: { emea: sales-emea, us: sales-us }
      default: sales
    owner: owner_email
`;

describe('evaluate, decide and the lead event with a route chosen by a trait', () => {
  const ruleset = loadRules(routedRules);
  const factsWith = (traits: Record<string, unknown>, events: UsageEvent[] = [login]): EntityFacts => factsFor(events, ruleset, { traits });

  it('picks the route and the owner with the tier', () => {
    expect(evaluate(factsWith({ region: 'emea', owner_email: 'ann@example.com' }), ruleset, now)).toMatchObject({ tier: 'PQL-A', route: 'sales-emea', owner: 'ann@example.com' });
    expect(evaluate(factsWith({ region: 'mars' }), ruleset, now)).toMatchObject({ tier: 'PQL-A', route: 'sales', owner: null });
    expect(evaluate(factsWith({ region: 'emea', owner_email: 'ann@example.com' }, []), ruleset, now)).toMatchObject({ tier: null, route: null, owner: null });
  });

  it('publishes the chosen route and the owner, valid against the lead event schema', () => {
    const facts = factsWith({ region: 'US', owner_email: 'ann@example.com' });
    const evaluation = evaluate(facts, ruleset, now);
    const { state, transition } = decide(undefined, evaluation, facts, ruleset, now);
    expect(state.route).toBe('sales-us');
    const detail = leadEventDetailSchema.parse(buildLeadEvent('acme', facts, evaluation, transition!, ruleset, now).detail);
    expect(detail).toMatchObject({ tier: 'PQL-A', route: 'sales-us', owner: 'ann@example.com' });
    // The one-line summary names the owner too, for destinations that show it alone (the e-mail, the CRM).
    expect(detail.summary).toMatch(/^user \S+: none -> PQL-A, score \d+, owner ann@example\.com/);
  });

  it('publishes owner null when the owner trait is not set, and no owner when the tier names no owner trait', () => {
    const facts = factsWith({ region: 'us' });
    const evaluation = evaluate(facts, ruleset, now);
    const detail = buildLeadEvent('acme', facts, evaluation, decide(undefined, evaluation, facts, ruleset, now).transition!, ruleset, now).detail;
    expect(detail.owner).toBeNull();

    const literal = loadRules('version: 1\nsignals:\n  active: { event: Logged In, points: 10 }\ntiers:\n  - { name: PQL-A, min_score: 10, route: sales }\n');
    const plainFacts = factsFor([login], literal, { traits: { region: 'us', owner_email: 'ann@example.com' } });
    const plain = evaluate(plainFacts, literal, now);
    const plainDetail = buildLeadEvent('acme', plainFacts, plain, decide(undefined, plain, plainFacts, literal, now).transition!, literal, now).detail;
    expect(plainDetail.route).toBe('sales');
    expect('owner' in plainDetail).toBe(false);
  });

  it('saves a route change within the tier without a transition: nothing is published', () => {
    const before = factsWith({ region: 'emea' });
    const first = decide(undefined, evaluate(before, ruleset, now), before, ruleset, now).state;
    const moved = factsWith({ region: 'us' });
    const later = new Date(now.getTime() + 60_000);
    const { state, transition } = decide(first, evaluate(moved, ruleset, later), moved, ruleset, later);
    expect(transition).toBeUndefined();
    expect(state).toMatchObject({ tier: 'PQL-A', route: 'sales-us', sequence: first.sequence });
  });

  it('sends a disqualification to the route the tier it left gives the lead, with the owner', () => {
    const qualifiedFacts = factsWith({ region: 'emea', owner_email: 'ann@example.com' });
    const qualified = decide(undefined, evaluate(qualifiedFacts, ruleset, now), qualifiedFacts, ruleset, now).state;
    const quiet = factsWith({ region: 'emea', owner_email: 'ann@example.com' }, []);
    const evaluation = evaluate(quiet, ruleset, now);
    const { transition } = decide(qualified, evaluation, quiet, ruleset, now);
    expect(transition?.kind).toBe('disqualified');
    const detail = leadEventDetailSchema.parse(buildLeadEvent('acme', quiet, evaluation, transition!, ruleset, now).detail);
    expect(detail).toMatchObject({ tier: null, previousTier: 'PQL-A', route: 'sales-emea', owner: 'ann@example.com' });
  });
});

/** The problems loadRules reports for a text, as rules check prints them. */
function problemsOf(text: string): string[] {
  try {
    loadRules(text, 'test.rules.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(RulesError);
    return (error as RulesError).problems.map((problem: RulesProblem) => formatProblem(problem));
  }
  throw new Error('expected the rules to be rejected');
}

const withRoute = (route: string, owner = '') => `version: 1
signals:
  active: { event: Logged In, points: 10 }
tiers:
  - name: PQL-A
    route: ${route}
${owner}`;

describe('rules check of routes', () => {
  it.each<[string, string, string[]]>([
    ['a misspelt key beside the others', '{ by: region, map: { emea: sales-emea }, default: sales, defualt: nurture }', ['line 6: tiers[0].route.defualt: unknown key "defualt"; did you mean "default"?']],
    [
      'a misspelt key in place of one needed',
      '{ by: region, mapp: { emea: sales-emea }, default: sales }',
      ['line 6: tiers[0].route: a route chosen by a trait needs by (the trait), map ({ trait value: route }) and default (a route); did you mean "map" for "mapp"?'],
    ],
    ['a missing default', '{ by: region, map: { emea: sales-emea } }', ['line 6: tiers[0].route: a route chosen by a trait needs by (the trait), map ({ trait value: route }) and default (a route)']],
    [
      'a map value that is not a route name',
      '{ by: region, map: { emea: Sales EMEA }, default: sales }',
      ['line 6: tiers[0].route.map.emea: must be a route name: lowercase letters, digits and -, starting with a letter, at most 32 characters'],
    ],
    ['a default that is not a route name', '{ by: region, map: { emea: sales-emea }, default: sales_team }', ['line 6: tiers[0].route.default: must be a route name: lowercase letters, digits and -, starting with a letter, at most 32 characters']],
    ['an empty map', '{ by: region, map: {}, default: sales }', ['line 6: tiers[0].route.map: must map at least one trait value to a route']],
    ['keys that are one trait value', '{ by: region, map: { emea: sales-emea, EMEA: sales-us }, default: sales }', ['line 6: tiers[0].route.map.EMEA: "EMEA" and "emea" are one trait value: values are compared trimmed, without regard to case']],
    ['account. without a trait', '{ by: account., map: { emea: sales-emea }, default: sales }', ['line 6: tiers[0].route.by: must name the trait after account., e.g. account.region']],
    ['a number', '5', ['line 6: tiers[0].route: must be a route name, or { by, map, default } to choose the route from a trait']],
    ['a literal route that is not a route name', 'Sales Team', ['line 6: tiers[0].route: must be a route name: lowercase letters, digits and -, starting with a letter, at most 32 characters']],
  ])('refuses %s, naming the field and the reason', (_name, route, problems) => {
    expect(problemsOf(withRoute(route))).toEqual(problems);
  });

  it('refuses an owner of account. alone', () => {
    expect(problemsOf(withRoute('sales', '    owner: account.\n'))).toEqual(['line 7: tiers[0].owner: must name the trait after account., e.g. account.region']);
  });

  it('keeps a literal route as it was, and takes a route by trait with an owner', () => {
    expect(loadRules(withRoute('sales')).file.tiers[0]).toEqual({ name: 'PQL-A', route: 'sales', require: [], level: 'both' });
    expect(loadRules(routedRules).file.tiers[0]).toMatchObject({ route: { by: 'region', map: { emea: 'sales-emea', us: 'sales-us' }, default: 'sales' }, owner: 'owner_email' });
  });
});

describe("the README's routing example", () => {
  const example = readmeBlocks().find((block) => block.lead.includes('**Routing to owners.**'))!.code;
  const ruleset = loadRules(`version: 1\nsignals:\n  active: { event: Logged In, points: 60 }\n${example}`);

  it('routes by the first account with a region, and names its owner', () => {
    const facts = factsFor([login], ruleset, { traits: { region: 'us' }, accountTraits: [{ name: 'No region' }, { region: 'UK', owner_email: 'ann@example.com' }] });
    expect(evaluate(facts, ruleset, now)).toMatchObject({ tier: 'PQL-A', route: 'sales-emea', owner: 'ann@example.com' });
    expect(ruleset.file.tiers.flatMap((tier) => routesOf(tier.route))).toEqual(['sales-emea', 'sales-us', 'sales-apac', 'sales', 'nurture']);
  });
});

describe('the rules JSON Schema', () => {
  it('offers editors both forms of route, and says how a route by trait and an owner are read', () => {
    const tier = (rulesJsonSchema() as { properties: { tiers: { items: { properties: Record<string, any> } } } }).properties.tiers.items.properties;
    expect(tier['route'].anyOf).toHaveLength(2);
    expect(tier['route'].anyOf[1]).toMatchObject({ required: ['by', 'map', 'default'], description: expect.stringContaining('the first account by account id whose trait is set') });
    expect(tier['owner'].description).toMatch(/^The trait that names who owns the lead/);
  });
});
