import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { evaluate, type UsageEvent } from '../../functions/core/rules/engine';
import { loadRulesFile } from '../../functions/local/rules-file';
import { factsFor } from '../support/facts';

/** examples/playbook.rules.yaml evaluates as each of its sentences means. */
const { ruleset } = loadRulesFile(join(import.meta.dirname, '../../examples/playbook.rules.yaml'));
const track = (event: string, timestamp: string): UsageEvent => ({ type: 'track', event, properties: {}, timestamp });
const page = (timestamp: string): UsageEvent => ({ type: 'page', properties: {}, timestamp });
const signalAt = (name: string, events: UsageEvent[], now: string, traits: Record<string, unknown> = {}, accountTraits: Record<string, unknown>[] = []) =>
  evaluate(factsFor(events, ruleset, { traits, accountTraits }), ruleset, new Date(now)).signals[name]!;

describe('the playbook example', () => {
  const signedUp = { createdAt: '2024-01-01T15:00:00.000Z' };
  const twoDays = [track('Logged In', '2024-01-02T15:00:00.000Z'), page('2024-01-05T15:00:00.000Z')];

  it.each([
    { case: 'signed up 74 days ago, used it on 2 days, no login since', events: twoDays, now: '2024-03-15T15:00:00.000Z', matched: true },
    { case: 'a third day of use', events: [...twoDays, page('2024-01-09T15:00:00.000Z')], now: '2024-03-15T15:00:00.000Z', matched: false },
    { case: 'a login within 3 weeks', events: [track('Logged In', '2024-01-02T15:00:00.000Z'), track('Logged In', '2024-03-01T15:00:00.000Z')], now: '2024-03-15T15:00:00.000Z', matched: false },
    { case: 'signed up 59 days ago', events: twoDays, now: '2024-02-29T15:00:00.000Z', matched: false },
  ])('gone cold (signed up 60 days ago, used the product twice, no login for 3 weeks): $case -> $matched', ({ events, now, matched }) => {
    const result = signalAt('gone_cold', events, now, signedUp);
    expect(result.matched).toBe(matched);
    expect(result.points).toBe(matched ? -50 : 0);
  });

  it.each([
    { dashboard: '2024-03-03T14:59:59.000Z', matched: true },
    { dashboard: '2024-03-03T15:00:01.000Z', matched: false },
  ])('first dashboard within 2 days of signup: at $dashboard -> $matched', ({ dashboard, matched }) => {
    expect(signalAt('fast_first_dashboard', [track('Dashboard Created', dashboard)], '2024-03-10T12:00:00.000Z', { createdAt: '2024-03-01T15:00:00.000Z' }).matched).toBe(matched);
  });

  it('first invite within 1 day of the first dashboard', () => {
    const dashboard = track('Dashboard Created', '2024-03-02T10:00:00.000Z');
    expect(signalAt('fast_first_invite', [dashboard, track('Teammate Invited', '2024-03-03T09:00:00.000Z')], '2024-03-10T12:00:00.000Z').matched).toBe(true);
    expect(signalAt('fast_first_invite', [dashboard, track('Teammate Invited', '2024-03-03T11:00:00.000Z')], '2024-03-10T12:00:00.000Z').matched).toBe(false);
  });

  it('logged in 10+ times in any week of the last month', () => {
    const logins = (count: number) => Array.from({ length: count }, (_, i) => track('Logged In', `2024-03-0${2 + (i % 5)}T15:00:00.000Z`));
    expect(signalAt('login_habit', logins(10), '2024-03-20T15:00:00.000Z').matched).toBe(true);
    expect(signalAt('login_habit', logins(9), '2024-03-20T15:00:00.000Z').matched).toBe(false);
  });

  it.each([
    { email: 'ann@Acme.io', matched: true },
    { email: 'bob@GMAIL.com', matched: false },
    { email: 'no-email', matched: false },
  ])('an e-mail domain that is not a free mail provider: $email -> $matched', ({ email, matched }) => {
    expect(signalAt('work_email', [page('2024-03-01T15:00:00.000Z')], '2024-03-02T15:00:00.000Z', { email }).matched).toBe(matched);
  });

  it('a plan name matching a pattern, and a number sent as a string', () => {
    const account = { plan: 'Business Annual', employees: '50' };
    expect(signalAt('team_plan', [page('2024-03-01T15:00:00.000Z')], '2024-03-02T15:00:00.000Z', {}, [account]).matched).toBe(true);
    expect(signalAt('company_size', [page('2024-03-01T15:00:00.000Z')], '2024-03-02T15:00:00.000Z', {}, [account]).matched).toBe(true);
    expect(signalAt('company_size', [page('2024-03-01T15:00:00.000Z')], '2024-03-02T15:00:00.000Z', {}, [{ employees: '49' }]).matched).toBe(false);
  });

  it('counts its days in New York: 22:30 and 00:00 there are two days, though one UTC day', () => {
    const feature = (timestamp: string) => track('Premium Feature Used', timestamp);
    const events = [feature('2024-03-10T03:30:00.000Z'), feature('2024-03-10T05:00:00.000Z'), feature('2024-03-11T15:00:00.000Z')];
    const result = signalAt('premium_feature', events, '2024-03-12T15:00:00.000Z');
    expect(result.value).toBe(3);
    expect(result.matched).toBe(true);
  });
});
