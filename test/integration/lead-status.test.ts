import { randomUUID } from 'node:crypto';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stateOf } from '../../functions/adapters/dynamodb/entity-rows';
import { entityPartitionKey, stateSortKey } from '../../functions/adapters/dynamodb/item-keys';
import { loadRules } from '../../functions/core/rules/load';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { cli } from '../support/cli';
import { RecordingPublisher } from '../support/lead-events';
import { sendBatch } from '../support/send-batch';

const rules = loadRules(
  `
version: 1
signals:
  dashboards: { event: Dashboard Created, window: 30d, at_least: 2, points: 40 }
  invited: { event: Teammate Invited, window: 30d, points: 40 }
  big_company: { trait: employees, of: account, is: { gte: 50 }, points: 10 }
  team: { level: account, active_users: 7d, at_least: 1, points: 80 }
tiers:
  - { name: PQL-A, min_score: 70, route: sales }
`,
  'lead status rules',
);

const now = new Date();
const ago = (hours: number) => new Date(now.getTime() - hours * 3_600_000).toISOString();
const track = (userId: string, event: string, hours: number, groupId = 'acme') => ({
  type: 'track',
  userId,
  event,
  timestamp: ago(hours),
  messageId: `${userId}-${event}-${hours}`,
  context: { groupId },
});
/** A userId that only arrives intact if the path is percent-encoded and decoded as API Gateway does. */
const spacedUser = 'grace hopper é';

let dev: DevRuntime;
let readKey: string;

beforeAll(async () => {
  dev = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `status-${randomUUID()}`, ruleset: rules, leads: new RecordingPublisher(), evaluateEveryMs: 0 });
  await sendBatch(dev, [
    { type: 'group', userId: 'ada', groupId: 'acme', traits: { name: 'Acme', employees: 120 }, timestamp: ago(5), messageId: 'g-ada' },
    { type: 'identify', userId: 'ada', traits: { email: 'ada@example.com' }, timestamp: ago(5), messageId: 'i-ada' },
    track('ada', 'Dashboard Created', 4),
    track('ada', 'Dashboard Created', 3),
    track('ada', 'Teammate Invited', 2),
    track('bob', 'Dashboard Created', 2),
    track(spacedUser, 'Dashboard Created', 2),
  ]);
  await dev.evaluateOnce(now);
  readKey = (await dev.keys.create(dev.workspace, { access: 'read' })).key;
}, 120_000);

afterAll(() => dev?.stop());

const get = (path: string, authorization?: string) => fetch(`${dev.url}${path}`, { headers: authorization ? { authorization } : {} });
const bearer = (key: string) => `Bearer ${key}`;

async function storedLead(type: 'user' | 'account', id: string) {
  const { Item } = await dev.client.send(
    new GetItemCommand({ TableName: dev.tableName, Key: { pk: { S: entityPartitionKey(dev.workspace, type, id) }, sk: { S: stateSortKey } }, ConsistentRead: true }),
  );
  return stateOf(Item)!.lead!;
}

