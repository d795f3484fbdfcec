import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { signedLeadEventRequest } from '../../functions/adapters/webhook/delivery';
import { leadEventEnvelope, leadEventSource, type LeadEvent } from '../../functions/core/lead-event';
import { buildLeadEvent, decide, type LeadState } from '../../functions/core/lead-state';
import { evaluate, mergeRollups, type EntityFacts, type MemberFacts, type UsageEvent } from '../../functions/core/rules/engine';
import { loadRules, type Ruleset } from '../../functions/core/rules/load';
import { generateWebhookSecret, webhookHeaders } from '../../functions/core/webhook-signature';
import { verifiedByLibrary } from '../support/webhooks';
import { WebhookLeadSink } from '../../functions/local/lead-sinks';
import { entityUrl, slackMessage, type SlackBlock, type SlackMessage } from '../../functions/notifier/format';
import { emailInput, type InputTransformer } from '../../lib/lead-fanout';
import { factsFor } from '../support/facts';
import { lambdaContext } from '../support/lambda-context';

// Lead events as the evaluator builds them: facts -> evaluate -> decide -> buildLeadEvent, with the example rules.
const now = new Date('2024-06-15T12:00:00.000Z');
const dayMs = 86_400_000;
const ago = (days: number, hours = 0) => new Date(now.getTime() - days * dayMs - hours * 3_600_000).toISOString();
const daysLater = (days: number) => new Date(now.getTime() + days * dayMs);
const track = (event: string, when: string, properties: Record<string, unknown> = {}): UsageEvent => ({ type: 'track', event, properties, timestamp: when });
const times = <T>(count: number, make: (index: number) => T): T[] => Array.from({ length: count }, (_, index) => make(index));

const example = (name: string) => loadRules(readFileSync(join(import.meta.dirname, '../../examples', name), 'utf8'), name);
const activation = example('activation.rules.yaml');
const teams = example('team-accounts.rules.yaml');

/** The lead event of the transition from `previous` that evaluating `facts` at `at` decides. */
function transition(facts: EntityFacts, ruleset: Ruleset, at: Date, previous?: LeadState): { event: LeadEvent; state: LeadState } {
  const evaluation = evaluate(facts, ruleset, at);
  const decided = decide(previous, evaluation, facts, ruleset, at);
  if (!decided.transition) throw new Error(`no transition (tier ${evaluation.tier})`);
  return { event: buildLeadEvent('acme', facts, evaluation, decided.transition, ruleset, at), state: decided.state };
}

// A user who signed up 20 days ago, activated in the first week, then used the key feature and hit a plan limit.
const userTraits = { createdAt: ago(20), plan: 'free', email: 'ada@example.com', name: 'Ada Okafor' };
const activationSteps = [
  ...times(2, (index) => track('Dashboard Created', ago(19, index))),
  track('Teammate Invited', ago(17), { invitee: 'sam@example.com' }),
  track('Data Source Connected', ago(15), { source: 'postgres' }),
  track('Logged In', ago(20)),
];
const keyFeatureAndIntent = [track('Dashboard Shared', ago(3)), track('Plan Limit Reached', ago(2), { limit: 'seats' }), track('Logged In', ago(1))];
const userOptions = { id: 'user-45', traits: userTraits, accountTraits: [{ name: 'Acme Analytics', employees: 200, industry: 'software' }] };

const pqlA = factsFor([...activationSteps, ...keyFeatureAndIntent], activation, userOptions);
const qualified = transition(pqlA, activation, now);
// The same user a week earlier, before activating: the key feature alone makes a PQL-B (nurture).
const nurture = factsFor([track('Dashboard Created', ago(19)), ...keyFeatureAndIntent], activation, userOptions);
const tierChanged = transition(pqlA, activation, now, transition(nurture, activation, now).state);
// Five weeks on without activity, the key feature is out of its 30-day window: the PQL-A drops out.
const disqualified = transition(pqlA, activation, daysLater(35), qualified.state);

