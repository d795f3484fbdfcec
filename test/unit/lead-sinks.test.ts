import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leadEventDetailSchema, type LeadEvent } from '../../functions/core/lead-event';
import type { LeadPublisher } from '../../functions/core/ports';
import { parseRetryAfter } from '../../functions/adapters/webhook/delivery';
import { ConsoleLeadSink, FanOutLeadSink, JsonlLeadSink, formatLeadEvent } from '../../functions/local/lead-sinks';
import { sampleLeadEvent } from '../support/lead-events';

const qualified = sampleLeadEvent();
const tierChanged = sampleLeadEvent({ previousTier: 'PQL-B', tier: 'PQL-A', evaluatedAt: '2024-05-02T08:00:00.000Z' });
const disqualified = sampleLeadEvent({
  previousTier: 'PQL-B',
  tier: null,
  score: { total: 20, engagement: 10, fit: 10 },
  signals: [],
  reasons: ['no activity for 30 days'],
  route: null,
  evaluatedAt: '2024-06-01T08:00:00.000Z',
});

describe('ConsoleLeadSink', () => {
  async function lines(events: LeadEvent[]) {
    const written: string[] = [];
    const result = await new ConsoleLeadSink((line) => written.push(line)).publish(events);
    expect(result).toEqual({ failed: [] });
    return written;
  }

  it('writes one readable line per event', async () => {
    const [q, t, d, ...rest] = await lines([qualified, tierChanged, disqualified]);
    expect(rest).toEqual([]);
    expect(q).toBe(
      'LEAD QUALIFIED  user u-42 (acme)  tier PQL-A  score 85 (engagement 70, fit 15)  route sales  ' +
        'signals: activated=1, invited_teammates=3, company_size=51-200  ' +
        'reasons: activated within 7 days of signup; invited 3 teammates; company size 51-200 fits the ICP  ' +
        `key ${qualified.detail.idempotencyKey}`,
    );
    expect(t).toMatch(/^LEAD TIER CHANGED  user u-42 \(acme\)  tier PQL-B -> PQL-A  score 85 /);
    expect(d).toMatch(/^LEAD DISQUALIFIED  user u-42 \(acme\)  tier PQL-B -> none  score 20 \(engagement 10, fit 10\)  route none  signals: none  reasons: no activity for 30 days/);
  });

  it('shows accounts with their member count', async () => {
    const [line] = await lines([sampleLeadEvent({ entity: { type: 'account', id: 'acc-7' } })]);
    expect(line).toMatch(/^LEAD QUALIFIED  account acc-7 \(acme\)  tier PQL-A .*  members 2  /);
  });

  it('never prints the email or name, wherever they turn up', async () => {
    const event = sampleLeadEvent({
      entity: { type: 'user', id: 'grace@hopper.example' },
      context: { traits: { name: 'Grace Hopper', email: 'grace@hopper.example', company: 'Hopper Inc', plan: 'pro' } },
      signals: [{ name: 'work_email', value: 'grace@hopper.example', points: 10 }],
      reasons: ['Grace Hopper signed up with grace@hopper.example\nand invited bob@hopper.example'],
    });
    const [line] = await lines([event]);
    expect(line).not.toMatch(/@|Grace|Hopper Inc|\n/);
    expect(line).toContain('user [email] (acme)');
    expect(line).toContain('work_email="[email]"');
    // The sample's own traits are never printed either.
    const [plain] = await lines([qualified]);
    expect(plain).not.toMatch(/ada@acme\.example|Ada Lovelace|Acme Analytics|trial/);
  });

  it("shows the lead's owner, masked when it is an e-mail address", async () => {
    const [byId, byEmail] = await lines([sampleLeadEvent({ owner: 'U024BE7LH' }), sampleLeadEvent({ owner: 'ann@example.com' })]);
    expect(byId).toContain('  route sales  owner U024BE7LH  signals: ');
    expect(byEmail).toContain('  owner [email]  ');
  });

  it('quotes string signal values that are not plain words', () => {
    const event = sampleLeadEvent({ signals: [{ name: 'plan', value: 'team plus', points: 5 }, { name: 'sso', value: true, points: 5 }, { name: 'seats', value: null, points: 0 }] });
    expect(formatLeadEvent(event)).toContain('signals: plan="team plus", sso=true, seats=null');
  });

  it('reports the events it could not write', async () => {
    const sink = new ConsoleLeadSink(() => {
      throw new Error('EPIPE');
    });
    expect(await sink.publish([qualified])).toEqual({ failed: [qualified.detail.idempotencyKey] });
  });
});

