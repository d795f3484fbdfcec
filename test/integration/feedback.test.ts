import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, inject, it } from 'vitest';
import { readFeedbackSecret } from '../../functions/adapters/dynamodb/feedback-store';
import { leadEventDetailSchema } from '../../functions/core/lead-event';
import { signFeedbackToken } from '../../functions/core/lead-feedback';
import { loadRules } from '../../functions/core/rules/load';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { RecordingPublisher } from '../support/lead-events';
import { sendBatch } from '../support/send-batch';
import { cli } from '../support/cli';
import { HttpReceiver } from '../support/http-receiver';
import { staticSecret, webhookDestination } from '../../functions/adapters/destinations';
import { generateWebhookSecret } from '../../functions/core/webhook-signature';
import type { LeadEventEnvelope } from '../../functions/core/lead-event';

// Lifetime counts only: the lead still qualifies when its hold ends a month later.
const rulesYaml = `
version: 1
signals:
  dashboards: { event: Dashboard Created, at_least: 2, points: 70 }
tiers:
  - { name: PQL-A, min_score: 70, route: sales }
policy: { cooldown: 7d, feedback_reasons: { not_a_fit: 30d, bad_timing: 14d } }
`;
const rules = loadRules(rulesYaml);

const dayMs = 86_400_000;
// Feedback holds count from when it was given (the real clock), so the evaluations run on it too.
const base = new Date();
const later = (days: number) => new Date(base.getTime() + days * dayMs);

let runtime: DevRuntime | undefined;
let receiver: HttpReceiver | undefined;
afterEach(async () => {
  await runtime?.stop();
  await receiver?.stop();
  runtime = undefined;
  receiver = undefined;
});

const track = (userId: string, at: Date) => ({ type: 'track', userId, event: 'Dashboard Created', timestamp: at.toISOString(), messageId: `${userId}-${at.toISOString()}` });
const postToken = (url: string, token: string) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ t: token }).toString() });

it('a lead marked "not a fit" through a signed link in its webhook is not notified again within the hold, and re-qualifies after it', async () => {
  const leads = new RecordingPublisher();
  receiver = await new HttpReceiver().start();
  const hook = webhookDestination('local-webhook-1', receiver.url, staticSecret(generateWebhookSecret()));
  const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `feedback-${randomUUID()}`, ruleset: rules, leads, destinations: [hook], evaluateEveryMs: 0, deliverEveryMs: 0 }));
  await sendBatch(dev, [track('ada', later(-2)), track('ada', later(-1))]);
  await dev.evaluateOnce(base);
  expect(leads.published.map((event) => event.detailType)).toEqual(['Lead Qualified']);
  // Signed at delivery: the webhook's payload has them, the bus event (here the recorded one) does not.
  expect(leads.published[0]!.detail.feedbackLinks).toBeUndefined();
  await dev.deliveries.drain();
  const delivered = JSON.parse(receiver.received[0]!.body) as LeadEventEnvelope;
  expect(delivered.DetailType).toBe('Lead Qualified');
  const links = delivered.Detail.feedbackLinks!;
  expect(links.map((link) => `${link.outcome} ${link.reason}`)).toEqual(['done null', 'disqualified not_a_fit', 'disqualified bad_timing']);
  const link = links.find((candidate) => candidate.reason === 'not_a_fit')!.url;
  expect(link.startsWith(`${dev.url}/v1/feedback?t=`)).toBe(true);
  const token = new URL(link).searchParams.get('t')!;

  // Opening the link (or a scanner prefetching it) only asks to confirm.
  const opened = await fetch(link);
  expect(opened.status).toBe(200);
  expect(await opened.text()).toContain('<form method="post">');
  await dev.evaluateOnce(later(0.001));
  expect(leads.published).toHaveLength(1);

  const confirmed = await postToken(`${dev.url}/v1/feedback`, token);
  expect(confirmed.status).toBe(200);
  expect(await confirmed.text()).toContain('Feedback recorded');
  // Used once: opening or confirming again changes nothing.
  expect((await fetch(link)).status).toBe(410);
  expect((await postToken(`${dev.url}/v1/feedback`, token)).status).toBe(410);

  await dev.evaluateOnce(later(0.01));
  expect(leads.published.map((event) => event.detailType)).toEqual(['Lead Qualified', 'Lead Feedback']);
  const feedback = leads.published[1]!.detail;
  expect(leadEventDetailSchema.parse(feedback)).toBeTruthy();
  expect(feedback).toMatchObject({ tier: null, previousTier: 'PQL-A', route: 'sales', feedback: { outcome: 'disqualified', reason: 'not_a_fit', via: 'link' } });
  expect(Date.parse(feedback.feedback!.heldUntil)).toBeGreaterThan(later(29.9).getTime());

  // New events and sweeps within the hold: no re-notification.
  await sendBatch(dev, [track('ada', later(0.02))]);
  await dev.evaluateOnce(later(0.03));
  await dev.evaluateOnce(later(20));
  expect(leads.published).toHaveLength(2);

  // The sweep at the hold's end re-qualifies it: the rules still say so.
  await dev.evaluateOnce(later(30.1));
  expect(leads.published.map((event) => event.detailType)).toEqual(['Lead Qualified', 'Lead Feedback', 'Lead Qualified']);
});