/** An account of three active members who invite and build dashboards together: team-pql. */
function teamAccount(id: string): LeadEvent {
  const members = ['u-1', 'u-2', 'u-3'].map((memberId, index) =>
    factsFor(
      [
        ...times(8, (day) => track('Logged In', ago(day % 5))),
        ...times(2, (day) => track('Dashboard Created', ago(day + index))),
        track('Teammate Invited', ago(2), { invitee: `guest-${index}@example.com` }),
      ],
      teams,
      { id: memberId, traits: { createdAt: ago(40) } },
    ),
  );
  const memberFacts: MemberFacts[] = members.map((facts) => {
    const evaluation = evaluate(facts, teams, now);
    return { id: facts.id, lastSeen: facts.lastSeen, tier: evaluation.tier, matched: Object.keys(evaluation.signals).filter((name) => evaluation.signals[name]!.matched) };
  });
  const dayNames = [...new Set(members.flatMap((facts) => facts.days.map((day) => day.day)))].sort();
  const days = dayNames.map((name) => mergeRollups(name, members.flatMap((facts) => facts.days.filter((day) => day.day === name))));
  const facts: EntityFacts = {
    type: 'account',
    id,
    traits: { name: 'Acme Analytics', employees: 120 },
    accountTraits: [],
    firstSeen: ago(10),
    lastSeen: ago(0),
    days,
    lifetime: mergeRollups('lifetime', days),
    members: memberFacts,
  };
  return transition(facts, teams, now).event;
}
const account = teamAccount('acct/eu & <co>');

it('builds real lead events for every kind of transition', () => {
  expect([qualified, tierChanged, disqualified].map(({ event }) => [event.detailType, event.detail.previousTier, event.detail.tier, event.detail.route])).toEqual([
    ['Lead Qualified', null, 'PQL-A', 'sales'],
    ['Lead Tier Changed', 'PQL-B', 'PQL-A', 'sales'],
    ['Lead Disqualified', 'PQL-A', null, 'sales'],
  ]);
  expect(account).toMatchObject({ detailType: 'Lead Qualified', detail: { tier: 'team-pql', entity: { type: 'account' } } });
  expect(account.detail.context.members).toHaveLength(3);
});

// ---------------------------------------------------------------------------------------------------------------

const texts = (message: SlackMessage): string[] =>
  message.blocks.flatMap((block): string[] => {
    switch (block.type) {
      case 'header':
        return [block.text.text];
      case 'section':
        return 'fields' in block ? block.fields.map((field) => field.text) : [block.text.text];
      case 'context':
        return block.elements.map((element) => element.text);
      case 'actions':
        return block.elements.map((element) => element.text.text);
    }
  });
const blocksOf = <T extends SlackBlock['type']>(message: SlackMessage, type: T) =>
  message.blocks.filter((block): block is Extract<SlackBlock, { type: T }> => block.type === type);

