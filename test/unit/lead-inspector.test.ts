import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { stateBodyAttributes } from '../../functions/adapters/dynamodb/entity-rows';
import { pruneLifetime } from '../../functions/core/facts';
import { evaluate } from '../../functions/core/rules/engine';
import { factsFor } from '../support/facts';
import { renderLeadHtml, renderLeadListHtml } from '../../functions/analysis/lead-html';
import type { DynamoDbLeadReader } from '../../functions/adapters/dynamodb/lead-reader';
import { leadPages } from '../../functions/local/lead-inspector';
import type { StoredEntityState } from '../../functions/core/facts';
import { decide, maxScores, withScore, type LeadState } from '../../functions/core/lead-state';
import { lastEvents, leadList, leadView, type LeadRecord } from '../../functions/core/lead-view';
import type { StoredMessage } from '../../functions/core/messages';
import type { Evaluation } from '../../functions/core/rules/engine';
import { loadRules } from '../../functions/core/rules/load';

const now = new Date('2024-06-15T12:00:00.000Z');
const hours = (n: number) => new Date(now.getTime() + n * 3_600_000);
const ruleset = loadRules(`version: 1
signals:
  logins: { event: Logged In, points: 10 }
  plan: { trait: plan, is: { exists: true }, points: 5 }
tiers:
  - { name: hot, min_score: 30, route: sales }
  - { name: warm, min_score: 10, route: nurture }
`);
const evaluation = (engagement: number, fit = 0, plan: string | null = null): Evaluation => {
  const total = engagement + fit;
  return {
    signals: {
      logins: { matched: engagement > 0, value: engagement / 10, points: engagement, category: 'engagement' },
      plan: { matched: plan !== null, value: plan, points: plan !== null ? fit : 0, category: 'fit' },
    },
    score: { total, engagement, fit },
    tier: total >= 30 ? 'hot' : total >= 10 ? 'warm' : null,
    route: total >= 30 ? 'sales' : total >= 10 ? 'nurture' : null,
    owner: null,
  };
};
const facts = { lastSeen: now.toISOString() };

/** Decides along a series of evaluations, an hour apart. */
function walk(evaluations: Evaluation[], from?: LeadState): LeadState {
  let state = from;
  evaluations.forEach((next, index) => {
    state = decide(state, next, facts, ruleset, hours(index)).state;
  });
  return state!;
}

describe('the score history in decide()', () => {
  it('appends a point only when the score changes, with engagement and fit, oldest first', () => {
    const state = walk([evaluation(0), evaluation(10), evaluation(10), evaluation(20, 5, 'pro'), evaluation(20, 5, 'pro'), evaluation(0)]);
    expect(state.scores).toEqual([
      { at: hours(1).toISOString(), total: 10, engagement: 10, fit: 0 },
      { at: hours(3).toISOString(), total: 25, engagement: 20, fit: 5 },
      { at: hours(5).toISOString(), total: 0, engagement: 0, fit: 0 },
    ]);
    // The transitions are kept as before, beside it.
    expect(state.history.map((entry) => entry.tier)).toEqual(['warm', null]);
  });

  it('appends when engagement and fit trade places under the same total', () => {
    const state = walk([evaluation(20, 10, 'pro'), evaluation(25, 5, 'pro')]);
    expect(state.scores!.map((point) => [point.total, point.engagement, point.fit])).toEqual([
      [30, 20, 10],
      [30, 25, 5],
    ]);
  });

  it('keeps nothing for an entity that never held a tier, and keeps the newest maxScores', () => {
    expect(walk([evaluation(0), evaluation(5)]).scores).toBeUndefined();
    expect(walk([evaluation(0), evaluation(5)]).signals).toBeUndefined();
    const many = Array.from({ length: maxScores + 12 }, (_, index) => evaluation(10 + index));
    const state = walk(many);
    expect(state.scores).toHaveLength(maxScores);
    expect(state.scores![0]!.total).toBe(10 + 12);
    expect(state.scores!.at(-1)!.total).toBe(10 + maxScores + 11);
  });

  it('starts from the current score for a state saved before scores were kept', () => {
    const old = walk([evaluation(20)]);
    const { scores: _dropped, signals: _alsoDropped, ...before } = old;
    expect(withScore([], { total: 20, engagement: 20, fit: 0 }, now)).toHaveLength(1);
    expect(decide(before, evaluation(20), facts, ruleset, hours(2)).state.scores).toEqual([{ at: hours(2).toISOString(), total: 20, engagement: 20, fit: 0 }]);
  });

  it('keeps the matched signals with their values and points, a long string value cut', () => {
    const state = walk([evaluation(20, 5, 'x'.repeat(500))]);
    expect(state.signals).toEqual([
      { name: 'logins', value: 2, points: 20 },
      { name: 'plan', value: 'x'.repeat(200), points: 5 },
    ]);
    expect(state.matched).toEqual(['logins', 'plan']);
  });
});

