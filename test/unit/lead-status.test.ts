import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { CachedLeadStatusReader } from '../../functions/adapters/dynamodb/lead-status-reader';
import { ingest } from '../../functions/core/ingest';
import { leadStatus, leadStatusOf, type AskedEntity, type LeadStatus, type LeadStatusReader } from '../../functions/core/lead-status';
import type { LeadState } from '../../functions/core/lead-state';
import type { WriteKeyStore } from '../../functions/core/ports';
import { TtlCache } from '../../functions/core/ttl-cache';
import { accessOf, generateWriteKey, hashSecret, keyFromAuthorization, parseWriteKey, type KeyAccess, type WriteKeyRecord } from '../../functions/core/write-key';
import { createLeadStatusHandler } from '../../functions/lead-status/http';

const lead: LeadState = {
  tier: 'PQL-A',
  route: 'sales',
  score: 80,
  since: '2024-06-18T10:00:00.000Z',
  cooldownUntil: null,
  sequence: 2,
  rulesetVersion: 'v1',
  evaluatedAt: '2024-06-20T12:00:00.000Z',
  matched: ['dashboards', 'invited'],
  lastSeen: '2024-06-20T11:00:00.000Z',
  history: [{ tier: 'PQL-A', previousTier: 'PQL-B', at: '2024-06-18T10:00:00.000Z', reasons: ['score 80 >= 70'] }],
  scores: [
    { at: '2024-06-17T10:00:00.000Z', total: 40, engagement: 40, fit: 0 },
    { at: '2024-06-18T10:00:00.000Z', total: 80, engagement: 70, fit: 10 },
  ],
  signals: [{ name: 'invited', value: 'sam@example.com', points: 30 }],
};

const notALead: LeadState = { ...lead, tier: null, route: null, score: 20, since: null, matched: ['dashboards'], history: [], scores: undefined!, signals: undefined! };
delete (notALead as Partial<LeadState>).scores;
delete (notALead as Partial<LeadState>).signals;

/** A key store holding one key of each access in workspace `acme`. */
function keys() {
  const made = (access: KeyAccess) => {
    const { keyId, key, secret } = generateWriteKey(access);
    const record: WriteKeyRecord = { keyId, workspace: 'acme', secretHash: hashSecret(secret), createdAt: '2024-01-01T00:00:00Z', ...(access === 'read' ? { access } : {}) };
    return { key, record };
  };
  const write = made('write');
  const read = made('read');
  const records = new Map([write, read].map(({ record }) => [record.keyId, record]));
  const store: WriteKeyStore = { find: async (keyId) => records.get(keyId), allowedOrigins: async () => new Map() };
  return { store, writeKey: write.key, readKey: read.key, records };
}

/** Leads of workspace `acme`: ada is a lead, bob is known but not one. */
class FakeReader implements LeadStatusReader {
  asked: AskedEntity[] = [];
  async leadStatus(entity: AskedEntity): Promise<LeadStatus | undefined> {
    this.asked.push(entity);
    if (entity.workspace !== 'acme') return undefined;
    if (entity.type === 'user' && entity.id === 'ada') return leadStatusOf(entity, lead);
    if (entity.type === 'user' && entity.id === 'bob') return leadStatusOf(entity, notALead);
    if (entity.type === 'account' && entity.id === 'acme-inc') return leadStatusOf(entity, lead);
    return undefined;
  }
}

const bearer = (key: string) => `Bearer ${key}`;
const basic = (key: string) => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;

/** The keys `ask` authenticates against. */
const shared = keys();

async function ask(path: string, authorization: string | undefined) {
  return leadStatus({ path, authorization }, { keys: shared.store, leads: new FakeReader() });
}