describe('slackMessage', () => {
  const template = 'https://crm.example.com/{workspace}/{type}/{id}?from=pql-radar';

  it.each([
    ['qualified', qualified.event, 'Lead Qualified: none → PQL-A'],
    ['tier changed', tierChanged.event, 'Lead Tier Changed: PQL-B → PQL-A'],
    ['disqualified', disqualified.event, 'Lead Disqualified: PQL-A → none'],
  ])('%s: a header with the transition, then entity, tier, score and route as fields', (_name, event, header) => {
    const { detail } = event;
    const message = slackMessage(detail, template);
    expect(message.text).toBe(detail.summary.replaceAll('>', '&gt;'));
    expect(message.blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: header } });
    const [fields] = blocksOf(message, 'section').filter((block) => 'fields' in block);
    expect(fields).toEqual({
      type: 'section',
      fields: [
        { type: 'mrkdwn', text: `*Entity*\nuser user-45\nworkspace acme` },
        { type: 'mrkdwn', text: `*Tier*\n${header.split(': ')[1]}` },
        { type: 'mrkdwn', text: `*Score*\n${detail.score.total} (engagement ${detail.score.engagement}, fit ${detail.score.fit})` },
        { type: 'mrkdwn', text: '*Route*\nsales' },
      ],
    });
    expect(texts(message)).toContain('Ada Okafor · ada@example.com · Acme Analytics · plan free');
  });

  it('lists every matched signal with its value and points, and the reasons', () => {
    const { detail } = qualified.event;
    expect(detail.signals.length).toBeGreaterThan(3);
    const message = slackMessage(detail);
    const signals = texts(message).find((text) => text.startsWith('*Signals*'))!;
    for (const signal of detail.signals) {
      const value = typeof signal.value === 'string' ? JSON.stringify(signal.value) : String(signal.value);
      expect(signals).toContain(`• ${signal.name}: ${value} (${signal.points > 0 ? '+' : ''}${signal.points})`);
    }
    const why = texts(message).find((text) => text.startsWith('*Why*'))!;
    expect(why.split('\n').slice(1)).toEqual(detail.reasons.map((reason) => `• ${reason.replaceAll('>', '&gt;')}`));
    expect(why).toMatch(/PQL-A: score \d+ &gt;= 60, with pql_formula/);
  });

  it('says why a lead dropped out', () => {
    const why = texts(slackMessage(disqualified.event.detail)).find((text) => text.startsWith('*Why*'))!;
    expect(why).toContain('needed for PQL-A');
  });

  it('links to the entity with {workspace}, {type} and {id} URL-encoded, and has no button without a template', () => {
    expect(blocksOf(slackMessage(qualified.event.detail, template), 'actions')).toEqual([
      {
        type: 'actions',
        elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open user' }, url: 'https://crm.example.com/acme/user/user-45?from=pql-radar' }],
      },
    ]);
    const [actions] = blocksOf(slackMessage(account.detail, template), 'actions');
    expect(actions!.elements[0]!.url).toBe('https://crm.example.com/acme/account/acct%2Feu%20%26%20%3Cco%3E?from=pql-radar');
    expect(new URL(actions!.elements[0]!.url).pathname).toBe('/acme/account/acct%2Feu%20%26%20%3Cco%3E');
    expect(entityUrl('https://x.example/{id}/{id}', { workspace: 'w', entity: { type: 'user', id: 'a b' } })).toBe('https://x.example/a%20b/a%20b');
    expect(blocksOf(slackMessage(qualified.event.detail), 'actions')).toEqual([]);
  });

  it('formats an account with its members, and never lets lead data become Slack markup', () => {
    const message = slackMessage(account.detail, template);
    const all = texts(message).join('\n');
    const members = texts(message).find((text) => text.startsWith('*Members (3)*'))!;
    expect(members.split('\n').slice(1)).toEqual(account.detail.context.members!.map((member) => `• ${member.tier === null ? member.id : `${member.id} (${member.tier})`}`));
    expect(all).toContain('account acct/eu &amp; &lt;co&gt;');
    expect(all).not.toContain('<co>');

    const hostile = { ...qualified.event.detail, entity: { type: 'user' as const, id: '<!channel> <https://evil.example|click>' }, summary: 'hi <!here>' };
    const hostileMessage = slackMessage(hostile);
    expect(hostileMessage.text).toBe('hi &lt;!here&gt;');
    expect(texts(hostileMessage).join('\n')).not.toMatch(/<[!h]/);
  });

  it('keeps within Slack limits however much there is to say', () => {
    const signals = times(200, (index) => ({ name: `signal_${index}`, value: 'v'.repeat(100), points: index }));
    const huge = { ...account.detail, signals, reasons: times(200, () => 'r'.repeat(500)), entity: { type: 'account' as const, id: 'x'.repeat(3000) } };
    const message = slackMessage(huge, template);
    expect((message.blocks[0] as Extract<SlackBlock, { type: 'header' }>).text.text.length).toBeLessThanOrEqual(150);
    for (const block of blocksOf(message, 'section')) {
      if ('fields' in block) for (const field of block.fields) expect(field.text.length).toBeLessThanOrEqual(2000);
      else expect(block.text.text.length).toBeLessThanOrEqual(3000);
    }
    const listed = texts(message).find((text) => text.startsWith('*Signals*'))!;
    expect(listed).toMatch(/\n… and \d+ more$/);
    expect(listed.split('\n').length).toBeGreaterThan(10);
    // The link would exceed Slack's 3000 characters: the message goes without it rather than not at all.
    expect(blocksOf(message, 'actions')).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('signedLeadEventRequest', () => {
  const secret = generateWebhookSecret();
  const nowMs = Date.parse('2024-06-15T12:00:05.678Z');

  it.each([
    ['qualified', qualified.event],
    ['tier changed', tierChanged.event],
    ['disqualified', disqualified.event],
    ['account', account],
  ])('%s: the envelope as body, signed so that the Standard Webhooks library accepts it', (_name, event) => {
    const { body, headers } = signedLeadEventRequest(event, [secret], nowMs);
    expect(JSON.parse(body)).toEqual(leadEventEnvelope(event));
    expect(JSON.parse(body)).toMatchObject({ Source: leadEventSource, DetailType: event.detailType });
    expect(headers[webhookHeaders.timestamp]).toBe('1718452805');
    expect(headers[webhookHeaders.id]).toBe(event.detail.idempotencyKey);
    expect(verifiedByLibrary(secret, body, headers, nowMs)).toEqual(JSON.parse(body));
    expect(() => verifiedByLibrary(generateWebhookSecret(), body, headers, nowMs)).toThrow();
    expect(() => verifiedByLibrary(secret, body.replace('acme', 'acmf'), headers, nowMs)).toThrow();
    expect(() => verifiedByLibrary(secret, body, headers, nowMs + 301_000)).toThrow();
  });

  it('sends exactly what the local runtime webhook sends: the same body and headers', async () => {
    const sent: { body: string; headers: Record<string, string> }[] = [];
    const sink = new WebhookLeadSink({
      url: 'https://hooks.example.com/pql',
      secret,
      now: () => nowMs,
      fetch: async (_url, init) => {
        sent.push({ body: String(init!.body), headers: init!.headers as Record<string, string> });
        return new Response(null, { status: 204 });
      },
    });
    await sink.publish([qualified.event]);
    expect(sent).toEqual([signedLeadEventRequest(qualified.event, [secret], nowMs)]);
  });
});

// ---------------------------------------------------------------------------------------------------------------

/** The event as EventBridge delivers it to targets. */
const onTheBus = (event: LeadEvent) => ({
  version: '0',
  id: '6f7e1a44-2d1b-4c1e-9b3a-0c5b7d2e8f90',
  'detail-type': event.detailType,
  source: leadEventSource,
  account: '123456789012',
  time: event.detail.evaluatedAt.slice(0, 19) + 'Z',
  region: 'eu-west-1',
  resources: [],
  detail: event.detail,
});

function valueAt(document: unknown, path: string): unknown {
  expect(path).toMatch(/^\$(\.[\w-]+)+$/);
  return path
    .slice(2)
    .split('.')
    .reduce<unknown>((value, key) => (value !== null && typeof value === 'object' && key in value ? (value as Record<string, unknown>)[key] : undefined), document);
}

/**
 * Fills a transformer as EventBridge does: a placeholder outside quotes becomes the value as JSON, one inside a
 * quoted string the bare value. A path missing from the event would drop its variable, so it fails the test.
 */
function fill(transformer: InputTransformer, event: unknown): string {
  const values = new Map(Object.entries(transformer.inputPathsMap).map(([name, path]) => [name, valueAt(event, path)]));
  for (const [name, value] of values) expect(value, `${name} is in the event`).not.toBeUndefined();
  let output = '';
  let inString = false;
  for (let index = 0; index < transformer.inputTemplate.length; index++) {
    const char = transformer.inputTemplate[index]!;
    const placeholder = /^<([\w.-]+)>/.exec(transformer.inputTemplate.slice(index));
    if (placeholder) {
      expect(values.has(placeholder[1]!), `<${placeholder[1]}> has a path`).toBe(true);
      const value = values.get(placeholder[1]!);
      output += inString ? String(value) : JSON.stringify(value);
      index += placeholder[0].length - 1;
      continue;
    }
    if (char === '\\' && inString) {
      output += char + transformer.inputTemplate[++index];
      continue;
    }
    if (char === '"') inString = !inString;
    output += char;
  }
  return output;
}

describe('e-mail text', () => {
  it('is readable plain text: one JSON string per line, each decoded by EventBridge', () => {
    const lines = fill(emailInput, onTheBus(tierChanged.event))
      .split('\n')
      .map((line) => JSON.parse(line) as string);
    const { detail } = tierChanged.event;
    expect(lines).toEqual([
      'Lead Tier Changed: user user-45 (workspace acme)',
      '',
      detail.summary,
      '',
      'Route: sales',
      `Score: ${detail.score.total} (engagement ${detail.score.engagement}, fit ${detail.score.fit})`,
      `Rules version ${detail.rulesetVersion}, evaluated at ${detail.evaluatedAt}`,
      `Idempotency key: ${detail.idempotencyKey}`,
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('handler', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
    vi.resetModules();
  });

  async function load(environment: Record<string, string>, secretValue: string, status = 200) {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
    for (const [name, value] of Object.entries(environment)) vi.stubEnv(name, value);
    const send = vi.spyOn(SecretsManagerClient.prototype, 'send').mockImplementation(async (command) => {
      expect(command).toBeInstanceOf(GetSecretValueCommand);
      return { SecretString: secretValue };
    });
    const fetch = vi.fn(async (_url: string | URL | Request, _init?: RequestInit) => new Response('ok', { status }));
    vi.stubGlobal('fetch', fetch);
    const { handler } = await import('../../functions/notifier/handler');
    return { handler, send, fetch };
  }

  it('posts the Slack message to the URL kept in the secret, reading the secret once', async () => {
    const { handler, send, fetch } = await load(
      { DESTINATION_TYPE: 'slack', SECRET_ARN: 'pql-radar/slack', ENTITY_URL_TEMPLATE: 'https://crm.example.com/{id}' },
      'https://hooks.slack.com/services/T000/B000/XXXX\n',
    );
    await handler(onTheBus(qualified.event), lambdaContext());
    await handler(onTheBus(disqualified.event), lambdaContext());
    expect(send).toHaveBeenCalledTimes(1);
    expect(fetch).toHaveBeenCalledTimes(2);
    const [url, init] = fetch.mock.calls[0]!;
    expect(url).toBe('https://hooks.slack.com/services/T000/B000/XXXX');
    expect(init).toMatchObject({ method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(JSON.parse(String(init!.body))).toEqual(slackMessage(qualified.event.detail, 'https://crm.example.com/{id}'));
  });

  it('posts an envelope signed per Standard Webhooks to the webhook, with every secret of a rotation', async () => {
    const [rotated, webhookSecret] = [generateWebhookSecret(), generateWebhookSecret()];
    const { handler, fetch } = await load(
      { DESTINATION_TYPE: 'webhook', SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pql-AbCdEf', WEBHOOK_URL: 'https://hooks.example.com/pql' },
      `${rotated} ${webhookSecret}`,
    );
    await handler(onTheBus(account), lambdaContext());
    const [url, init] = fetch.mock.calls[0]!;
    expect(url).toBe('https://hooks.example.com/pql');
    const headers = init!.headers as Record<string, string>;
    expect(JSON.parse(String(init!.body))).toEqual(leadEventEnvelope(account));
    // Mid-rotation the secret holds two: a receiver with either one verifies.
    for (const receiverSecret of [rotated, webhookSecret]) expect(verifiedByLibrary(receiverSecret, String(init!.body), headers, Date.now())).toEqual(leadEventEnvelope(account));
  });

  it('throws on a non-2xx answer, so Lambda retries, without naming the secret URL', async () => {
    const { handler } = await load({ DESTINATION_TYPE: 'slack', SECRET_ARN: 'pql-radar/slack' }, 'https://hooks.slack.com/services/T000/B000/XXXX', 404);
    const failure = handler(onTheBus(qualified.event), lambdaContext());
    await expect(failure).rejects.toThrow('slack answered HTTP 404');
    await expect(failure).rejects.not.toThrow(/hooks\.slack\.com/);
  });

  it('logs with the Lambda context: every line names the request and the function', async () => {
    const environment = { DESTINATION_TYPE: 'webhook', SECRET_ARN: 's', WEBHOOK_URL: 'https://hooks.example.com/pql', POWERTOOLS_LOG_LEVEL: 'INFO' };
    const { handler } = await load(environment, generateWebhookSecret());
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    await handler(onTheBus(qualified.event), lambdaContext({ awsRequestId: 'request-1' }));
    const lines = write.mock.calls.map(([chunk]) => JSON.parse(String(chunk)) as Record<string, unknown>);
    expect(lines).toContainEqual(expect.objectContaining({ message: 'lead event delivered', function_request_id: 'request-1', function_name: 'pql-radar-test' }));
  });

  it('refuses an event that is not a lead event, and a configuration that is incomplete', async () => {
    const { handler, fetch } = await load({ DESTINATION_TYPE: 'webhook', SECRET_ARN: 's', WEBHOOK_URL: 'https://hooks.example.com/pql' }, 'x');
    await expect(handler({ 'detail-type': 'Lead Qualified', detail: { workspace: 'acme' } }, lambdaContext())).rejects.toThrow();
    expect(fetch).not.toHaveBeenCalled();
    vi.resetModules();
    await expect(load({ DESTINATION_TYPE: 'webhook', SECRET_ARN: 's', WEBHOOK_URL: 'http://insecure.example.com' }, 'x')).rejects.toThrow(/https/);
  });
});