describe('the STATE item with a full history', () => {
  it('stays under two write units deflated: the score history and the signal values add about half a KB', () => {
    const activation = loadRules(readFileSync(join(import.meta.dirname, '../../examples/activation.rules.yaml'), 'utf8'), 'activation.rules.yaml');
    const start = Date.parse('2024-05-01T09:00:00.000Z');
    const names = ['Dashboard Created', 'Teammate Invited', 'Data Source Connected', 'Dashboard Shared', 'Plan Limit Reached', 'Data Exported', 'Logged In'];
    const events = Array.from({ length: 60 }, (_, index) => ({ type: 'track' as const, event: names[index % names.length]!, properties: { invitee: `p${index}` }, timestamp: new Date(start + index * 9 * 3_600_000).toISOString() }));
    const entity = factsFor(events, activation, { traits: { createdAt: new Date(start).toISOString(), employees: 80 }, accountTraits: [{ employees: 80, industry: 'software' }] });
    const real = evaluate(entity, activation, new Date(start + 30 * 86_400_000));
    let lead: LeadState | undefined;
    // 60 evaluations 15 days apart (past any cooldown), at odd milliseconds as real runs are: the score moves every
    // time and the tier every other time, so the history (20) and the score history (30) are both full.
    for (let step = 0; step < 60; step++) {
      const tier = step % 4 < 2 ? activation.file.tiers[step % 2]!.name : null;
      const total = 40 + step;
      const at = new Date(start + (45 + step * 15) * 86_400_000 + ((step * 7919) % 60_000));
      // The activation rules' routes are plain names.
      const route = (activation.file.tiers.find((candidate) => candidate.name === tier)?.route as string | undefined) ?? null;
      lead = decide(lead, { ...real, tier, route, score: { total, engagement: total - 15, fit: 15 } }, entity, activation, at).state;
    }
    expect(lead!.history).toHaveLength(20);
    expect(lead!.scores).toHaveLength(maxScores);
    const { scores: _scores, signals: _signals, ...before } = lead!;
    const stored = (state: object) => {
      const full = { lead: state as LeadState, lifetime: pruneLifetime(entity.lifetime, activation), firstSeen: entity.firstSeen, lastSeen: entity.lastSeen, rollupVersion: activation.version, openDays: entity.days.slice(-2) };
      const [body] = Object.values(stateBodyAttributes(full));
      return { json: Buffer.byteLength(JSON.stringify(full)), stored: body?.B?.length ?? Buffer.byteLength(body!.S!) };
    };
    const [without, withScores] = [stored(before), stored(lead!)];
    console.log(`STATE of a lead with a full history: ${without.json} B JSON, ${without.stored} B deflated without scores and signal values; ${withScores.json} B JSON, ${withScores.stored} B deflated with them`);
    // Keys, revision and the sweep index attributes take about 100 bytes more: under 2 KB is two write units.
    expect(withScores.stored).toBeLessThan(1900);
    expect(withScores.stored - without.stored).toBeLessThan(600);
  });
});

const message = (type: StoredMessage['type'], timestamp: string, extra: Record<string, unknown> = {}): StoredMessage => ({ type, timestamp, messageId: `${type}-${timestamp}`, ...extra });

function record(lead: LeadState, overrides: Partial<LeadRecord> = {}): LeadRecord {
  const state: StoredEntityState = { lead, lifetime: { day: 'lifetime', names: {} } as never, firstSeen: '2024-06-01T00:00:00.000Z', lastSeen: '2024-06-15T11:00:00.000Z', rollupVersion: 'v' };
  return { ref: { workspace: 'default', type: 'user', id: 'ada' }, state, traits: { email: 'ada@example.com' }, related: [{ id: 'acme', tier: 'hot' }], messages: [], deliveries: [], ...overrides };
}

