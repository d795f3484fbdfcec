import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { cli } from '../support/cli';

/** `pql-radar rejected list` against what the local runtime's ingest refused. */

let dev: DevRuntime;
const run = (...args: string[]) => cli('--endpoint', dev.endpoint, '--table', dev.tableName, ...args);

beforeAll(async () => {
  dev = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `rejected-${randomUUID()}`, evaluateEveryMs: 0 });
  // Three tracks without a userId or anonymousId: each is refused and quarantined.
  const response = await fetch(`${dev.url}/v1/batch`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${dev.writeKey}:`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ batch: ['m-1', 'm-2', 'm-3'].map((messageId) => ({ type: 'track', event: 'Dashboard Created', messageId })) }),
  });
  expect(((await response.json()) as { rejected: unknown[] }).rejected).toHaveLength(3);
});

afterAll(async () => {
  await dev?.stop();
});

describe('pql-radar rejected list', () => {
  it('says on stderr when --limit cut the list, and nothing when it did not', async () => {
    const all = await run('rejected', 'list', '--workspace', 'default');
    expect(all.code).toBe(0);
    expect(all.stderr).toBe('');
    const lines = all.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines.every((line) => line.includes('  default  #'))).toBe(true);

    const cut = await run('rejected', 'list', '--limit', '2', '--json');
    expect(cut.code).toBe(0);
    expect(cut.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { workspace: string }).workspace)).toEqual(['default', 'default']);
    expect(cut.stderr).toBe('more rejected messages in workspace default than the 2 shown (--limit): a higher --limit shows them\n');

    const exact = await run('rejected', 'list', '--limit', '3');
    expect(exact.stdout.trim().split('\n')).toEqual(lines);
    expect(exact.stderr).toBe('');
  });
});