it('refuses forged, malformed and unknown-lead links with a page saying why, changing nothing', async () => {
  const leads = new RecordingPublisher();
  const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `feedback-${randomUUID()}`, ruleset: rules, leads, evaluateEveryMs: 0, deliverEveryMs: 0 }));
  await sendBatch(dev, [track('ada', later(-2)), track('ada', later(-1))]);
  await dev.evaluateOnce(base);
  const secret = (await readFeedbackSecret(dev.client, dev.tableName))!;
  const claim = { workspace: 'default', type: 'user' as const, id: 'ada', outcome: 'disqualified' as const, reason: 'not_a_fit', expires: Math.floor(later(1).getTime() / 1000), nonce: 'n' };

  const forged = await postToken(`${dev.url}/v1/feedback`, signFeedbackToken(claim, 'not-the-secret'));
  expect(forged.status).toBe(403);
  expect(await forged.text()).toContain('signature does not match');
  expect((await fetch(`${dev.url}/v1/feedback?t=nonsense`)).status).toBe(400);
  const expired = await fetch(`${dev.url}/v1/feedback?t=${signFeedbackToken({ ...claim, expires: Math.floor(later(-1).getTime() / 1000) }, secret)}`);
  expect(expired.status).toBe(410);
  expect(await expired.text()).toContain('expired');
  const unknown = await postToken(`${dev.url}/v1/feedback`, signFeedbackToken({ ...claim, id: 'nobody' }, secret));
  expect(unknown.status).toBe(404);
  expect(await unknown.text()).toContain('no lead user &quot;nobody&quot; in workspace &quot;default&quot;');

  await dev.evaluateOnce(later(0.01));
  expect(leads.published.map((event) => event.detailType)).toEqual(['Lead Qualified']);
});

it('takes feedback from the CLI and the lead page, refusing an unknown reason, outcome or lead by name', async () => {
  const leads = new RecordingPublisher();
  const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `feedback-${randomUUID()}`, ruleset: rules, leads, evaluateEveryMs: 0, deliverEveryMs: 0 }));
  await sendBatch(dev, [track('ada', later(-2)), track('ada', later(-1)), track('bob', later(-2)), track('bob', later(-1))]);
  await dev.evaluateOnce(base);
  const rulesFile = join(mkdtempSync(join(tmpdir(), 'feedback-rules-')), 'rules.yaml');
  writeFileSync(rulesFile, rulesYaml);
  const feedbackCli = (...args: string[]) => cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'leads', 'feedback', ...args, '--rules', rulesFile);

  const unknownReason = await feedbackCli('ada', '--outcome', 'disqualified', '--reason', 'too small');
  expect(unknownReason.code).toBe(1);
  expect(unknownReason.stderr).toContain('reason "too small" is not one of the rules\' feedback reasons: not_a_fit, bad_timing');
  const unknownLead = await feedbackCli('nobody', '--outcome', 'done');
  expect(unknownLead.code).toBe(1);
  expect(unknownLead.stderr).toContain('no lead user "nobody" in workspace "default": nothing of that type and id has been evaluated\n');
  const wrongType = await feedbackCli('ada', '--outcome', 'done', '--type', 'account');
  expect(wrongType.code).toBe(1);
  expect(wrongType.stderr).toContain('no lead account "ada" in workspace "default": nothing of that type and id has been evaluated; that id has been evaluated as a user in workspace "default"\n');
  const badOutcome = await feedbackCli('ada', '--outcome', 'won');
  expect(badOutcome.stderr).toContain('outcome "won" must be one of done, disqualified');
  const given = await feedbackCli('ada', '--outcome', 'disqualified', '--reason', 'not a fit');
  expect(given.stderr).toBe('');
  expect(given.code).toBe(0);
  expect(given.stdout).toBe("feedback kept for user ada (default): disqualified, not_a_fit; the evaluator's next run applies it\n");

  // The lead page's form: same origin only.
  const page = await (await fetch(`${dev.url}/leads/user/bob`)).text();
  expect(page).toContain('action="/leads/user/bob/feedback?workspace=default"');
  const form = new URLSearchParams({ outcome: 'done', reason: '' }).toString();
  const post = (origin: string) => fetch(`${dev.url}/leads/user/bob/feedback?workspace=default`, { method: 'POST', headers: { origin, 'content-type': 'application/x-www-form-urlencoded' }, body: form });
  expect((await post('http://evil.example')).status).toBe(403);
  expect((await post(dev.url)).status).toBe(200);

  await dev.evaluateOnce(later(0.01));
  const feedback = leads.published.filter((event) => event.detailType === 'Lead Feedback').map((event) => [event.detail.entity.id, event.detail.feedback?.outcome, event.detail.feedback?.reason, event.detail.feedback?.via]);
  expect(feedback.sort()).toEqual([
    ['ada', 'disqualified', 'not_a_fit', 'cli'],
    ['bob', 'done', null, 'page'],
  ]);
  // done without a reason holds for policy.cooldown (7d): notified again once it ends, not before.
  await dev.evaluateOnce(later(6.9));
  expect(leads.published.filter((event) => event.detailType === 'Lead Qualified')).toHaveLength(2);
  await dev.evaluateOnce(later(7.1));
  expect(leads.published.filter((event) => event.detailType === 'Lead Qualified').map((event) => event.detail.entity.id).sort()).toEqual(['ada', 'bob', 'bob']);
});