describe('the lead view', () => {
  it('shows the current score, its history, signals, transitions newest first, accounts and the last events by name and time', () => {
    const lead = walk([evaluation(10), evaluation(25, 5, 'pro')]);
    const messages = [
      message('track', '2024-06-14T10:00:00.000Z', { event: 'Logged In', properties: { secret: 'never shown' } }),
      message('page', '2024-06-15T10:00:00.000Z', { name: 'Pricing' }),
      message('identify', '2024-06-13T10:00:00.000Z', { traits: { email: 'ada@example.com' } }),
    ];
    const view = leadView(record(lead, { messages }))!;
    expect(view.score).toEqual({ total: 30, engagement: 25, fit: 5 });
    expect(view.scores.map((point) => point.total)).toEqual([10, 30]);
    expect(view.signals).toEqual([
      { name: 'logins', value: 2.5, points: 25 },
      { name: 'plan', value: 'pro', points: 5 },
    ]);
    expect(view.transitions.map((entry) => [entry.previousTier, entry.tier])).toEqual([
      ['warm', 'hot'],
      [null, 'warm'],
    ]);
    expect(view.transitions[0]!.reasons[0]).toBe('hot: score 30 >= 30');
    expect(view.accounts).toEqual([{ id: 'acme', tier: 'hot' }]);
    expect(view.members).toEqual([]);
    expect(view.lastEvents).toEqual([
      { name: 'Page Viewed', at: '2024-06-15T10:00:00.000Z' },
      { name: 'Logged In', at: '2024-06-14T10:00:00.000Z' },
      { name: 'identify', at: '2024-06-13T10:00:00.000Z' },
    ]);
    expect(JSON.stringify(view)).not.toContain('never shown');
  });

  it('keeps only the newest 20 events, and lists an account\'s members', () => {
    const messages = Array.from({ length: 30 }, (_, index) => message('track', new Date(now.getTime() - index * 60_000).toISOString(), { event: `E${index}` }));
    expect(lastEvents(messages).map((event) => event.name)).toEqual(Array.from({ length: 20 }, (_, index) => `E${index}`));
    const account = leadView(record(walk([evaluation(10)]), { ref: { workspace: 'default', type: 'account', id: 'acme' }, related: [{ id: 'ada', tier: null }] }))!;
    expect(account.members).toEqual([{ id: 'ada', tier: null }]);
    expect(account.accounts).toEqual([]);
  });

  it('says what it does not know for a state saved before scores and values were kept', () => {
    const { scores: _s, signals: _v, ...old } = walk([evaluation(20)]);
    const view = leadView(record(old))!;
    expect(view.score).toEqual({ total: 20, engagement: null, fit: null });
    expect(view.signals).toEqual([{ name: 'logins', value: null, points: null }]);
    expect(leadView({ ...record(old), state: { ...record(old).state, lead: undefined } })).toBeUndefined();
  });

  it("shows a former lead's current score and matched signals, not the parts and values kept from its last time in a tier", () => {
    // Qualified (warm), then out of the tiers (score 0), then some activity that stays below the tiers (plan, 5).
    const former = walk([evaluation(10), evaluation(0), evaluation(0, 5, 'pro')]);
    const view = leadView(record(former))!;
    expect(view.tier).toBeNull();
    expect(view.score).toEqual({ total: 5, engagement: null, fit: null });
    expect(view.signals).toEqual([{ name: 'plan', value: null, points: null }]);
  });

  it('names the user an identifier merged into, and its page links there', () => {
    const lead = walk([evaluation(10)]);
    expect(leadView(record(lead))!.mergedInto).toBeNull();
    expect(renderLeadHtml(leadView(record(lead))!)).not.toContain('Merged into');
    const view = leadView(record({ ...lead, mergedInto: 'fay' }))!;
    expect(view.mergedInto).toBe('fay');
    expect(renderLeadHtml(view)).toContain('<dt>Merged into</dt><dd><a href="/leads/user/fay?workspace=default">user <code>fay</code></a></dd>');
  });

  it('lists leads in a tier only, newest since first, filtered by tier, route, since and workspace', () => {
    const at = (hour: number, engagement: number) => decide(undefined, evaluation(engagement), facts, ruleset, hours(hour)).state;
    const states = [
      { ref: { workspace: 'default', type: 'user' as const, id: 'old' }, lead: at(0, 10) },
      { ref: { workspace: 'default', type: 'user' as const, id: 'new' }, lead: at(5, 40) },
      { ref: { workspace: 'default', type: 'user' as const, id: 'none' }, lead: at(6, 0) },
      { ref: { workspace: 'other', type: 'account' as const, id: 'acme' }, lead: at(3, 40) },
    ];
    expect(leadList(states).map((row) => row.id)).toEqual(['new', 'acme', 'old']);
    expect(leadList(states)[0]).toEqual({ workspace: 'default', type: 'user', id: 'new', tier: 'hot', route: 'sales', score: 40, since: hours(5).toISOString() });
    expect(leadList(states, { tier: 'hot' }).map((row) => row.id)).toEqual(['new', 'acme']);
    expect(leadList(states, { route: 'nurture' }).map((row) => row.id)).toEqual(['old']);
    expect(leadList(states, { since: hours(3) }).map((row) => row.id)).toEqual(['new', 'acme']);
    expect(leadList(states, { workspace: 'other' }).map((row) => row.id)).toEqual(['acme']);
  });
});

