import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncLeadToHubspot } from '../../functions/adapters/hubspot/client';
import { defaultCompanyIdProperty, hubspotProperties, hubspotUpsert, maxHubspotStringLength } from '../../functions/core/crm-properties';
import { testLeadEvent, type AttemptResult } from '../../functions/core/delivery';
import type { LeadEvent } from '../../functions/core/lead-event';
import { sampleLeadEvent } from '../support/lead-events';

/** One recorded exchange with HubSpot (see test/fixtures/hubspot/README.md). */
interface Fixture {
  description: string;
  request: { method: string; path: string; body: unknown };
  response: { status: number; headers: Record<string, string>; body: unknown };
}

interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

const fixture = (name: string): Fixture => JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/hubspot', `${name}.json`), 'utf8')) as Fixture;

const token = 'pat-na1-00000000-test-token';
const emailPattern = /[^\s@"'\\]+@[^\s@"'\\]+/;

/**
 * A stand-in for api.hubapi.com: answers each request with the fixture the test chose (or, with `hang`, never), and
 * keeps what it received.
 */
let server: Server;
let baseUrl: string;
let answer: Fixture | 'hang';
let received: Received[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      received.push({ method: request.method ?? '', path: request.url ?? '', headers: request.headers, body: text === '' ? null : JSON.parse(text) });
      if (answer === 'hang') return;
      response.writeHead(answer.response.status, answer.response.headers);
      response.end(answer.response.body === null ? '' : JSON.stringify(answer.response.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** Syncs `event` against the local server answering with `name`, and returns the result and the one request sent. */
async function replay(name: string, event: LeadEvent): Promise<{ result: AttemptResult; request: Received; recorded: Fixture }> {
  const recorded = fixture(name);
  answer = recorded;
  received = [];
  const result = await syncLeadToHubspot(event, { token, companyIdProperty: defaultCompanyIdProperty, baseUrl });
  expect(received).toHaveLength(1);
  return { result, request: received[0]!, recorded };
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

describe('syncLeadToHubspot against recorded HubSpot exchanges', () => {
  it.each([
    ['create a contact', 'contact-create', qualified, 'contact 75125614921 created'],
    ['update an existing contact', 'contact-update', otherUserQualified, 'contact 68811002731 updated'],
    ['downgrade PQL-A -> PQL-B', 'contact-downgrade', downgraded, 'contact 75125614921 updated'],
    ['disqualify', 'contact-disqualify', disqualified, 'contact 75125614921 updated'],
    ['convert', 'contact-converted', converted, 'contact 75125614921 updated'],
    ['create a company', 'company-create', accountQualified, 'company 20391844502 created'],
  ])('%s: sends the recorded upsert and is delivered', async (_name, name, event, excerpt) => {
    const { result, request, recorded } = await replay(name, event);
    expect({ method: request.method, path: request.path, body: request.body }).toEqual(recorded.request);
    expect(request.headers.authorization).toBe(`Bearer ${token}`);
    expect(request.headers['content-type']).toBe('application/json');
    expect(result).toEqual({ outcome: 'delivered', status: 200, excerpt, latencyMs: expect.any(Number) });
    expectNoEmail(result);
  });

  it('a revoked token (401) is retryable, so a rotated token fixes it without a deploy', async () => {
    const { result, request, recorded } = await replay('error-401-invalid-token', qualified);
    expect({ method: request.method, path: request.path, body: request.body }).toEqual(recorded.request);
    expect(result).toMatchObject({ outcome: 'retryable', status: 401 });
    expect(result.excerpt).toMatch(/^\{"status":"error","message":"Authentication credentials not found/);
    expect(result).not.toHaveProperty('retryAfterMs');
    expectNoEmail(result);
  });

  it('a rate limit (429) is retryable after the Retry-After it carries', async () => {
    const { result, request, recorded } = await replay('error-429-rate-limited', qualified);
    expect({ method: request.method, path: request.path, body: request.body }).toEqual(recorded.request);
    expect(result).toMatchObject({ outcome: 'retryable', status: 429, retryAfterMs: 10_000 });
    expect(result.excerpt).toContain('ten_secondly_rolling');
    expectNoEmail(result);
  });

  it('a rate limit (429) without Retry-After, as HubSpot documents it, waits at least its ten-second window', async () => {
    const { result } = await replay('error-429-no-retry-after', qualified);
    expect(result).toMatchObject({ outcome: 'retryable', status: 429, retryAfterMs: 10_000 });
  });

  it('a property that does not exist (400) is permanent', async () => {
    const { result, request, recorded } = await replay('error-400-property-missing', qualified);
    expect({ method: request.method, path: request.path, body: request.body }).toEqual(recorded.request);
    expect(result).toMatchObject({ outcome: 'permanent', status: 400 });
    expect(result.excerpt).toContain('Property values were not valid');
    expectNoEmail(result);
  });

  it('masks the e-mail address HubSpot quotes in an error', async () => {
    const invalid = sampleLeadEvent({ context: { traits: { email: 'ada@acme..example' } } });
    const { result, request, recorded } = await replay('error-400-invalid-email', invalid);
    expect({ method: request.method, path: request.path, body: request.body }).toEqual(recorded.request);
    expect(JSON.stringify(recorded.response.body)).toContain('ada@acme..example');
    expect(result).toMatchObject({ outcome: 'permanent', status: 400 });
    expect(result.excerpt).toContain('[email]');
    expectNoEmail(result);
  });

  it('takes a 2xx whose answer reports its input failed (207 Multi-Status) for the failure it is, not a delivery', async () => {
    const invalid = sampleLeadEvent({ context: { traits: { email: 'ada@acme' } } });
    const { result, request, recorded } = await replay('error-207-invalid-email', invalid);
    expect({ method: request.method, path: request.path, body: request.body }).toEqual(recorded.request);
    expect(result).toMatchObject({ outcome: 'permanent', status: 207 });
    expect(result.excerpt).toMatch(/^VALIDATION_ERROR: Property values were not valid: .*\[email\] is invalid/);
    expectNoEmail(result);
  });
});

describe('a test event', () => {
  const test = testLeadEvent('sales', 'acme', new Date('2024-05-01T12:00:00.000Z'), 'k1');

  it('writes nothing: it reads the pql_tier property, which proves the token and the properties', async () => {
    const { result, request, recorded } = await replay('property-check-200', test);
    expect({ method: request.method, path: request.path, body: request.body }).toEqual(recorded.request);
    expect(request.headers.authorization).toBe(`Bearer ${token}`);
    expect(result).toEqual({ outcome: 'delivered', status: 200, excerpt: 'the contact property pql_tier exists', latencyMs: expect.any(Number) });
  });

  it('says to create the properties when pql_tier does not exist (404, permanent)', async () => {
    const { result } = await replay('property-check-404', test);
    expect(result).toMatchObject({
      outcome: 'permanent',
      status: 404,
      error: 'the HubSpot property pql_tier does not exist: create the pql_* properties first',
    });
  });

  it('a bad token on the check (401) is retryable like on an upsert', async () => {
    const recorded = fixture('error-401-invalid-token');
    answer = recorded;
    received = [];
    const result = await syncLeadToHubspot(test, { token, companyIdProperty: defaultCompanyIdProperty, baseUrl });
    expect(received.map(({ method, path }) => `${method} ${path}`)).toEqual(['GET /crm/v3/properties/contacts/pql_tier']);
    expect(result).toMatchObject({ outcome: 'retryable', status: 401 });
  });
});

describe('syncLeadToHubspot without an answer', () => {
  it('a refused connection is retryable, with the error code', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const result = await syncLeadToHubspot(qualified, { token, companyIdProperty: defaultCompanyIdProperty, baseUrl: `http://127.0.0.1:${port}` });
    expect(result).toEqual({ outcome: 'retryable', error: 'fetch failed (ECONNREFUSED)', latencyMs: expect.any(Number) });
  });

  it('a timeout is retryable, and measured with the clock given', async () => {
    answer = 'hang';
    received = [];
    const clock = [1_000, 1_250];
    const result = await syncLeadToHubspot(qualified, { token, companyIdProperty: defaultCompanyIdProperty, baseUrl, timeoutMs: 100, now: () => clock.shift() ?? 9_999 });
    expect(received).toHaveLength(1);
    expect(result).toEqual({ outcome: 'retryable', error: 'TimeoutError: The operation was aborted due to timeout', latencyMs: 250 });
  });

  it.each([
    ['a user without an email trait', sampleLeadEvent({ context: { traits: { name: 'Ada Lovelace' } } }), 'the user has no email trait to match a HubSpot contact by'],
    ['a visitor', sampleLeadEvent({ entity: { type: 'visitor', id: 'anon-3' } }), 'a visitor is anonymous: there is no HubSpot record to match it by'],
  ])('%s is skipped without a request', async (_name, event, error) => {
    received = [];
    const result = await syncLeadToHubspot(event, { token, companyIdProperty: defaultCompanyIdProperty, baseUrl });
    expect(result).toEqual({ outcome: 'skipped', error, latencyMs: 0 });
    expect(received).toEqual([]);
  });
});

describe('hubspotUpsert', () => {
  /** The one upsert input, failing the test on a skip. */
  function inputOf(event: LeadEvent, companyIdProperty = defaultCompanyIdProperty) {
    const upsert = hubspotUpsert(event, companyIdProperty);
    if ('skip' in upsert) throw new Error(`skipped: ${upsert.skip}`);
    return upsert.body.inputs[0];
  }

  it.each([
    ['no email trait', sampleLeadEvent({ context: { traits: { company: 'Acme Analytics' } } }), 'the user has no email trait to match a HubSpot contact by'],
    ['a blank email trait', sampleLeadEvent({ context: { traits: { email: '   ' } } }), 'the user has no email trait to match a HubSpot contact by'],
    ['a visitor, even with an email trait', sampleLeadEvent({ entity: { type: 'visitor', id: 'anon-3' } }), 'a visitor is anonymous: there is no HubSpot record to match it by'],
    ['a test event', testLeadEvent('sales', 'acme', new Date('2024-05-01T12:00:00.000Z'), 'k1'), 'a test event is not written to HubSpot'],
  ])('skips %s', (_name, event, skip) => {
    expect(hubspotUpsert(event, defaultCompanyIdProperty)).toEqual({ skip });
  });

  it('matches a company by the configured unique property, and names it only when the company trait is present', () => {
    const account = (traits: LeadEvent['detail']['context']['traits']) =>
      sampleLeadEvent({ entity: { type: 'account', id: 'acct-9' }, tier: 'team-pql', context: { traits } });
    expect(hubspotUpsert(account({ company: ' Acme Analytics ' }), 'acme_account_id')).toMatchObject({
      object: 'companies',
      body: { inputs: [{ idProperty: 'acme_account_id', id: 'acct-9', properties: { name: 'Acme Analytics' } }] },
    });
    const unnamed = inputOf(account({}), 'acme_account_id');
    expect(unnamed).toMatchObject({ idProperty: 'acme_account_id', id: 'acct-9' });
    expect(unnamed.properties).not.toHaveProperty('name');
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