describe('key kinds', () => {
  it('makes read keys recognisable by their prefix, and parses both kinds to their id and secret', () => {
    const write = generateWriteKey();
    const read = generateWriteKey('read');
    expect(write.key).toMatch(/^pqr_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    expect(read.key).toMatch(/^pqr_read_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    expect(parseWriteKey(read.key)).toEqual({ keyId: read.keyId, secret: read.secret });
    expect(parseWriteKey(write.key)).toEqual({ keyId: write.keyId, secret: write.secret });
  });

  it('takes a record without access (every key made before read keys) for a write key', () => {
    expect(accessOf({ keyId: 'k', workspace: 'w', secretHash: '', createdAt: '' })).toBe('write');
    expect(accessOf({ keyId: 'k', workspace: 'w', secretHash: '', createdAt: '', access: 'read' })).toBe('read');
  });

  it('reads the key of a read from Bearer or Basic, and nothing else', () => {
    expect(keyFromAuthorization('Bearer pqr_read_abc')).toBe('pqr_read_abc');
    expect(keyFromAuthorization(basic('pqr_read_abc'))).toBe('pqr_read_abc');
    expect(keyFromAuthorization(undefined)).toBeUndefined();
    expect(keyFromAuthorization('Bearer')).toBeUndefined();
    expect(keyFromAuthorization(basic(''))).toBeUndefined();
    expect(keyFromAuthorization('Token pqr_read_abc')).toBeUndefined();
  });

  it('refuses a write key for reading, with 403 saying a read-only key is needed', async () => {
    const { store, writeKey } = keys();
    const response = await leadStatus({ path: '/v1/leads/user/ada', authorization: bearer(writeKey) }, { keys: store, leads: new FakeReader() });
    expect(response.status).toBe(403);
    expect(response.body).toMatchObject({ success: false, path: 'authorization' });
    expect((response.body as { reason: string }).reason).toContain('read-only key');
    expect(response.cacheable).toBe(false);
  });

  it('refuses a read key for ingest, with 403, storing nothing', async () => {
    const { store, readKey } = keys();
    const saved: unknown[] = [];
    const response = await ingest(
      { callType: 'track', body: JSON.stringify({ userId: 'ada', event: 'Dashboard Created' }), authorization: basic(readKey), receivedAt: new Date(), requestId: 'r' },
      { keys: store, events: { save: async (...args) => (saved.push(args), { refused: [] }), quarantine: async () => {} } },
    );
    expect(response.status).toBe(403);
    expect(response.body).toMatchObject({ success: false, path: 'writeKey' });
    expect(response.body.reason).toContain('read-only key');
    expect(saved).toEqual([]);
  });

  it('refuses a revoked read key, an unknown one and a wrong secret alike, with 401', async () => {
    const { store, readKey, records } = keys();
    const wrongSecret = readKey.slice(0, -1) + (readKey.endsWith('A') ? 'B' : 'A');
    const unknown = generateWriteKey('read').key;
    for (const key of [wrongSecret, unknown, 'not a key']) {
      const response = await leadStatus({ path: '/v1/leads/user/ada', authorization: bearer(key) }, { keys: store, leads: new FakeReader() });
      expect(response.status, key).toBe(401);
    }
    for (const record of records.values()) record.revokedAt = '2024-02-01T00:00:00Z';
    expect((await leadStatus({ path: '/v1/leads/user/ada', authorization: bearer(readKey) }, { keys: store, leads: new FakeReader() })).status).toBe(401);
  });
});

describe('the lead status use case', () => {
  it("answers a lead's tier, route, score with its parts, matched signal names and times, and no trait or signal value", async () => {
    const { store, readKey } = keys();
    const reader = new FakeReader();
    const response = await leadStatus({ path: '/v1/leads/user/ada', authorization: bearer(readKey) }, { keys: store, leads: reader });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      type: 'user',
      id: 'ada',
      tier: 'PQL-A',
      route: 'sales',
      score: { total: 80, engagement: 70, fit: 10 },
      matched: ['dashboards', 'invited'],
      since: '2024-06-18T10:00:00.000Z',
      evaluatedAt: '2024-06-20T12:00:00.000Z',
    });
    expect(JSON.stringify(response.body)).not.toContain('sam@example.com');
    expect(response.cacheable).toBe(true);
    // The key's workspace, never one the request names.
    expect(reader.asked).toEqual([{ workspace: 'acme', type: 'user', id: 'ada' }]);
    expect(response.summary).toEqual({ workspace: 'acme', keyId: expect.any(String), type: 'user', found: true });
  });

  it('answers tier null for an entity known but not a lead, with the total score only when no parts are kept', async () => {
    const { readKey } = shared;
    const response = await ask('/v1/leads/user/bob', basic(readKey));
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ type: 'user', id: 'bob', tier: null, route: null, score: { total: 20 }, matched: ['dashboards'], since: null, evaluatedAt: lead.evaluatedAt });
  });

  it('leaves out the score parts when the last point kept is not the current score', () => {
    expect(leadStatusOf({ type: 'account', id: 'a' }, { ...lead, score: 75 }).score).toEqual({ total: 75 });
  });

  it('answers accounts by groupId', async () => {
    const { readKey } = shared;
    const response = await ask('/v1/leads/account/acme-inc', bearer(readKey));
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ type: 'account', id: 'acme-inc', tier: 'PQL-A' });
  });

  it('answers 404 naming the type and id for an unknown entity, and may be cached', async () => {
    const { readKey } = shared;
    const response = await ask('/v1/leads/user/nobody', bearer(readKey));
    expect(response.status).toBe(404);
    expect(response.body).toMatchObject({ success: false, path: 'userId' });
    expect((response.body as { reason: string }).reason).toBe('no lead status for user "nobody": it is unknown in this workspace, or its events are not evaluated yet');
    expect(response.cacheable).toBe(true);
  });

  it.each([
    ['/v1/leads/visitor/anon-1', 'type', 'must be user or account'],
    ['/v1/leads/user', 'userId', 'must not be empty'],
    ['/v1/leads/user/', 'userId', 'must not be empty'],
    ['/v1/leads/account/', 'groupId', 'must not be empty'],
    [`/v1/leads/user/${'x'.repeat(201)}`, 'userId', 'must be at most 200 characters'],
    ['/v1/leads/account/bad\ud800id', 'groupId', 'must be well-formed unicode (no lone surrogates)'],
    // What API Gateway's decoding of the path makes of bytes that are not UTF-8 (%FF), as the local server's does.
    ['/v1/leads/user/caf\ufffd', 'userId', 'must be percent-encoded UTF-8 (encodeURIComponent): it held bytes that are not UTF-8, such as %FF'],
  ])('answers 400 for %s naming %s', async (path, field, reason) => {
    const { readKey } = shared;
    const response = await ask(path, bearer(readKey));
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ success: false, code: 'invalid_request', error: expect.stringContaining(`${field}: ${reason}`), message: (response.body as { error: string }).error, path: field, reason: expect.stringContaining(reason) });
  });

  it('answers 401 without a key, and 404 for a path that is not its own', async () => {
    expect((await ask('/v1/leads/user/ada', undefined)).status).toBe(401);
    expect((await ask('/v1/leads/user/ada', undefined)).body).toMatchObject({ path: 'authorization', code: 'unauthorized' });
    expect((await ask('/v2/track', undefined)).status).toBe(404);
    expect((await ask('/v2/track', undefined)).body).toMatchObject({ code: 'not_found', error: 'no such endpoint: GET /v2/track; lead status reads are /v1/leads/user/<userId> or /v1/leads/account/<groupId>' });
  });
});