describe('JsonlLeadSink', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pql-radar-jsonl-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const entry = (event: LeadEvent) => ({ Source: 'pql-radar', DetailType: event.detailType, Detail: event.detail });
  const readEntries = async (path: string) =>
    (await readFile(path, 'utf8'))
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line));

  it('appends one EventBridge-shaped line per event, creating the directory', async () => {
    const path = join(dir, 'nested', 'deeper', 'leads.jsonl');
    const sink = new JsonlLeadSink(path);
    expect(await sink.publish([qualified, tierChanged])).toEqual({ failed: [] });
    expect(await sink.publish([disqualified])).toEqual({ failed: [] });
    expect(await sink.publish([])).toEqual({ failed: [] });

    const text = await readFile(path, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const entries = await readEntries(path);
    expect(entries).toEqual([entry(qualified), entry(tierChanged), entry(disqualified)]);
    for (const parsed of entries) expect(leadEventDetailSchema.parse(parsed.Detail)).toEqual(parsed.Detail);
  });

  it('never truncates: a new sink on the same file appends', async () => {
    const path = join(dir, 'existing.jsonl');
    await new JsonlLeadSink(path).publish([qualified]);
    await new JsonlLeadSink(path).publish([tierChanged]);
    expect(await readEntries(path)).toEqual([entry(qualified), entry(tierChanged)]);
  });

  it('starts on a new line after a partial last line left by a crash', async () => {
    const path = join(dir, 'torn.jsonl');
    await writeFile(path, `${JSON.stringify(entry(qualified))}\n{"Source":"pql-ra`);
    await new JsonlLeadSink(path).publish([tierChanged]);
    const lines = (await readFile(path, 'utf8')).split('\n');
    expect(lines[1]).toBe('{"Source":"pql-ra');
    expect(JSON.parse(lines[2]!)).toEqual(entry(tierChanged));
  });

  it('keeps concurrent publish calls apart, each batch whole', async () => {
    const path = join(dir, 'concurrent.jsonl');
    const sink = new JsonlLeadSink(path);
    const batches = Array.from({ length: 20 }, (_, i) => [
      sampleLeadEvent({ entity: { type: 'user', id: `u-${i}` } }),
      sampleLeadEvent({ entity: { type: 'user', id: `u-${i}` }, previousTier: 'PQL-A', tier: 'PQL-B' }),
    ]);
    await Promise.all(batches.map((batch) => sink.publish(batch)));
    const entries = await readEntries(path);
    expect(entries).toHaveLength(40);
    for (let i = 0; i < 40; i += 2) expect(entries[i].Detail.entity.id).toBe(entries[i + 1].Detail.entity.id);
  });

  it('reports every event of a batch it could not append', async () => {
    // The "directory" is a file, so neither mkdir nor appendFile can succeed.
    const blocker = join(dir, 'not-a-dir');
    await writeFile(blocker, '');
    const sink = new JsonlLeadSink(join(blocker, 'leads.jsonl'));
    expect(await sink.publish([qualified, tierChanged])).toEqual({ failed: [qualified.detail.idempotencyKey, tierChanged.detail.idempotencyKey] });
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    const now = Date.parse('2024-05-01T12:00:00Z');
    expect(parseRetryAfter('1', now)).toBe(1000);
    expect(parseRetryAfter(' 120 ', now)).toBe(120_000);
    expect(parseRetryAfter('Wed, 01 May 2024 12:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 01 May 2024 11:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('  ', now)).toBeUndefined();
    expect(parseRetryAfter('0', now)).toBe(0);
  });
});

describe('FanOutLeadSink', () => {
  class Recording implements LeadPublisher {
    published: string[][] = [];
    constructor(private readonly fail: (key: string) => boolean = () => false, private readonly throws = false) {}
    async publish(events: readonly LeadEvent[]) {
      this.published.push(events.map((e) => e.detail.idempotencyKey));
      if (this.throws) throw new Error('broken');
      return { failed: events.map((e) => e.detail.idempotencyKey).filter(this.fail) };
    }
  }
  const k = (e: LeadEvent) => e.detail.idempotencyKey;

  it('publishes to every sink; an event fails if any sink failed it', async () => {
    const a = new Recording();
    const b = new Recording((key) => key === k(tierChanged));
    const c = new Recording((key) => key === k(tierChanged) || key === k(disqualified));
    const result = await new FanOutLeadSink([a, b, c]).publish([qualified, tierChanged, disqualified]);
    expect(result.failed.sort()).toEqual([k(tierChanged), k(disqualified)].sort());
    for (const sink of [a, b, c]) expect(sink.published).toEqual([[k(qualified), k(tierChanged), k(disqualified)]]);
  });

  it('counts every event failed when a sink throws, giving its error as the reason', async () => {
    const result = await new FanOutLeadSink([new Recording(), new Recording(() => false, true)]).publish([qualified, tierChanged]);
    expect(result).toEqual({ failed: [k(qualified), k(tierChanged)], reasons: ['Error: broken'] });
  });

  it("passes on the sinks' reasons for what they failed, each once, and none when nothing failed", async () => {
    const refusing: LeadPublisher = { publish: async (events) => ({ failed: events.map(k), reasons: ['AccessDeniedException: not allowed'] }) };
    const result = await new FanOutLeadSink([new Recording(), refusing, refusing]).publish([qualified]);
    expect(result).toEqual({ failed: [k(qualified)], reasons: ['AccessDeniedException: not allowed'] });
    expect(await new FanOutLeadSink([new Recording()]).publish([qualified])).toEqual({ failed: [] });
  });

  it('sends a retried event only to the sinks that have not had it', async () => {
    let webhookDown = true;
    const console = new Recording();
    const webhook = new Recording(() => webhookDown);
    const fanOut = new FanOutLeadSink([console, webhook]);
    expect((await fanOut.publish([qualified])).failed).toEqual([k(qualified)]);
    webhookDown = false;
    expect((await fanOut.publish([qualified, tierChanged])).failed).toEqual([]);
    expect(console.published).toEqual([[k(qualified)], [k(tierChanged)]]);
    expect(webhook.published).toEqual([[k(qualified)], [k(qualified), k(tierChanged)]]);
  });

  it('works end to end with the real sinks', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pql-radar-fanout-'));
    try {
      const lines: string[] = [];
      const path = join(dir, 'leads.jsonl');
      const result = await new FanOutLeadSink([new ConsoleLeadSink((line) => lines.push(line)), new JsonlLeadSink(path)]).publish([qualified]);
      expect(result).toEqual({ failed: [] });
      expect(lines).toHaveLength(1);
      expect(JSON.parse(await readFile(path, 'utf8')).Detail).toEqual(qualified.detail);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