describe('the lead pages', () => {
  const hostile = `<script>alert(1)</script>"'&`;

  it('escape every value from clients: ids, event names, signal values, traits, reasons', () => {
    const lead = { ...walk([evaluation(20, 5, hostile)]), mergedInto: hostile };
    const view = leadView(
      record(lead, {
        ref: { workspace: 'default', type: 'user', id: hostile },
        traits: { name: hostile },
        related: [{ id: hostile, tier: null }],
        messages: [message('track', '2024-06-15T10:00:00.000Z', { event: hostile })],
      }),
    )!;
    const html = renderLeadHtml(view);
    expect(html).not.toContain('<script>');
    expect(html).not.toMatch(/<script|<link(?! rel="icon" href="data:,")|<img|<iframe|@import|url\(|\bsrc=/i);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;');
    expect(html).toContain(`href="/leads/account/${encodeURIComponent(hostile)}?workspace=default"`.replace(/&/g, '&amp;').replace(/'/g, '&#39;'));
    expect(html).toContain(`href="/leads/user/${encodeURIComponent(hostile)}?workspace=default"`.replace(/&/g, '&amp;').replace(/'/g, '&#39;'));
    const list = renderLeadListHtml(leadList([{ ref: view.entity, lead }]), { tier: hostile }, { tiers: [hostile], routes: [] });
    expect(list).not.toContain('<script>');
  });

  it('carry every figure of the view in a data-metric hook', () => {
    const view = leadView(record(walk([evaluation(10), evaluation(25, 5, 'pro')])))!;
    const html = renderLeadHtml(view);
    const hooks = new Map([...html.matchAll(/data-metric="([^"]+)" data-value="([^"]+)"/g)].map((match) => [match[1]!, match[2]!]));
    expect(hooks.get('score:total')).toBe('30');
    expect(hooks.get('score:engagement')).toBe('25');
    expect(hooks.get('score:fit')).toBe('5');
    expect(hooks.get('scores:0:total')).toBe('10');
    expect(hooks.get('scores:1:fit')).toBe('5');
    expect(hooks.get('signal:logins:points')).toBe('25');
  });

  it('title an error by its status, not "Not found" whatever it is', async () => {
    const failing = { leadStates: () => Promise.reject(new Error('the table is gone')) } as unknown as DynamoDbLeadReader;
    const pages = leadPages(failing);
    const titleOf = async (url: string) => {
      const page = (await pages(new URL(url)))!;
      return [page.status, /<title>(.*)<\/title>/.exec(page.body)?.[1], /<h1>(.*)<\/h1>/.exec(page.body)?.[1]];
    };
    expect(await titleOf('http://evil.example/leads')).toEqual([403, 'Forbidden', 'Forbidden']);
    expect(await titleOf('http://127.0.0.1/leads?since=soon')).toEqual([400, 'Bad Request', 'Bad Request']);
    expect(await titleOf('http://127.0.0.1/leads/user/ada/more')).toEqual([404, 'Not Found', 'Not Found']);
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(await titleOf('http://127.0.0.1/leads')).toEqual([500, 'Internal Server Error', 'Internal Server Error']);
    logged.mockRestore();
  });
});