describe('the lead status HTTP adapter', () => {
  const event = (path: string, authorization?: string) =>
    ({ rawPath: path, headers: authorization ? { authorization } : {}, requestContext: { requestId: 'req-1', http: { method: 'GET' } } }) as unknown as APIGatewayProxyEventV2;

  it('lets the caller keep an answer as long as the function keeps it, and never a refusal', async () => {
    const { store, readKey, writeKey } = keys();
    const handle = createLeadStatusHandler({ keys: store, leads: new FakeReader() }, { maxAgeSeconds: 30 });
    const ok = await handle(event('/v1/leads/user/ada', bearer(readKey)));
    expect(ok.statusCode).toBe(200);
    expect(ok.headers).toEqual({ 'content-type': 'application/json', 'cache-control': 'private, max-age=30' });
    expect(JSON.parse(ok.body!)).toMatchObject({ tier: 'PQL-A' });
    expect((await handle(event('/v1/leads/user/nobody', bearer(readKey)))).headers!['cache-control']).toBe('private, max-age=30');
    expect((await handle(event('/v1/leads/user/ada', bearer(writeKey)))).headers!['cache-control']).toBe('no-store');
  });

  it('answers 500 with the request id when the store fails, telling the observer', async () => {
    const { store, readKey } = keys();
    const errors: unknown[] = [];
    const failing: LeadStatusReader = { leadStatus: async () => Promise.reject(new Error('boom')) };
    const handle = createLeadStatusHandler({ keys: store, leads: failing }, { maxAgeSeconds: 30 }, { onResponse: () => {}, onError: (error) => errors.push(error) });
    const response = await handle(event('/v1/leads/user/ada', bearer(readKey)));
    expect(response.statusCode).toBe(500);
    expect(JSON.parse(response.body!)).toMatchObject({ code: 'internal_error', message: expect.stringContaining('req-1'), reason: expect.stringContaining('req-1') });
    expect(errors).toHaveLength(1);
  });
});

describe('the caches of a warm function', () => {
  it('read an entity once per period, misses included, and again once it is over', async () => {
    let now = 0;
    const reader = new FakeReader();
    const cached = new CachedLeadStatusReader(reader, 30_000, () => now);
    const ada: AskedEntity = { workspace: 'acme', type: 'user', id: 'ada' };
    const nobody: AskedEntity = { workspace: 'acme', type: 'user', id: 'nobody' };
    for (let i = 0; i < 3; i++) {
      expect(await cached.leadStatus(ada)).toMatchObject({ tier: 'PQL-A' });
      expect(await cached.leadStatus(nobody)).toBeUndefined();
    }
    // Another workspace's entity of the same id is another entry.
    await cached.leadStatus({ ...ada, workspace: 'other' });
    expect(reader.asked).toHaveLength(3);
    expect({ hits: cached.cache.hits, misses: cached.cache.misses }).toEqual({ hits: 4, misses: 3 });
    now = 30_000;
    await cached.leadStatus(ada);
    expect(reader.asked).toHaveLength(4);
  });

  it('hold at most their bound, dropping the entry stored longest ago', async () => {
    const cache = new TtlCache<number>(60_000, 2);
    let loads = 0;
    const load = async () => ++loads;
    await cache.get('a', load);
    await cache.get('b', load);
    await cache.get('c', load);
    expect(await cache.get('b', load)).toBe(2);
    expect(await cache.get('c', load)).toBe(3);
    expect(await cache.get('a', load)).toBe(4);
  });
});
