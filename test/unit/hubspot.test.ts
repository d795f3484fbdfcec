import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hubspotDestination, staticSecret } from '../../functions/adapters/destinations';
import { DynamoDbDeliveryLedger } from '../../functions/adapters/dynamodb/delivery-ledger';
import { DynamoDbDestinationRegistry } from '../../functions/adapters/dynamodb/destination-registry';
import { missingReadScopeWarning, syncLeadToHubspot, type HubspotSyncOptions } from '../../functions/adapters/hubspot/client';
import { defaultCompanyIdProperty, hubspotProperties, hubspotSync, hubspotUpsertBody, maxHubspotStringLength } from '../../functions/core/crm-properties';
import { deliverLeadEvent, testLeadEvent, type AttemptResult } from '../../functions/core/delivery';
import type { LeadEvent } from '../../functions/core/lead-event';
import { cliWithEnvironment } from '../support/cli';
import { freshTable } from '../support/dynamodb';
import { startEventBridgeEndpoint } from '../support/eventbridge-endpoint';
import { FakeCompanies, fixture, type Answer, type Fixture, type Received } from '../support/hubspot';
import { sampleLeadEvent } from '../support/lead-events';

const token = 'pat-na1-00000000-test-token';
const emailPattern = /[^\s@"'\\]+@[^\s@"'\\]+/;

/**
 * A stand-in for api.hubapi.com: answers each request as the test chose (recorded fixtures, one per request, or a
 * FakeCompanies), and keeps what it received.
 */
let server: Server;
let baseUrl: string;
let respond: (request: Received) => Answer;
let received: Received[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const one = { method: request.method ?? '', path: request.url ?? '', headers: request.headers, body: text === '' ? null : JSON.parse(text) };
      received.push(one);
      const answer = respond(one);
      if (answer === undefined) return;
      response.writeHead(answer.status, answer.headers);
      response.end(answer.body === null ? '' : JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** Syncs `event` against the stand-in, as the destination does, with no request received before. */
function sync(event: LeadEvent, options: Partial<HubspotSyncOptions> = {}): Promise<AttemptResult> {
  received = [];
  return syncLeadToHubspot(event, { token, companyIdProperty: defaultCompanyIdProperty, baseUrl, ...options });
}

/**
 * Syncs `event` against the stand-in answering its requests with the fixtures `names`, in order, and checks it sent
 * exactly their requests (method, path and JSON body).
 */
async function replay(names: string[], event: LeadEvent): Promise<{ result: AttemptResult; sent: Received[]; recorded: Fixture[] }> {
  const recorded = names.map(fixture);
  const answers = recorded.map((exchange) => exchange.response);
  respond = () => answers.shift();
  const result = await sync(event);
  expect(received.map(({ method, path, body }) => ({ method, path, body }))).toEqual(recorded.map((exchange) => exchange.request));
  return { result, sent: received, recorded };
}

function expectNoEmail(result: AttemptResult) {
  for (const value of Object.values(result)) expect(String(value)).not.toMatch(emailPattern);
}

// The transitions of one lead (user u-42, ada@acme.example unless said), and one account.
const qualified = sampleLeadEvent();
const otherUserQualified = sampleLeadEvent({
  entity: { type: 'user', id: 'u-7' },
  evaluatedAt: '2024-05-02T09:30:00.000Z',
  context: { traits: { name: 'Grace Hopper', email: '  Grace.Hopper@Navy.example ', company: 'Navy Labs' } },
});
const downgraded = sampleLeadEvent({
  previousTier: 'PQL-A',
  tier: 'PQL-B',
  route: 'nurture',
  evaluatedAt: '2024-05-08T12:00:00.000Z',
  score: { total: 55, engagement: 40, fit: 15 },
  summary: 'user u-42: PQL-A -> PQL-B, score 55; activated=1, invited_teammates=1, company_size=51-200',
});
const disqualified = sampleLeadEvent({
  previousTier: 'PQL-B',
  tier: null,
  route: 'nurture',
  evaluatedAt: '2024-05-20T12:00:00.000Z',
  score: { total: 20, engagement: 5, fit: 15 },
  summary: 'user u-42: PQL-B -> none, score 20; company_size=51-200',
});
const converted = sampleLeadEvent({
  detailType: 'Lead Converted',
  previousTier: 'PQL-A',
  tier: null,
  evaluatedAt: '2024-05-09T08:00:00.000Z',
  summary: 'user u-42: converted from PQL-A after 7 days, score 85; activated=1, invited_teammates=3',
  conversion: {
    convertedAt: '2024-05-09T07:58:41.000Z',
    tier: 'PQL-A',
    qualifiedAt: '2024-05-01T12:00:00.000Z',
    qualifiedTier: 'PQL-A',
    qualifiedOn: ['activated', 'invited_teammates'],
    daysSinceQualification: 7,
  },
});
const accountQualified = sampleLeadEvent({ entity: { type: 'account', id: 'acct-9' }, tier: 'team-pql' });
const accountUpgraded = sampleLeadEvent({ entity: { type: 'account', id: 'acct-9' }, previousTier: 'team-pql', tier: 'enterprise-pql', evaluatedAt: '2024-05-10T12:00:00.000Z' });

describe('syncLeadToHubspot against recorded HubSpot exchanges', () => {
  it.each([
    ['create a contact', ['contact-create'], qualified, 'contact 75125614921 created'],
    ['update an existing contact', ['contact-update'], otherUserQualified, 'contact 68811002731 updated'],
    ['downgrade PQL-A -> PQL-B', ['contact-downgrade'], downgraded, 'contact 75125614921 updated'],
    ['disqualify', ['contact-disqualify'], disqualified, 'contact 75125614921 updated'],
    ['convert', ['contact-converted'], converted, 'contact 75125614921 updated'],
    ['create a company, named as the read found none', ['company-read-missing', 'company-create'], accountQualified, 'company 20391844502 created'],
    ['update a company, keeping the name the read found', ['company-read-named', 'company-update-name-kept'], accountUpgraded, 'company 20391844502 updated'],
  ])('%s: sends the recorded requests and is delivered', async (_name, names, event, excerpt) => {
    const { result, sent } = await replay(names, event);
    for (const request of sent) {
      expect(request.headers.authorization).toBe(`Bearer ${token}`);
      expect(request.headers['content-type']).toBe('application/json');
    }
    expect(result).toEqual({ outcome: 'delivered', status: 200, excerpt, latencyMs: expect.any(Number) });
    expectNoEmail(result);
  });

  it('a revoked token (401) is retryable, so a rotated token fixes it without a deploy', async () => {
    const { result } = await replay(['error-401-invalid-token'], qualified);
    expect(result).toMatchObject({ outcome: 'retryable', status: 401 });
    expect(result.excerpt).toMatch(/^\{"status":"error","message":"Authentication credentials not found/);
    expect(result).not.toHaveProperty('retryAfterMs');
    expectNoEmail(result);
  });

  it('a rate limit (429) is retryable after the Retry-After it carries', async () => {
    const { result } = await replay(['error-429-rate-limited'], qualified);
    expect(result).toMatchObject({ outcome: 'retryable', status: 429, retryAfterMs: 10_000 });
    expect(result.excerpt).toContain('ten_secondly_rolling');
    expectNoEmail(result);
  });

  it('a rate limit (429) without Retry-After, as HubSpot documents it, waits at least its ten-second window', async () => {
    const { result } = await replay(['error-429-no-retry-after'], qualified);
    expect(result).toMatchObject({ outcome: 'retryable', status: 429, retryAfterMs: 10_000 });
  });

  it('a property that does not exist (400) is permanent', async () => {
    const { result } = await replay(['error-400-property-missing'], qualified);
    expect(result).toMatchObject({ outcome: 'permanent', status: 400 });
    expect(result.excerpt).toContain('Property values were not valid');
    expectNoEmail(result);
  });

  it('masks the e-mail address HubSpot quotes in an error', async () => {
    const invalid = sampleLeadEvent({ context: { traits: { email: 'ada@acme..example' } } });
    const { result, recorded } = await replay(['error-400-invalid-email'], invalid);
    expect(JSON.stringify(recorded[0]!.response.body)).toContain('ada@acme..example');
    expect(result).toMatchObject({ outcome: 'permanent', status: 400 });
    expect(result.excerpt).toContain('[email]');
    expectNoEmail(result);
  });

  it('takes a 2xx whose answer reports its input failed (207 Multi-Status) for the failure it is, not a delivery', async () => {
    const invalid = sampleLeadEvent({ context: { traits: { email: 'ada@acme' } } });
    const { result } = await replay(['error-207-invalid-email'], invalid);
    expect(result).toMatchObject({ outcome: 'permanent', status: 207 });
    expect(result.excerpt).toMatch(/^VALIDATION_ERROR: Property values were not valid: .*\[email\] is invalid/);
    expectNoEmail(result);
  });
});

describe('a company name, which sales may correct in HubSpot', () => {
  it('is set when pql-radar creates the company, and a name set in HubSpot afterwards survives the next transition', async () => {
    const hubspot = new FakeCompanies();
    respond = hubspot.respond;
    expect(await sync(accountQualified)).toMatchObject({ outcome: 'delivered', excerpt: 'company 20391844502 created' });
    expect(hubspot.records.get('acct-9')?.properties).toMatchObject({ name: 'Acme Analytics', pql_tier: 'team-pql' });

    hubspot.records.get('acct-9')!.properties.name = 'Acme Analytics GmbH';
    expect(await sync(accountUpgraded)).toMatchObject({ outcome: 'delivered', excerpt: 'company 20391844502 updated' });
    expect(hubspot.records.get('acct-9')?.properties).toMatchObject({ name: 'Acme Analytics GmbH', pql_tier: 'enterprise-pql' });
  });

  it('is set on a company HubSpot holds without one', async () => {
    const hubspot = new FakeCompanies();
    respond = hubspot.respond;
    hubspot.add('acct-9', { name: '' });
    expect(await sync(accountUpgraded)).toMatchObject({ outcome: 'delivered', excerpt: 'company 20391844502 updated' });
    expect(hubspot.records.get('acct-9')?.properties).toMatchObject({ name: 'Acme Analytics', pql_tier: 'enterprise-pql' });
  });

  it('is not read when the event has no company trait: the upsert alone, naming nothing', async () => {
    const hubspot = new FakeCompanies();
    respond = hubspot.respond;
    const unnamed = sampleLeadEvent({ entity: { type: 'account', id: 'acct-9' }, tier: 'team-pql', context: { traits: {} } });
    expect(await sync(unnamed)).toMatchObject({ outcome: 'delivered', excerpt: 'company 20391844502 created' });
    expect(received.map(({ path }) => path)).toEqual(['/crm/v3/objects/companies/batch/upsert']);
    expect(hubspot.records.get('acct-9')?.properties).not.toHaveProperty('name');
  });

  it('a failed read fails the attempt before anything is written, so the retry reads again', async () => {
    respond = () => fixture('error-429-no-retry-after').response;
    expect(await sync(accountQualified)).toMatchObject({ outcome: 'retryable', status: 429, retryAfterMs: 10_000 });
    expect(received.map(({ path }) => path)).toEqual(['/crm/v3/objects/companies/batch/read']);
  });

  it('a read whose answer reports an error other than a missing company fails the attempt as the error says', async () => {
    const refused = { status: 'COMPLETE', results: [], numErrors: 1, errors: [{ status: 'error', category: 'VALIDATION_ERROR', message: 'Unable to perform read by non-unique property' }] };
    respond = () => ({ status: 207, headers: { 'content-type': 'application/json' }, body: refused });
    expect(await sync(accountQualified)).toMatchObject({ outcome: 'permanent', status: 207, excerpt: 'VALIDATION_ERROR: Unable to perform read by non-unique property' });
    expect(received).toHaveLength(1);
  });

  it('the upsert after a read waits for the destination\'s pace; a contact, with no read, does not', async () => {
    const hubspot = new FakeCompanies();
    respond = hubspot.respond;
    const paced: number[] = [];
    await sync(accountQualified, { pace: async () => void paced.push(received.length) });
    expect(paced).toEqual([1]);
    respond = () => fixture('contact-create').response;
    await sync(qualified, { pace: async () => void paced.push(received.length) });
    expect(paced).toEqual([1]);
  });
});

describe('a token without the companies read scope, made before pql-radar read company names', () => {
  it('still delivers: the upsert names the company from the trait, as before the read, with a warning of what that costs', async () => {
    // company-create's upsert carries the name "Acme Analytics": replay checks it was sent so.
    const { result } = await replay(['company-read-missing-scope', 'company-create'], accountQualified);
    expect(result).toEqual({ outcome: 'delivered', status: 200, excerpt: 'company 20391844502 created', warning: missingReadScopeWarning, latencyMs: expect.any(Number) });
    expect(result.warning).toMatch(/lacks the crm\.objects\.companies\.read scope: .*writes that trait over the company name/);
    expect(result.warning).not.toContain('Acme');
  });

  it('overwrites a name set in HubSpot at each transition, as before, and warns once for two deliveries', async () => {
    const hubspot = new FakeCompanies();
    hubspot.readScope = false;
    respond = hubspot.respond;
    hubspot.add('acct-9', { name: 'Acme Analytics GmbH' });
    const warnings: string[] = [];
    const destination = hubspotDestination('crm-hubspot-1', staticSecret(token), defaultCompanyIdProperty, { baseUrl, warn: (warning) => warnings.push(warning) });
    expect(await destination.send(accountQualified)).toMatchObject({ outcome: 'delivered', warning: missingReadScopeWarning });
    expect(await destination.send(accountUpgraded)).toMatchObject({ outcome: 'delivered', warning: missingReadScopeWarning });
    expect(hubspot.records.get('acct-9')?.properties).toMatchObject({ name: 'Acme Analytics', pql_tier: 'enterprise-pql' });
    expect(warnings).toEqual([missingReadScopeWarning]);
  });

  it('another 403 on the read fails the attempt as any refusal: retried, nothing written, no warning of a scope', async () => {
    // Not a recorded answer: any 403 whose category is not MISSING_SCOPES.
    const forbidden = { status: 'error', message: 'Forbidden', correlationId: '0b6c2a4e-3f8d-4a1b-9c7e-5d2f8a1b3c4d' };
    respond = () => ({ status: 403, headers: { 'content-type': 'application/json;charset=utf-8' }, body: forbidden });
    const result = await sync(accountQualified);
    expect(result).toMatchObject({ outcome: 'retryable', status: 403 });
    expect(result).not.toHaveProperty('warning');
    expect(received.map(({ path }) => path)).toEqual(['/crm/v3/objects/companies/batch/read']);
  });
});

describe('a test event', () => {
  const test = testLeadEvent('sales', 'acme', new Date('2024-05-01T12:00:00.000Z'), 'k1');

  it('writes nothing: it reads the pql_tier property, which proves the token and the properties, then a company, for the read scope', async () => {
    const { result, sent } = await replay(['property-check-200', 'property-check-company-read'], test);
    expect(sent[0]!.headers.authorization).toBe(`Bearer ${token}`);
    expect(result).toEqual({ outcome: 'delivered', status: 200, excerpt: 'the contact property pql_tier exists', latencyMs: expect.any(Number) });
  });

  it('passes with a warning, not a failure, when the token lacks the companies read scope', async () => {
    respond = (request) => fixture(request.method === 'GET' ? 'property-check-200' : 'company-read-missing-scope').response;
    expect(await sync(test)).toEqual({ outcome: 'delivered', status: 200, excerpt: 'the contact property pql_tier exists', warning: missingReadScopeWarning, latencyMs: expect.any(Number) });
  });

  it('takes no other answer to the company read for a failure: a deployment without account rules needs no company id property', async () => {
    const refused = { status: 'error', message: 'Unable to perform read by non-unique property', category: 'VALIDATION_ERROR' };
    respond = (request) => (request.method === 'GET' ? fixture('property-check-200').response : { status: 400, headers: { 'content-type': 'application/json' }, body: refused });
    expect(await sync(test)).toEqual({ outcome: 'delivered', status: 200, excerpt: 'the contact property pql_tier exists', latencyMs: expect.any(Number) });
    expect(received).toHaveLength(2);
  });

  it('says to create the properties when pql_tier does not exist (404, permanent)', async () => {
    const { result } = await replay(['property-check-404'], test);
    expect(result).toMatchObject({
      outcome: 'permanent',
      status: 404,
      error: 'the HubSpot property pql_tier does not exist: create the pql_* properties first',
    });
  });

  it('a bad token on the check (401) is retryable like on an upsert', async () => {
    respond = () => fixture('error-401-invalid-token').response;
    const result = await sync(test);
    expect(received.map(({ method, path }) => `${method} ${path}`)).toEqual(['GET /crm/v3/properties/contacts/pql_tier']);
    expect(result).toMatchObject({ outcome: 'retryable', status: 401 });
  });
});

describe('pql-radar destinations test, of a deployed HubSpot destination', () => {
  it('passes, saying as a warning what a token without the companies read scope costs', async () => {
    const { client, tableName } = await freshTable();
    await new DynamoDbDestinationRegistry(client, tableName).add([{ id: 'crm-hubspot-1', kind: 'hubspot', route: '*', transport: 'sqs', eventBusName: 'pql-radar-leads' }]);
    const bus = await startEventBridgeEndpoint();
    respond = (request) => fixture(request.method === 'GET' ? 'property-check-200' : 'company-read-missing-scope').response;
    // The deployed path, in short: the notifier delivers what the bus took, and logs the attempt where the CLI reads it.
    const destination = hubspotDestination('crm-hubspot-1', staticSecret(token), defaultCompanyIdProperty, { baseUrl });
    const ledger = new DynamoDbDeliveryLedger(client, tableName, 14);
    const notifier = setInterval(() => {
      for (const { detailType, detail } of bus.accepted.splice(0)) {
        void deliverLeadEvent({ detailType, detail } as LeadEvent, { destination, ledger }, { receives: 1, queuedAt: new Date(), now: new Date() });
      }
    }, 50);
    try {
      const aws = { AWS_ENDPOINT_URL_EVENTBRIDGE: bus.url, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' };
      const run = await cliWithEnvironment({ ...process.env, ...aws }, '--endpoint', inject('dynamoEndpoint'), '--table', tableName, 'destinations', 'test', '*', '--wait', '20');
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/crm-hubspot-1 {2}delivered .* TEST {2}"the contact property pql_tier exists" {2}warning: the HubSpot token lacks the crm\.objects\.companies\.read scope: /);
      expect(run.stdout).toContain(missingReadScopeWarning);
      expect(run.stdout).not.toContain('not delivered');
    } finally {
      clearInterval(notifier);
      await bus.close();
    }
  });
});

describe('syncLeadToHubspot without an answer', () => {
  it('a refused connection is retryable, with the error code', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const result = await sync(qualified, { baseUrl: `http://127.0.0.1:${port}` });
    expect(result).toEqual({ outcome: 'retryable', error: 'fetch failed (ECONNREFUSED)', latencyMs: expect.any(Number) });
  });

  it('a timeout is retryable, and measured with the clock given', async () => {
    respond = () => undefined;
    const clock = [1_000, 1_250];
    const result = await sync(qualified, { timeoutMs: 100, now: () => clock.shift() ?? 9_999 });
    expect(received).toHaveLength(1);
    expect(result).toEqual({ outcome: 'retryable', error: 'TimeoutError: The operation was aborted due to timeout', latencyMs: 250 });
  });

  it.each([
    ['a user without an email trait', sampleLeadEvent({ context: { traits: { name: 'Ada Lovelace' } } }), 'the user has no email trait to match a HubSpot contact by'],
    ['a visitor', sampleLeadEvent({ entity: { type: 'visitor', id: 'anon-3' } }), 'a visitor is anonymous: there is no HubSpot record to match it by'],
  ])('%s is skipped without a request', async (_name, event, error) => {
    const result = await sync(event);
    expect(result).toEqual({ outcome: 'skipped', error, latencyMs: 0 });
    expect(received).toEqual([]);
  });
});

describe('hubspotSync', () => {
  /** The upsert input of a record HubSpot does not hold yet, failing the test on a skip. */
  function inputOf(event: LeadEvent, companyIdProperty = defaultCompanyIdProperty) {
    const sync = hubspotSync(event, companyIdProperty);
    if ('skip' in sync) throw new Error(`skipped: ${sync.skip}`);
    return hubspotUpsertBody(sync, {}).inputs[0];
  }

  it.each([
    ['no email trait', sampleLeadEvent({ context: { traits: { company: 'Acme Analytics' } } }), 'the user has no email trait to match a HubSpot contact by'],
    ['a blank email trait', sampleLeadEvent({ context: { traits: { email: '   ' } } }), 'the user has no email trait to match a HubSpot contact by'],
    ['a visitor, even with an email trait', sampleLeadEvent({ entity: { type: 'visitor', id: 'anon-3' } }), 'a visitor is anonymous: there is no HubSpot record to match it by'],
    ['a test event', testLeadEvent('sales', 'acme', new Date('2024-05-01T12:00:00.000Z'), 'k1'), 'a test event is not written to HubSpot'],
  ])('skips %s', (_name, event, skip) => {
    expect(hubspotSync(event, defaultCompanyIdProperty)).toEqual({ skip });
  });

  it('matches a company by the configured unique property, and has it named only when the company trait is present', () => {
    const account = (traits: LeadEvent['detail']['context']['traits']) =>
      sampleLeadEvent({ entity: { type: 'account', id: 'acct-9' }, tier: 'team-pql', context: { traits } });
    expect(hubspotSync(account({ company: ' Acme Analytics ' }), 'acme_account_id')).toMatchObject({
      object: 'companies',
      idProperty: 'acme_account_id',
      id: 'acct-9',
      ifEmpty: { name: 'Acme Analytics' },
    });
    expect(hubspotSync(account({}), 'acme_account_id')).toMatchObject({ idProperty: 'acme_account_id', id: 'acct-9', ifEmpty: {} });
  });

  it('writes a fill-in property only where the record holds no value for it', () => {
    const sync = hubspotSync(accountQualified, defaultCompanyIdProperty);
    if ('skip' in sync) throw new Error(sync.skip);
    const written = (held: Record<string, string | null>) => hubspotUpsertBody(sync, held).inputs[0].properties.name;
    expect(written({})).toBe('Acme Analytics');
    expect(written({ name: null })).toBe('Acme Analytics');
    expect(written({ name: '' })).toBe('Acme Analytics');
    expect(written({ name: 'Acme Analytics GmbH' })).toBeUndefined();
  });

  it('a conversion within the tiers sets the tier and its route with the conversion time', () => {
    const stillLead = sampleLeadEvent({
      detailType: 'Lead Converted',
      previousTier: 'PQL-A',
      tier: 'PQL-A',
      conversion: { convertedAt: '2024-05-09T07:58:41.000Z', tier: 'PQL-A', qualifiedAt: '2024-05-01T12:00:00.000Z', qualifiedTier: 'PQL-A', qualifiedOn: [], daysSinceQualification: 7 },
    });
    expect(inputOf(stillLead).properties).toMatchObject({ pql_tier: 'PQL-A', pql_route: 'sales', pql_converted_at: '2024-05-09T07:58:41.000Z' });
  });

  it('sends every value as a string, and cuts pql_signals at HubSpot\'s 65,536 characters', () => {
    const long = sampleLeadEvent({ summary: `${'x'.repeat(maxHubspotStringLength - 1)}😀 and more` });
    const { properties } = inputOf(long);
    expect(Object.values(properties).every((value) => typeof value === 'string')).toBe(true);
    // The cut falls inside the emoji: its first half is dropped rather than sent alone.
    expect(properties.pql_signals).toBe('x'.repeat(maxHubspotStringLength - 1));
  });

  it.each<[string, LeadEvent, Record<string, string>]>([
    ['a HubSpot owner id as the contact owner', sampleLeadEvent({ owner: '41629779' }), { hubspot_owner_id: '41629779' }],
    ['a HubSpot owner id as the company owner', sampleLeadEvent({ entity: { type: 'account', id: 'acct-9' }, owner: '41629779' }), { hubspot_owner_id: '41629779' }],
    ['an e-mail in pql_owner, not as the owner HubSpot would refuse', sampleLeadEvent({ owner: 'ann@example.com' }), { pql_owner: 'ann@example.com' }],
    ['a Slack member id in pql_owner', sampleLeadEvent({ previousTier: 'PQL-B', tier: 'PQL-A', owner: 'U024BE7LH' }), { pql_owner: 'U024BE7LH' }],
    ['nothing for an owner trait not set: an owner given in HubSpot stays', sampleLeadEvent({ owner: null }), {}],
    ['nothing without an owner', qualified, {}],
    ['nothing on a disqualification: the record keeps its owner', sampleLeadEvent({ previousTier: 'PQL-A', tier: null, owner: '41629779' }), {}],
  ])('sets %s', (_name, event, owner) => {
    const { properties } = inputOf(event);
    expect({ hubspot_owner_id: properties.hubspot_owner_id, pql_owner: properties.pql_owner }).toEqual({ hubspot_owner_id: undefined, pql_owner: undefined, ...owner });
  });

  it('sets only properties the README asks users to create (besides the company name), and HubSpot\'s own owner', () => {
    const created = new Set([...hubspotProperties.map((property) => property.name), 'name', 'hubspot_owner_id']);
    const withOwners = [sampleLeadEvent({ owner: '41629779' }), sampleLeadEvent({ owner: 'ann@example.com' })];
    for (const event of [qualified, downgraded, disqualified, converted, accountQualified, ...withOwners]) {
      const names = Object.keys(inputOf(event).properties);
      expect(names.filter((name) => !created.has(name))).toEqual([]);
    }
  });
});