it('refuses feedback on an entity that never qualified, naming it, and takes it on a former lead', async () => {
  const leads = new RecordingPublisher();
  const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `feedback-${randomUUID()}`, ruleset: rules, leads, evaluateEveryMs: 0, deliverEveryMs: 0 }));
  await sendBatch(dev, [track('ada', later(-2)), track('ada', later(-1)), track('carl', later(-1))]);
  await dev.evaluateOnce(base);
  const rulesFile = join(mkdtempSync(join(tmpdir(), 'feedback-rules-')), 'rules.yaml');
  writeFileSync(rulesFile, rulesYaml);
  const feedbackCli = (...args: string[]) => cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'leads', 'feedback', ...args, '--rules', rulesFile);

  // carl was evaluated but never held a tier: no one was told of him, and there is no tier to take him out of.
  const notALead = await feedbackCli('carl', '--outcome', 'disqualified', '--reason', 'not_a_fit');
  expect(notALead.code).toBe(1);
  expect(notALead.stderr).toContain('user "carl" in workspace "default" is not a lead: it has never qualified for a tier');
  expect(await (await fetch(`${dev.url}/leads/user/carl`)).text()).not.toContain('/leads/user/carl/feedback');

  // ada leaves her tier with the first feedback; as a former lead she still takes more, which sets her hold anew.
  expect((await feedbackCli('ada', '--outcome', 'done')).code).toBe(0);
  await dev.evaluateOnce(later(0.01));
  const again = await feedbackCli('ada', '--outcome', 'disqualified', '--reason', 'not_a_fit');
  expect(again.stderr).toBe('');
  await dev.evaluateOnce(later(0.02));
  expect(leads.published.map((event) => [event.detailType, event.detail.entity.id, event.detail.previousTier])).toEqual([
    ['Lead Qualified', 'ada', null],
    ['Lead Feedback', 'ada', 'PQL-A'],
    ['Lead Feedback', 'ada', null],
  ]);
});

it('says feedback on a lead a pass of a later time saved (evaluate --at) waits for that time, and applies it then', async () => {
  const leads = new RecordingPublisher();
  const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `feedback-${randomUUID()}`, ruleset: rules, leads, evaluateEveryMs: 0, deliverEveryMs: 0 }));
  await sendBatch(dev, [track('ada', later(-2)), track('ada', later(-1)), track('bob', later(-2)), track('bob', later(-1)), track('cyd', later(-2)), track('cyd', later(-1))]);
  const ahead = later(3);
  await dev.evaluateOnce(ahead);
  const rulesFile = join(mkdtempSync(join(tmpdir(), 'feedback-rules-')), 'rules.yaml');
  writeFileSync(rulesFile, rulesYaml);

  const given = await cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'leads', 'feedback', 'ada', '--outcome', 'done', '--rules', rulesFile);
  const waits = `the evaluator applies it at its first run from ${ahead.toISOString()}: a pass of that later time (evaluate --at) saved this lead; evaluate --once --at ${ahead.toISOString()} applies it now`;
  expect(given.stdout).toBe(`feedback kept for user ada (default): done; ${waits}\n`);
  const page = await fetch(`${dev.url}/leads/user/bob/feedback?workspace=default`, {
    method: 'POST',
    headers: { origin: dev.url, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ outcome: 'done', reason: '' }).toString(),
  });
  // The lead page confirms it in the words the CLI prints (feedbackConfirmation).
  expect(await page.text()).toContain(`done; ${waits}`);
  // And so does a signed link's page.
  const secret = (await readFeedbackSecret(dev.client, dev.tableName))!;
  const claim = { workspace: 'default', type: 'user' as const, id: 'cyd', outcome: 'done' as const, reason: null, expires: Math.floor(later(10).getTime() / 1000), nonce: 'cyd-link' };
  const linked = await postToken(`${dev.url}/v1/feedback`, signFeedbackToken(claim, secret));
  expect(linked.status).toBe(200);
  expect(await linked.text()).toContain(`: ${waits}. The lead leaves its tier, and stays out while the feedback holds it`);

  const feedbackEvents = () => leads.published.filter((event) => event.detailType === 'Lead Feedback').map((event) => event.detail.entity.id).sort();
  await dev.evaluateOnce(later(1));
  expect(feedbackEvents()).toEqual([]);
  await dev.evaluateOnce(ahead);
  expect(feedbackEvents()).toEqual(['ada', 'bob', 'cyd']);
});