describe('GET /v1/leads/... against DynamoDB Local, after an evaluator pass', () => {
  it("answers a lead with a read key: the tier and score are the stored state's, and no trait is in it", async () => {
    const response = await get('/v1/leads/user/ada', bearer(readKey));
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('private, max-age=0');
    const body = await response.json();
    const stored = await storedLead('user', 'ada');
    expect(stored.tier).toBe('PQL-A');
    const parts = stored.scores!.at(-1)!;
    expect(body).toEqual({
      type: 'user',
      id: 'ada',
      tier: stored.tier,
      route: 'sales',
      score: { total: stored.score, engagement: parts.engagement, fit: parts.fit },
      matched: stored.matched,
      since: stored.since,
      evaluatedAt: now.toISOString(),
    });
    expect(JSON.stringify(body)).not.toMatch(/ada@example\.com|Acme|120/);
  });

  it('answers an account by its groupId, with Basic auth as Segment clients send it', async () => {
    const response = await get('/v1/leads/account/acme', `Basic ${Buffer.from(`${readKey}:`).toString('base64')}`);
    expect(response.status).toBe(200);
    const stored = await storedLead('account', 'acme');
    expect(stored.tier).toBe('PQL-A');
    expect(await response.json()).toMatchObject({ type: 'account', id: 'acme', tier: stored.tier, route: 'sales', score: { total: stored.score }, matched: stored.matched });
  });

  it('answers tier null for a user known but not a lead, and finds a percent-encoded userId', async () => {
    const bob = await get('/v1/leads/user/bob', bearer(readKey));
    expect(bob.status).toBe(200);
    const stored = await storedLead('user', 'bob');
    expect(stored.tier).toBeNull();
    expect(await bob.json()).toEqual({ type: 'user', id: 'bob', tier: null, route: null, score: { total: stored.score }, matched: stored.matched, since: null, evaluatedAt: stored.evaluatedAt });
    const spaced = await get(`/v1/leads/user/${encodeURIComponent(spacedUser)}`, bearer(readKey));
    expect(spaced.status).toBe(200);
    expect(await spaced.json()).toMatchObject({ id: spacedUser, tier: null });
  });

  it('answers 400 naming the userId for a path whose percent-encoding is not UTF-8', async () => {
    const response = await get('/v1/leads/user/%FF', bearer(readKey));
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ path: 'userId', reason: expect.stringContaining('must be percent-encoded UTF-8') });
  });

  it('answers 404 for an unknown user, 401 without a key, and 403 to a write key', async () => {
    const unknown = await get('/v1/leads/user/nobody', bearer(readKey));
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ path: 'userId', reason: expect.stringContaining('no lead status for user "nobody"') });
    expect((await get('/v1/leads/user/ada')).status).toBe(401);
    const withWriteKey = await get('/v1/leads/user/ada', bearer(dev.writeKey));
    expect(withWriteKey.status).toBe(403);
    expect(await withWriteKey.json()).toMatchObject({ path: 'authorization', reason: expect.stringContaining('read-only key') });
  });

  it('answers HEAD as GET, without the body: the same status and headers for a lead and for /v1/track', async () => {
    for (const path of ['/v1/leads/user/ada', '/v1/track']) {
      const got = await get(path, bearer(readKey));
      const head = await fetch(`${dev.url}${path}`, { method: 'HEAD', headers: { authorization: bearer(readKey) } });
      expect([head.status, head.headers.get('content-type'), head.headers.get('cache-control')]).toEqual([got.status, got.headers.get('content-type'), got.headers.get('cache-control')]);
      expect(await head.text()).toBe('');
    }
    // An ingest path takes events, with POST.
    const headOfIngest = await fetch(`${dev.url}/v1/track`, { method: 'HEAD' });
    expect([headOfIngest.status, headOfIngest.headers.get('allow')]).toEqual([405, 'POST, OPTIONS']);
  });

  it('refuses the read key for ingest, storing nothing', async () => {
    const response = await fetch(`${dev.url}/v1/track`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${readKey}:`).toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'mallory', event: 'Dashboard Created', messageId: 'm-mallory' }),
    });
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ path: 'writeKey', reason: expect.stringContaining('read-only key') });
    await dev.evaluateOnce(now);
    expect((await get('/v1/leads/user/mallory', bearer(readKey))).status).toBe(404);
  });

  it('takes a read key made by `pql-radar keys create --read-only`, which `keys list` shows as read', async () => {
    const keysCli = (...args: string[]) => cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'keys', ...args);
    const created = await keysCli('create', '--read-only', '--workspace', dev.workspace);
    expect(created.code, created.stderr).toBe(0);
    const key = /^read key\s+(pqr_read_\S+)$/m.exec(created.stdout)?.[1];
    expect(key).toBeDefined();
    expect((await get('/v1/leads/user/ada', bearer(key!))).status).toBe(200);
    const keyId = /^key id\s+(\S+)$/m.exec(created.stdout)![1]!;
    expect((await keysCli('list')).stdout).toMatch(new RegExp(`^${keyId}\\s+${dev.workspace}\\s+read\\s+created`, 'm'));
    const imported = await keysCli('create', '--read-only', '--key', 'an-existing-segment-key', '--workspace', dev.workspace);
    expect(imported.code).toBe(1);
    expect(imported.stderr).toBe('pql-radar: --read-only makes a new key: a read key cannot be imported with --key\n');
    const revoked = await keysCli('revoke', keyId);
    expect(revoked.stdout).toBe(`revoked ${keyId}\n`);
    expect((await get('/v1/leads/user/ada', bearer(key!))).status).toBe(401);
    const unknown = await keysCli('revoke', 'no-such-id');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('pql-radar: no key with id no-such-id; `pql-radar keys list` shows the ids\n');
  }, 60_000);
});
