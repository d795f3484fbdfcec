import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { staticSecret, webhookDestination } from '../../functions/adapters/destinations';
import { DynamoDbDeliveryLedger } from '../../functions/adapters/dynamodb/delivery-ledger';
import { missingReadScopeWarning } from '../../functions/adapters/hubspot/client';
import { signedLeadEventRequest } from '../../functions/adapters/webhook/delivery';
import type { DeliveryLogEntry } from '../../functions/core/delivery';
import { leadEventEnvelope, leadEventSource, type LeadEvent } from '../../functions/core/lead-event';
import { buildLeadEvent, decide, type LeadState } from '../../functions/core/lead-state';
import { evaluate, mergeRollups, type EntityFacts, type MemberFacts, type UsageEvent } from '../../functions/core/rules/engine';
import { loadRules, type Ruleset } from '../../functions/core/rules/load';
import { generateWebhookSecret, webhookHeaders } from '../../functions/core/webhook-signature';
import { verifiedByLibrary } from '../support/webhooks';
import { entityUrl, slackMessage, type SlackBlock, type SlackMessage } from '../../functions/core/slack-message';
import { emailInput, type InputTransformer } from '../../lib/lead-fanout';
import { freshTable } from '../support/dynamodb';
import { factsFor } from '../support/facts';
import { HttpReceiver } from '../support/http-receiver';
import { lambdaContext } from '../support/lambda-context';
import { startSqsEndpoint, type SqsEndpoint } from '../support/sqs-endpoint';

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
        { type: 'mrkdwn', text: `*Entity*\nuser user-45\nworkspace acme`, verbatim: true },
        { type: 'mrkdwn', text: `*Tier*\n${header.split(': ')[1]}`, verbatim: true },
        { type: 'mrkdwn', text: `*Score*\n${detail.score.total} (engagement ${detail.score.engagement}, fit ${detail.score.fit})`, verbatim: true },
        { type: 'mrkdwn', text: '*Route*\nsales', verbatim: true },
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
    // Nor markup Slack would make of it by itself: a bare @channel or URL in a trait is shown as written (verbatim).
    const markdown = [message, hostileMessage].flatMap((m) => m.blocks.flatMap((block): { type: string }[] => ('fields' in block ? block.fields : 'elements' in block ? block.elements : [block.text]))).filter((text) => text.type === 'mrkdwn');
    expect(markdown.length).toBeGreaterThan(5);
    for (const text of markdown) expect(text).toMatchObject({ verbatim: true });
  });

  it.each([
    ['a Slack member id as a mention, so the owner is notified', 'U024BE7LH', '*Owner*\n<@U024BE7LH>'],
    ['an Enterprise Grid member id as a mention', 'W012A3CDE', '*Owner*\n<@W012A3CDE>'],
    ['an e-mail as text', 'ann@example.com', '*Owner*\nann@example.com'],
    ['anything else as text that cannot become markup', '<!channel> u024be7lh', '*Owner*\n&lt;!channel&gt; u024be7lh'],
  ])('shows the owner: %s', (_name, owner, field) => {
    const [fields] = blocksOf(slackMessage({ ...qualified.event.detail, owner }), 'section').filter((block) => 'fields' in block);
    expect((fields as { fields: { text: string }[] }).fields.at(-1)).toEqual({ type: 'mrkdwn', text: field, verbatim: true });
  });

  it('has no owner field when the lead has none', () => {
    for (const owner of [null, undefined]) expect(texts(slackMessage({ ...qualified.event.detail, owner })).join('\n')).not.toContain('*Owner*');
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

  it('is exactly what webhookDestination sends: the same body and headers', async () => {
    const sent: { url: string; body: string; headers: Record<string, string> }[] = [];
    const destination = webhookDestination('sales-webhook-1', 'https://hooks.example.com/pql', staticSecret(secret), {
      now: () => nowMs,
      fetch: async (url, init) => {
        sent.push({ url: String(url), body: String(init!.body), headers: init!.headers as Record<string, string> });
        return new Response(null, { status: 204 });
      },
    });
    expect(await destination.send(qualified.event)).toMatchObject({ outcome: 'delivered', status: 204 });
    expect(sent).toEqual([{ url: 'https://hooks.example.com/pql', ...signedLeadEventRequest(qualified.event, [secret], nowMs) }]);
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

// ---------------------------------------------------------------------------------------------------------------

/**
 * The notifier Lambda as SQS invokes it, against DynamoDB Local (the delivery log and the delivered keys), a local
 * SQS endpoint (the real SDK client changes visibility and sends to the dead-letter queue over the wire) and a real
 * HTTP receiver as the webhook. Only Secrets Manager is stubbed.
 */
describe('handler', () => {
  const destinationId = 'sales-webhook-1';
  const webhookSecret = generateWebhookSecret();
  const receiver = new HttpReceiver('/hooks/pql');
  let sqs: SqsEndpoint;
  const queueUrl = () => sqs.queueUrl(`pql-radar-${destinationId}.fifo`);
  const deadLetterQueueUrl = () => sqs.queueUrl(`pql-radar-${destinationId}-dlq.fifo`);
  /** An address in any log line or log entry would be personal data where it does not belong. */
  const emailAddress = /[^\s@"'<>]+@[^\s@"'<>]+\.[a-z]{2,}/i;

  beforeAll(async () => {
    sqs = await startSqsEndpoint();
    await receiver.start();
  });
  afterAll(async () => {
    await sqs.close();
    await receiver.stop();
  });
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
    vi.resetModules();
    sqs.reset();
    receiver.reset();
  });

  /** Loads the handler in a fresh module registry with the notifier's environment (and `environment` over it). */
  async function load(environment: Record<string, string | undefined> = {}, secretValue = webhookSecret) {
    const { client, tableName } = await freshTable();
    const settings: Record<string, string | undefined> = {
      POWERTOOLS_METRICS_DISABLED: 'true',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'AKIDLOCAL',
      AWS_SECRET_ACCESS_KEY: 'local-secret',
      AWS_SESSION_TOKEN: undefined,
      AWS_PROFILE: undefined,
      AWS_ENDPOINT_URL_DYNAMODB: inject('dynamoEndpoint'),
      AWS_ENDPOINT_URL_SQS: sqs.url,
      TABLE_NAME: tableName,
      DESTINATION_ID: destinationId,
      DESTINATION_KIND: 'webhook',
      SECRET_ID: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pql-radar/sales-webhook-1-AbCdEf',
      WEBHOOK_URL: receiver.url,
      REQUESTS_PER_SECOND: '50',
      RETRY_HOURS: '1',
      QUEUE_URL: queueUrl(),
      DEAD_LETTER_QUEUE_URL: deadLetterQueueUrl(),
      ...environment,
    };
    for (const [name, value] of Object.entries(settings)) vi.stubEnv(name, value);
    const secretReads = vi.spyOn(SecretsManagerClient.prototype, 'send').mockImplementation(async (command) => {
      expect(command).toBeInstanceOf(GetSecretValueCommand);
      expect((command as GetSecretValueCommand).input).toEqual({ SecretId: settings['SECRET_ID'] });
      return { SecretString: secretValue };
    });
    const { handler } = await import('../../functions/notifier/handler');
    const ledger = new DynamoDbDeliveryLedger(client, tableName, 14);
    const startedAt = Date.now();
    /** The delivery log of this test's table. */
    const log = () => ledger.list({ since: new Date(startedAt - 60_000), until: new Date(Date.now() + 60_000), limit: 100 });
    return { handler, secretReads, log };
  }

  let sequence = 0;
  /** An SQS record as Lambda's event source mapping hands it over, from the destination's FIFO queue. */
  function sqsRecord(body: string, options: { receiveCount?: number; sentAt?: number } = {}): SQSRecord {
    const messageId = randomUUID();
    const sentAt = options.sentAt ?? Date.now() - 1_500;
    sequence++;
    return {
      messageId,
      receiptHandle: `AQEB${sequence}/${messageId}`,
      body,
      attributes: {
        ApproximateReceiveCount: String(options.receiveCount ?? 1),
        SentTimestamp: String(sentAt),
        SenderId: 'AROAEVENTBRIDGE:pql-radar-rule',
        ApproximateFirstReceiveTimestamp: String(sentAt + 500),
        SequenceNumber: String(sequence).padStart(20, '0'),
        MessageGroupId: destinationId,
        MessageDeduplicationId: randomUUID(),
      },
      messageAttributes: {},
      md5OfBody: createHash('md5').update(body).digest('hex'),
      eventSource: 'aws:sqs',
      eventSourceARN: `arn:aws:sqs:eu-west-1:123456789012:pql-radar-${destinationId}.fifo`,
      awsRegion: 'eu-west-1',
    };
  }
  const leadRecord = (event: LeadEvent, options: { receiveCount?: number; sentAt?: number } = {}) => sqsRecord(JSON.stringify(onTheBus(event)), options);
  /** The same message received again: a new receipt handle, one more receive. */
  const receivedAgain = (record: SQSRecord): SQSRecord => ({
    ...record,
    receiptHandle: `${record.receiptHandle}/again`,
    attributes: { ...record.attributes, ApproximateReceiveCount: String(Number(record.attributes.ApproximateReceiveCount) + 1) },
  });
  const batch = (...records: SQSRecord[]): SQSEvent => ({ Records: records });
  const failures = (...records: SQSRecord[]) => ({ batchItemFailures: records.map((record) => ({ itemIdentifier: record.messageId })) });
  const keyOf = (event: LeadEvent) => event.detail.idempotencyKey;
  const postedKeys = () => receiver.received.map((request) => request.headers[webhookHeaders.id]);
  /** The log as [key, outcome, next, attempt], in a stable order (entries of one millisecond sort by key). */
  const summary = (entries: DeliveryLogEntry[]) =>
    entries
      .map((entry) => [entry.idempotencyKey, entry.outcome, entry.next, entry.attempt] as const)
      .sort((a, b) => a.join(' ').localeCompare(b.join(' ')));
  const sorted = <T extends readonly unknown[]>(rows: T[]) => [...rows].sort((a, b) => a.join(' ').localeCompare(b.join(' ')));

  // One lead's history (qualified, then disqualified) and another lead: three transitions, three keys.
  const first = qualified.event;
  const second = disqualified.event;
  const third = account;

  it('delivers a batch in order, logs each lead, and skips a key already delivered', async () => {
    expect(new Set([first, second, third].map(keyOf)).size).toBe(3);
    const { handler, secretReads, log } = await load();
    const records = [leadRecord(first), leadRecord(second), leadRecord(first), leadRecord(third)];
    expect(await handler(batch(...records), lambdaContext())).toEqual({ batchItemFailures: [] });

    // The third record carries the first lead event again (published twice): logged, not posted.
    expect(postedKeys()).toEqual([keyOf(first), keyOf(second), keyOf(third)]);
    receiver.received.forEach((request, index) => {
      const event = [first, second, third][index]!;
      expect(request.method).toBe('POST');
      expect(JSON.parse(request.body)).toEqual(leadEventEnvelope(event));
      expect(verifiedByLibrary(webhookSecret, request.body, request.headers as Record<string, string>, Date.now())).toEqual(leadEventEnvelope(event));
    });
    expect(secretReads).toHaveBeenCalledTimes(1);
    // Done: Lambda deletes them; the queue is not called.
    expect(sqs.operations).toEqual([]);

    // A redelivery (the batch's deletion was lost): logged as a duplicate, not posted again.
    expect(await handler(batch(receivedAgain(records[1]!)), lambdaContext())).toEqual({ batchItemFailures: [] });
    expect(receiver.received).toHaveLength(3);
    expect(secretReads).toHaveBeenCalledTimes(1);

    const entries = await log();
    expect(summary(entries)).toEqual(
      sorted([
        [keyOf(first), 'delivered', 'done', 1],
        [keyOf(second), 'delivered', 'done', 1],
        [keyOf(first), 'duplicate', 'done', 1],
        [keyOf(third), 'delivered', 'done', 1],
        [keyOf(second), 'duplicate', 'done', 1],
      ]),
    );
    const delivered = entries.find((entry) => entry.idempotencyKey === keyOf(third) && entry.outcome === 'delivered')!;
    expect(delivered).toMatchObject({
      destination: destinationId,
      kind: 'webhook',
      detailType: 'Lead Qualified',
      workspace: 'acme',
      entity: { type: 'account', id: 'acct/eu & <co>' },
      status: 200,
      excerpt: '{"ok":true}',
      latencyMs: expect.any(Number),
    });
    expect(Date.parse(delivered.at)).toBeGreaterThan(Date.now() - 60_000);
    expect(JSON.stringify(entries)).not.toMatch(emailAddress);
  });

  it('on a retryable failure, hides the message for the backoff and reports it and every later record failed', async () => {
    const { handler, log } = await load();
    receiver.reply({ status: 503, body: 'upstream unavailable' });
    const records = [leadRecord(first), leadRecord(second), leadRecord(third)];
    expect(await handler(batch(...records), lambdaContext())).toEqual(failures(...records));
    // FIFO: nothing after the failed record was attempted.
    expect(postedKeys()).toEqual([keyOf(first)]);
    // The two behind it are made visible again at once: left in flight for the queue's visibility timeout, they would
    // hold back the whole group, the failed one too, for six minutes rather than its backoff.
    expect(sqs.visibilityChanges).toEqual([
      { queueUrl: queueUrl(), receiptHandle: records[0]!.receiptHandle, visibilityTimeout: expect.any(Number) },
      { queueUrl: queueUrl(), receiptHandle: records[1]!.receiptHandle, visibilityTimeout: 0 },
      { queueUrl: queueUrl(), receiptHandle: records[2]!.receiptHandle, visibilityTimeout: 0 },
    ]);
    // First attempt: full jitter up to the 10 s base, at least a second.
    const { visibilityTimeout } = sqs.visibilityChanges[0]!;
    expect(visibilityTimeout).toBeGreaterThanOrEqual(1);
    expect(visibilityTimeout).toBeLessThanOrEqual(10);
    expect(sqs.sent).toEqual([]);
    expect(await log()).toEqual([expect.objectContaining({ idempotencyKey: keyOf(first), outcome: 'retryable', next: 'retry', status: 503, excerpt: 'upstream unavailable', attempt: 1 })]);

    // The group is received again, in order: now the webhook takes all three.
    sqs.reset();
    expect(await handler(batch(...records.map(receivedAgain)), lambdaContext())).toEqual({ batchItemFailures: [] });
    expect(postedKeys()).toEqual([keyOf(first), keyOf(first), keyOf(second), keyOf(third)]);
    expect(sqs.operations).toEqual([]);
    expect(summary(await log())).toContainEqual([keyOf(first), 'delivered', 'done', 2]);
  });

  it('reports only the failed record and those after it, and backs off longer with each attempt, not with each receive', async () => {
    const { handler, log } = await load();
    receiver.reply({ status: 200 }, { status: 502 });
    // The second was handed over three times before, behind an event that waited, and never tried.
    const records = [leadRecord(first), leadRecord(second, { receiveCount: 4 }), leadRecord(third)];
    expect(await handler(batch(...records), lambdaContext())).toEqual(failures(records[1]!, records[2]!));
    expect(postedKeys()).toEqual([keyOf(first), keyOf(second)]);
    expect(sqs.visibilityChanges).toEqual([
      { queueUrl: queueUrl(), receiptHandle: records[1]!.receiptHandle, visibilityTimeout: expect.any(Number) },
      { queueUrl: queueUrl(), receiptHandle: records[2]!.receiptHandle, visibilityTimeout: 0 },
    ]);
    // Its first attempt: up to the 10 s base, as any first attempt.
    expect(sqs.visibilityChanges[0]!.visibilityTimeout).toBeGreaterThanOrEqual(1);
    expect(sqs.visibilityChanges[0]!.visibilityTimeout).toBeLessThanOrEqual(10);

    // Two more attempts fail: the third waits up to 10 s doubled twice.
    receiver.reply({ status: 502 }, { status: 502 });
    let again = records[1]!;
    for (let attempt = 2; attempt <= 3; attempt++) {
      sqs.reset();
      again = receivedAgain(again);
      expect(await handler(batch(again), lambdaContext())).toEqual(failures(again));
    }
    expect(sqs.visibilityChanges[0]!.visibilityTimeout).toBeGreaterThanOrEqual(1);
    expect(sqs.visibilityChanges[0]!.visibilityTimeout).toBeLessThanOrEqual(40);
    const attempts = (await log()).filter((entry) => entry.idempotencyKey === keyOf(second)).map((entry) => entry.attempt);
    expect(attempts.sort()).toEqual([1, 2, 3]);
  });

  it('waits what Retry-After asks: a 429 with Retry-After: 120 hides the message for 120 s', async () => {
    const { handler, log } = await load();
    receiver.reply({ status: 429, headers: { 'retry-after': '120' }, body: '{"error":"rate limited"}' });
    const record = leadRecord(first);
    expect(await handler(batch(record), lambdaContext())).toEqual(failures(record));
    expect(sqs.visibilityChanges).toEqual([{ queueUrl: queueUrl(), receiptHandle: record.receiptHandle, visibilityTimeout: 120 }]);
    expect(await log()).toEqual([expect.objectContaining({ outcome: 'retryable', next: 'retry', status: 429 })]);
  });

  it('moves a message that still fails after RETRY_HOURS to the dead-letter queue, and goes on with the next', async () => {
    const { handler, log } = await load({ RETRY_HOURS: '1' });
    receiver.reply({ status: 503 });
    const old = leadRecord(first, { sentAt: Date.now() - 61 * 60_000, receiveCount: 30 });
    const next = leadRecord(second);
    expect(await handler(batch(old, next), lambdaContext())).toEqual({ batchItemFailures: [] });
    expect(postedKeys()).toEqual([keyOf(first), keyOf(second)]);
    expect(sqs.visibilityChanges).toEqual([]);
    expect(sqs.sent).toEqual([
      {
        queueUrl: deadLetterQueueUrl(),
        messageId: expect.any(String),
        body: old.body,
        groupId: destinationId,
        deduplicationId: old.messageId,
        // Handed over 30 times while it waited behind others, and tried once.
        attributes: { reason: expect.stringMatching(/^HTTP 503 after 1 attempt\(s\) over 61 min: the retry window has passed$/) },
      },
    ]);
    const entries = await log();
    expect(entries.find((entry) => entry.idempotencyKey === keyOf(first))).toMatchObject({
      outcome: 'retryable',
      next: 'dead-letter',
      status: 503,
      attempt: 1,
      error: sqs.sent[0]!.attributes['reason'],
    });
    expect(entries.find((entry) => entry.idempotencyKey === keyOf(second))).toMatchObject({ outcome: 'delivered', next: 'done' });
  });

  it('dead-letters a 400 at once: a retry would not change it', async () => {
    const { handler, log } = await load();
    receiver.reply({ status: 400, body: '{"error":"unknown field Detail"}' });
    const record = leadRecord(first);
    expect(await handler(batch(record), lambdaContext())).toEqual({ batchItemFailures: [] });
    expect(sqs.visibilityChanges).toEqual([]);
    expect(sqs.sent).toEqual([expect.objectContaining({ queueUrl: deadLetterQueueUrl(), body: record.body, groupId: destinationId, attributes: { reason: expect.stringMatching(/^HTTP 400: /) } })]);
    expect(await log()).toEqual([expect.objectContaining({ outcome: 'permanent', next: 'dead-letter', status: 400, excerpt: '{"error":"unknown field Detail"}', error: expect.stringMatching(/^HTTP 400: /) })]);
  });

  it('dead-letters a message that is not a lead event without posting it, and goes on with the next', async () => {
    const { handler, log } = await load();
    const partial = sqsRecord(JSON.stringify({ 'detail-type': 'Lead Qualified', detail: { workspace: 'acme', context: { traits: { email: 'eve@example.com' } } } }));
    const wrongType = sqsRecord(JSON.stringify({ ...onTheBus(first), 'detail-type': 'Lead Invented' }));
    const notJson = sqsRecord('hello from the console');
    const good = leadRecord(second);
    expect(await handler(batch(partial, wrongType, notJson, good), lambdaContext())).toEqual({ batchItemFailures: [] });
    expect(postedKeys()).toEqual([keyOf(second)]);
    expect(sqs.sent.map((message) => [message.queueUrl, message.body, message.groupId, message.deduplicationId])).toEqual(
      [partial, wrongType, notJson].map((record) => [deadLetterQueueUrl(), record.body, destinationId, record.messageId]),
    );
    for (const message of sqs.sent) {
      expect(message.attributes['reason']).toMatch(/^not a lead event: /);
      expect(message.attributes['reason']).not.toMatch(emailAddress);
    }
    expect(summary(await log())).toEqual([[keyOf(second), 'delivered', 'done', 1]]);
  });

  it('keeps a message in the queue when SQS cannot take the retry or the dead-letter', async () => {
    const { handler } = await load();
    // The dead-letter queue refuses: the message must not be deleted (reported failed, retried later).
    sqs.failNext('SendMessage', 1);
    receiver.reply({ status: 410 });
    const gone = leadRecord(first);
    const after = leadRecord(second);
    expect(await handler(batch(gone, after), lambdaContext())).toEqual(failures(gone, after));
    // The one behind it is released (visible again), still held back by it, in flight for the visibility timeout.
    expect(sqs.operations).toEqual(['SendMessage', 'ChangeMessageVisibilityBatch']);
    expect(sqs.visibilityChanges).toEqual([{ queueUrl: queueUrl(), receiptHandle: after.receiptHandle, visibilityTimeout: 0 }]);
    expect(sqs.sent).toEqual([]);
    expect(postedKeys()).toEqual([keyOf(first)]);

    // Nor when the visibility cannot be changed.
    sqs.reset();
    receiver.reset();
    sqs.failNext('ChangeMessageVisibility', 1);
    receiver.reply({ status: 503 });
    const busy = leadRecord(third);
    expect(await handler(batch(busy), lambdaContext())).toEqual(failures(busy));
    expect(sqs.operations).toEqual(['ChangeMessageVisibility']);

    // Nor when the ones behind a retried one cannot be released: they wait for the visibility timeout instead.
    sqs.reset();
    receiver.reset();
    sqs.failNext('ChangeMessageVisibilityBatch', 1);
    receiver.reply({ status: 503 });
    const [retried, behind] = [leadRecord(first), leadRecord(second)];
    expect(await handler(batch(retried, behind), lambdaContext())).toEqual(failures(retried, behind));
    expect(sqs.operations).toEqual(['ChangeMessageVisibility', 'ChangeMessageVisibilityBatch']);
    expect(sqs.visibilityChanges.map((change) => change.receiptHandle)).toEqual([retried.receiptHandle]);
  });

  it('retries a lead event its delivery ledger cannot be read for with the backoff, and dead-letters it once the window has passed', async () => {
    // A table that is not there: every read of the ledger fails, as it does while DynamoDB is unreachable.
    const { handler } = await load({ TABLE_NAME: `pql-radar-missing-${randomUUID()}` });
    const [head, behind] = [leadRecord(first, { receiveCount: 3 }), leadRecord(second)];
    expect(await handler(batch(head, behind), lambdaContext())).toEqual(failures(head, behind));
    expect(postedKeys()).toEqual([]);
    // Hidden for a third attempt's backoff (up to 10 s doubled twice), not left for the queue's visibility timeout.
    expect(sqs.visibilityChanges).toEqual([
      { queueUrl: queueUrl(), receiptHandle: head.receiptHandle, visibilityTimeout: expect.any(Number) },
      { queueUrl: queueUrl(), receiptHandle: behind.receiptHandle, visibilityTimeout: 0 },
    ]);
    expect(sqs.visibilityChanges[0]!.visibilityTimeout).toBeGreaterThanOrEqual(1);
    expect(sqs.visibilityChanges[0]!.visibilityTimeout).toBeLessThanOrEqual(40);
    expect(sqs.sent).toEqual([]);

    // Past RETRY_HOURS, it goes to the dead-letter queue with the reason, and the one behind it is tried next.
    sqs.reset();
    const old = leadRecord(first, { sentAt: Date.now() - 61 * 60_000, receiveCount: 30 });
    const next = leadRecord(second);
    expect(await handler(batch(old, next), lambdaContext())).toEqual(failures(next));
    expect(sqs.sent).toEqual([
      expect.objectContaining({
        queueUrl: deadLetterQueueUrl(),
        body: old.body,
        deduplicationId: old.messageId,
        attributes: { reason: expect.stringMatching(/^the delivery ledger could not be read or written \(ResourceNotFoundException\) after 30 attempt\(s\) over 61 min: the retry window has passed$/) },
      }),
    ]);
    expect(sqs.visibilityChanges.map((change) => change.receiptHandle)).toEqual([next.receiptHandle]);
    expect(postedKeys()).toEqual([]);
  });

  it("reports how long the event it left waiting has waited, by destination, and 0 once it delivers: the delivery delayed alarm's metric", async () => {
    const { handler } = await load({ POWERTOOLS_METRICS_DISABLED: 'false' });
    const written: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (written.push(String(chunk)), true));
    /** The LeadDeliveryWaitSeconds records written since the last call, as [dimensions, value]. */
    const waits = () =>
      written
        .splice(0)
        .join('')
        .split('\n')
        .filter((line) => line.includes('"LeadDeliveryWaitSeconds"'))
        .map((line) => {
          const record = JSON.parse(line) as { _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][] }[] }; LeadDeliveryWaitSeconds: number; [name: string]: unknown };
          const [directive] = record._aws.CloudWatchMetrics;
          const dimensions = Object.fromEntries(directive!.Dimensions[0]!.map((name) => [name, record[name]]));
          return [directive!.Namespace, dimensions, record.LeadDeliveryWaitSeconds] as const;
        });
    const byDestination = { service: 'pql-radar', destination: destinationId };

    // The destination is down: the head has waited 40 minutes, the event behind it less; the head's age at its next
    // attempt is reported, Retry-After's 10 minutes from now.
    receiver.reply({ status: 503, headers: { 'retry-after': '600' } });
    const head = leadRecord(first, { sentAt: Date.now() - 40 * 60_000, receiveCount: 5 });
    const behind = leadRecord(second, { sentAt: Date.now() - 60_000, receiveCount: 5 });
    expect(await handler(batch(head, behind), lambdaContext())).toEqual(failures(head, behind));
    const reported = waits();
    expect(reported).toHaveLength(1);
    const [[namespace, dimensions, waited]] = reported as [readonly [string, Record<string, unknown>, number]];
    expect([namespace, dimensions]).toEqual(['pql-radar', byDestination]);
    expect(waited).toBeGreaterThanOrEqual(50 * 60);
    expect(waited).toBeLessThan(51 * 60);

    // It is back: both are delivered, and nothing waits.
    expect(await handler(batch(receivedAgain(head), receivedAgain(behind)), lambdaContext())).toEqual({ batchItemFailures: [] });
    expect(waits()).toEqual([['pql-radar', byDestination, 0]]);

    // A permanent refusal goes to the dead-letter queue (its own alarm): nothing waits either.
    receiver.reply({ status: 422 });
    expect(await handler(batch(leadRecord(third, { sentAt: Date.now() - 50 * 60_000 })), lambdaContext())).toEqual({ batchItemFailures: [] });
    expect(waits()).toEqual([['pql-radar', byDestination, 0]]);
  });

  it('reads the secret once, and again after a 401, so a rotated secret needs no deploy', async () => {
    const rotated = generateWebhookSecret();
    const { handler, secretReads } = await load({}, webhookSecret);
    receiver.reply({ status: 401, body: '{"error":"bad signature"}' });
    const record = leadRecord(first);
    expect(await handler(batch(record), lambdaContext())).toEqual(failures(record));
    expect(secretReads).toHaveBeenCalledTimes(1);
    // The secret was rotated meanwhile: the next attempt reads and signs with the new one.
    secretReads.mockImplementation(async () => ({ SecretString: `${webhookSecret} ${rotated}` }));
    expect(await handler(batch(receivedAgain(record)), lambdaContext())).toEqual({ batchItemFailures: [] });
    expect(secretReads).toHaveBeenCalledTimes(2);
    const last = receiver.received.at(-1)!;
    expect(verifiedByLibrary(rotated, last.body, last.headers as Record<string, string>, Date.now())).toEqual(leadEventEnvelope(first));
  });

  it('logs with the Lambda context, and never an e-mail address', async () => {
    const { handler, log } = await load({ POWERTOOLS_LOG_LEVEL: 'INFO' });
    const written: string[] = [];
    const capture = (chunk: unknown) => (written.push(String(chunk)), true);
    vi.spyOn(process.stdout, 'write').mockImplementation(capture);
    vi.spyOn(process.stderr, 'write').mockImplementation(capture);
    receiver.reply(
      { status: 503, body: '{"error":"ada@example.com is locked","owner":"sam@example.com"}' },
      { status: 422, body: 'contact ada@example.com rejected' },
    );
    // The owner is personal data too: it goes to the destination, never to the logs.
    const retried = leadRecord({ ...first, detail: { ...first.detail, owner: 'owner@example.com' } });
    const refused = leadRecord(second);
    const notALead = sqsRecord(JSON.stringify({ 'detail-type': 'Lead Qualified', detail: { email: 'eve@example.com' } }));
    await handler(batch(retried), lambdaContext({ awsRequestId: 'request-1' }));
    await handler(batch(refused, notALead), lambdaContext({ awsRequestId: 'request-2' }));
    vi.mocked(process.stdout.write).mockRestore();
    vi.mocked(process.stderr.write).mockRestore();

    const lines = written.flatMap((chunk) => chunk.split('\n')).filter((line) => line.trim() !== '');
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(parsed).toContainEqual(
      expect.objectContaining({
        message: 'lead event delivery retried later',
        function_request_id: 'request-1',
        function_name: 'pql-radar-test',
        destination: destinationId,
        idempotencyKey: keyOf(first),
        receives: 1,
        delaySeconds: expect.any(Number),
      }),
    );
    expect(parsed).toContainEqual(
      expect.objectContaining({ message: 'lead event moved to the dead-letter queue', function_request_id: 'request-2', idempotencyKey: keyOf(second), reason: expect.stringMatching(/^HTTP 422/) }),
    );
    expect(parsed).toContainEqual(expect.objectContaining({ message: 'lead event moved to the dead-letter queue', function_request_id: 'request-2', reason: expect.stringMatching(/^not a lead event/) }));
    for (const line of lines) expect(line).not.toMatch(emailAddress);
    // The answers held addresses: the delivery log keeps them masked.
    const entries = await log();
    expect(entries.map((entry) => entry.excerpt).sort()).toEqual(['contact [email] rejected', '{"error":"[email] is locked","owner":"[email]"}']);
    expect(JSON.stringify(entries)).not.toMatch(emailAddress);
  });

  it('posts the Slack message to the URL kept in the secret', async () => {
    const slackUrl = 'https://hooks.slack.com/services/T0001/B0002/XXXXSECRETXXXX';
    // Slack is https: the global fetch the handler uses reaches the local receiver instead, everything else as sent.
    const realFetch = globalThis.fetch;
    const urls: string[] = [];
    vi.stubGlobal('fetch', (url: string | URL | Request, init?: RequestInit) => {
      urls.push(String(url));
      return realFetch(String(url) === slackUrl ? receiver.url : url, init);
    });
    const { handler, log } = await load(
      { DESTINATION_ID: 'sales-slack-1', DESTINATION_KIND: 'slack', WEBHOOK_URL: undefined, ENTITY_URL_TEMPLATE: 'https://crm.example.com/{type}/{id}' },
      `${slackUrl}\n`,
    );
    receiver.reply({ status: 200, body: 'ok' });
    expect(await handler(batch(leadRecord(first)), lambdaContext())).toEqual({ batchItemFailures: [] });
    expect(urls).toEqual([slackUrl]);
    expect(JSON.parse(receiver.received[0]!.body)).toEqual(slackMessage(first.detail, 'https://crm.example.com/{type}/{id}'));
    expect(await log()).toEqual([expect.objectContaining({ destination: 'sales-slack-1', kind: 'slack', outcome: 'delivered', excerpt: 'ok' })]);
  });

  it('delivers to HubSpot with a token made before the companies read scope, naming companies as before, and warns of it once per container', async () => {
    // HubSpot is https: the global fetch the handler uses reaches the local receiver instead, path and body as sent.
    const realFetch = globalThis.fetch;
    vi.stubGlobal('fetch', (url: string | URL | Request, init?: RequestInit) => realFetch(String(url).replace('https://api.hubapi.com', receiver.origin), init));
    const { handler, log } = await load({ DESTINATION_ID: 'crm-hubspot-1', DESTINATION_KIND: 'hubspot', WEBHOOK_URL: undefined, POWERTOOLS_LOG_LEVEL: 'INFO' }, 'pat-na1-00000000-test-token');
    const written: string[] = [];
    const capture = (chunk: unknown) => (written.push(String(chunk)), true);
    vi.spyOn(process.stdout, 'write').mockImplementation(capture);
    vi.spyOn(process.stderr, 'write').mockImplementation(capture);
    const refused = JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/hubspot/company-read-missing-scope.json'), 'utf8')).response;
    const readRefused = { status: refused.status, body: JSON.stringify(refused.body) };
    const upserted = { status: 200, body: '{"status":"COMPLETE","results":[{"id":"20391844502","properties":{},"new":true}]}' };
    receiver.reply(readRefused, upserted, readRefused, upserted);
    const named = (id: string): LeadEvent => {
      const { detailType, detail } = teamAccount(id);
      return { detailType, detail: { ...detail, context: { ...detail.context, traits: { ...detail.context.traits, company: 'Acme Analytics' } } } };
    };
    // Two invocations of one container: two account deliveries, each of which finds the scope missing.
    expect(await handler(batch(leadRecord(named('acct-1'))), lambdaContext())).toEqual({ batchItemFailures: [] });
    expect(await handler(batch(leadRecord(named('acct-2'))), lambdaContext())).toEqual({ batchItemFailures: [] });
    vi.mocked(process.stdout.write).mockRestore();
    vi.mocked(process.stderr.write).mockRestore();

    const upserts = receiver.received.filter((request) => request.path === '/crm/v3/objects/companies/batch/upsert');
    expect(receiver.received).toHaveLength(4);
    expect(upserts.map((request) => JSON.parse(request.body).inputs[0].properties.name)).toEqual(['Acme Analytics', 'Acme Analytics']);
    expect((await log()).map((entry) => [entry.entity.id, entry.outcome, entry.warning]).sort()).toEqual([
      ['acct-1', 'delivered', missingReadScopeWarning],
      ['acct-2', 'delivered', missingReadScopeWarning],
    ]);
    const lines = written.flatMap((chunk) => chunk.split('\n')).filter((line) => line.trim() !== '');
    const warnings = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['level'] === 'WARN');
    expect(warnings).toEqual([expect.objectContaining({ message: missingReadScopeWarning, destination: 'crm-hubspot-1' })]);
    // The company's name is the account's, and goes to HubSpot only.
    for (const line of lines) expect(line).not.toContain('Acme');
  });

  it('refuses a configuration that is incomplete', async () => {
    await expect(load({ WEBHOOK_URL: undefined })).rejects.toThrow(/WEBHOOK_URL is required/);
    vi.resetModules();
    await expect(load({ QUEUE_URL: undefined })).rejects.toThrow(/QUEUE_URL/);
    vi.resetModules();
    await expect(load({ DESTINATION_KIND: 'email' })).rejects.toThrow(/DESTINATION_KIND/);
    vi.resetModules();
    await expect(load({ REQUESTS_PER_SECOND: '0' })).rejects.toThrow(/REQUESTS_PER_SECOND/);
  });
});
