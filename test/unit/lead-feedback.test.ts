import { describe, expect, it } from 'vitest';
import { buildLeadEvent, decide, nextDecisionAt, type LeadState } from '../../functions/core/lead-state';
import { leadEventDetailSchema, type LeadEvent } from '../../functions/core/lead-event';
import { withFeedbackLinks } from '../../functions/adapters/destinations';
import type { AttemptResult, LeadDestination } from '../../functions/core/delivery';
import { sampleLeadEvent } from '../support/lead-events';
import {
  checkFeedbackReason,
  feedbackLinks,
  signFeedbackToken,
  verifyFeedbackToken,
  type FeedbackClaim,
  type LeadFeedback,
} from '../../functions/core/lead-feedback';
import { evaluate, type UsageEvent } from '../../functions/core/rules/engine';
import { loadRules } from '../../functions/core/rules/load';
import { slackMessage } from '../../functions/core/slack-message';
import { factsFor } from '../support/facts';

const dayMs = 86_400_000;
const start = new Date('2024-06-20T12:00:00Z');
const at = (days: number) => new Date(start.getTime() + days * dayMs);
const ruleset = loadRules(`
version: 1
signals:
  active: { event: Login, window: 90d, points: 50 }
tiers:
  - { name: PQL-A, min_score: 50, route: sales }
policy: { cooldown: 7d, feedback_reasons: { not_a_fit: 30d, bad_timing: 2w } }
`);
const login = (when: Date): UsageEvent => ({ type: 'track', event: 'Login', timestamp: when.toISOString() });
const events = [login(at(-1))];

/** One evaluation of the user at `when`, from `previous`, with the feedback given since. */
function run(previous: LeadState | undefined, when: Date, feedback: LeadFeedback[] = []) {
  const facts = factsFor(events, ruleset);
  const evaluation = evaluate(facts, ruleset, when);
  const decided = decide(previous, evaluation, facts, ruleset, when, null, feedback);
  return { ...decided, facts, evaluation, next: nextDecisionAt(decided.state, evaluation, facts, ruleset, when, 6 * 3_600_000) };
}
const notAFit = (when: Date, reason: string | null = 'not_a_fit'): LeadFeedback => ({ outcome: 'disqualified', reason, at: when.toISOString(), via: 'link', id: 'nonce-1' });

describe('sales feedback in the lead state machine', () => {
  it('holds a lead out of the tiers for its reason, keeps it in the history and publishes Lead Feedback', () => {
    const qualified = run(undefined, start);
    expect(qualified.state.tier).toBe('PQL-A');
    const marked = run(qualified.state, at(1), [notAFit(at(1))]);
    expect(marked.state.tier).toBeNull();
    expect(marked.state.cooldownUntil).toBe(at(31).toISOString());
    expect(marked.transition).toMatchObject({ kind: 'feedback', previousTier: 'PQL-A', tier: null, notify: true });
    expect(marked.state.history.at(-1)!.reasons[0]).toBe(`feedback (link): disqualified, reason not_a_fit; held out of the tiers until ${at(31).toISOString()}`);

    const event = buildLeadEvent('default', marked.facts, marked.evaluation, marked.transition!, ruleset, at(1));
    expect(event.detailType).toBe('Lead Feedback');
    expect(event.detail.feedback).toEqual({ outcome: 'disqualified', reason: 'not_a_fit', givenAt: at(1).toISOString(), via: 'link', heldUntil: at(31).toISOString() });
    expect(event.detail.route).toBe('sales');
    expect(leadEventDetailSchema.parse(event.detail)).toBeTruthy();
    expect(slackMessage(event.detail).blocks[0]).toMatchObject({ text: { text: 'Lead Feedback: PQL-A → none' } });
  });

  it('does not notify again during the hold, sweeps at its end and re-qualifies then', () => {
    const marked = run(run(undefined, start).state, at(1), [notAFit(at(1))]);
    expect(marked.next).toBe(at(31).getTime());
    const during = run(marked.state, at(20));
    expect(during.state.tier).toBeNull();
    expect(during.transition).toBeUndefined();
    const after = run(during.state, at(31));
    expect(after.state.tier).toBe('PQL-A');
    expect(after.transition?.kind).toBe('qualified');
  });

  it('holds `done`, and feedback without a reason, for policy.cooldown', () => {
    const done = run(run(undefined, start).state, at(1), [{ ...notAFit(at(1), null), outcome: 'done' }]);
    expect(done.state.tier).toBeNull();
    expect(done.state.cooldownUntil).toBe(at(8).toISOString());
    expect(done.transition?.feedback?.outcome).toBe('done');
  });

  it('applies several in order: each in the history, the newest one holds', () => {
    const marked = run(run(undefined, start).state, at(2), [{ ...notAFit(at(2), 'bad_timing'), id: 'b' }, { ...notAFit(at(1)), id: 'a' }]);
    expect(marked.state.history.slice(-2).map((entry) => entry.reasons[0]!.split(';')[0])).toEqual(['feedback (link): disqualified, reason not_a_fit', 'feedback (link): disqualified, reason bad_timing']);
    expect(marked.state.cooldownUntil).toBe(at(16).toISOString());
  });

  it('checks reason codes against the rules, naming the field and the codes', () => {
    expect(checkFeedbackReason('not a fit', ruleset)).toEqual({ ok: true, reason: 'not_a_fit' });
    expect(checkFeedbackReason(undefined, ruleset)).toEqual({ ok: true, reason: null });
    expect(checkFeedbackReason('too big', ruleset)).toEqual({ ok: false, error: 'reason "too big" is not one of the rules\' feedback reasons: not_a_fit, bad_timing' });
  });
});

describe('feedback link tokens', () => {
  const secret = 'test-secret';
  const claim: FeedbackClaim = { workspace: 'default', type: 'user', id: 'ada', outcome: 'disqualified', reason: 'not_a_fit', expires: Math.floor(at(14).getTime() / 1000), nonce: 'n1' };

  it('verifies what it signed until it expires', () => {
    const token = signFeedbackToken(claim, secret);
    expect(verifyFeedbackToken(token, secret, start)).toEqual({ ok: true, claim });
    expect(verifyFeedbackToken(token, secret, at(14))).toMatchObject({ ok: false, problem: 'expired' });
  });

  it('refuses a token signed with another secret, or altered', () => {
    const token = signFeedbackToken(claim, secret);
    expect(verifyFeedbackToken(token, 'other-secret', start)).toMatchObject({ ok: false, problem: 'forged' });
    const [version, , signature] = token.split('.');
    const altered = Buffer.from(JSON.stringify(['default', 'user', 'bob', 'disqualified', 'not_a_fit', claim.expires, 'n1'])).toString('base64url');
    expect(verifyFeedbackToken(`${version}.${altered}.${signature}`, secret, start)).toMatchObject({ ok: false, problem: 'forged' });
    expect(verifyFeedbackToken('garbage', secret, start)).toMatchObject({ ok: false, problem: 'malformed' });
    expect(verifyFeedbackToken(undefined, secret, start)).toMatchObject({ ok: false, problem: 'malformed' });
  });

  it('signs a link per choice, each with its own nonce, pointing at the feedback route', () => {
    const links = feedbackLinks({ secret, baseUrl: 'https://api.example.com/' }, { workspace: 'default', type: 'user', id: 'ada' }, ['not_a_fit', 'bad_timing'], start);
    expect(links.map((link) => `${link.outcome} ${link.reason}`)).toEqual(['done null', 'disqualified not_a_fit', 'disqualified bad_timing']);
    const claims = links.map((link) => verifyFeedbackToken(new URL(link.url).searchParams.get('t'), secret, start));
    expect(links[0]!.url.startsWith('https://api.example.com/v1/feedback?t=v1.')).toBe(true);
    expect(new Set(claims.map((checked) => (checked.ok ? checked.claim.nonce : 'bad'))).size).toBe(3);
    expect(claims.every((checked) => checked.ok && checked.claim.expires === Math.floor(at(14).getTime() / 1000))).toBe(true);
  });
});

describe('feedback links at delivery (withFeedbackLinks)', () => {
  const sent: LeadEvent[] = [];
  const destination: LeadDestination = { id: 'sales-webhook-1', kind: 'webhook', skipsSuperseded: false, send: async (event): Promise<AttemptResult> => {
      sent.push(event);
      return { outcome: 'delivered', status: 200, latencyMs: 1 };
    },
  };
  const signer = async () => ({ secret: 'test-secret', baseUrl: 'https://api.example.com/' });

  it('adds links to events of a lead in a tier only, and Slack shows them as links', async () => {
    const linked = withFeedbackLinks(destination, signer, ['not_a_fit'], () => start);
    await linked.send(sampleLeadEvent({ previousTier: null, tier: 'PQL-A' }));
    await linked.send(sampleLeadEvent({ previousTier: 'PQL-A', tier: null }));
    await linked.send(sampleLeadEvent({ previousTier: null, tier: 'PQL-A', test: true }));
    expect(sent.map((event) => event.detail.feedbackLinks?.map((link) => link.reason))).toEqual([[null, 'not_a_fit'], undefined, undefined]);
    const text = JSON.stringify(slackMessage(sent[0]!.detail).blocks);
    expect(text).toContain('<https://api.example.com/v1/feedback?t=v1.');
    expect(text).toContain('|Disqualify: not a fit>');
  });

  it('sends without links while the table has no key', async () => {
    sent.length = 0;
    await withFeedbackLinks(destination, async () => undefined, ['not_a_fit']).send(sampleLeadEvent({ previousTier: null, tier: 'PQL-A' }));
    expect(sent[0]!.detail.feedbackLinks).toBeUndefined();
  });
});
