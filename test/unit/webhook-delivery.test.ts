import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from '../../functions/adapters/backoff';
import { deliverWebhook } from '../../functions/adapters/webhook/delivery';

describe('backoffDelayMs', () => {
  it('waits at random up to the base doubled at each retry, never above the cap', () => {
    const highest = () => 1 - Number.EPSILON;
    expect([1, 2, 3, 4].map((retry) => Math.round(backoffDelayMs(retry, 100, 5_000, highest)))).toEqual([100, 200, 400, 800]);
    expect(backoffDelayMs(20, 100, 5_000, highest)).toBeLessThanOrEqual(5_000);
    expect(backoffDelayMs(3, 100, 5_000, () => 0)).toBe(0);
  });
});

describe('deliverWebhook', () => {
  const request = () => ({ headers: { 'content-type': 'application/json' }, body: '{}' });

  /** A fetch that answers with `statuses` in turn and keeps the responses, to see whether their bodies were read. */
  function answering(...statuses: number[]) {
    const responses: Response[] = [];
    const fetch = async () => {
      const response = new Response('answer', { status: statuses[responses.length] ?? 200 });
      responses.push(response);
      return response;
    };
    return { fetch, responses };
  }

  it('reads every answer to the end, so the connection can be reused', async () => {
    const { fetch, responses } = answering(503, 500);
    const sleeps: number[] = [];
    const result = await deliverWebhook('https://hooks.example.com', request, { fetch, sleep: async (ms) => void sleeps.push(ms) });
    expect(result).toEqual({ delivered: true, attempts: 3, status: 200 });
    expect(responses.map((response) => response.bodyUsed)).toEqual([true, true, true]);
    expect(sleeps).toHaveLength(2);
  });

  it('makes one attempt when asked for one, and says why it failed', async () => {
    const { fetch } = answering(503);
    expect(await deliverWebhook('https://hooks.example.com', request, { fetch, maxAttempts: 1 })).toEqual({ delivered: false, attempts: 1, status: 503 });
    const unreachable = await deliverWebhook('https://hooks.example.com', request, {
      maxAttempts: 1,
      fetch: async () => {
        throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
      },
    });
    expect(unreachable).toEqual({ delivered: false, attempts: 1, error: 'fetch failed (ECONNREFUSED)' });
  });

  it('builds the request again for each attempt, at that attempt\'s time', async () => {
    const { fetch } = answering(502);
    const times: number[] = [];
    let clock = 1_000;
    await deliverWebhook('https://hooks.example.com', (nowMs) => (times.push(nowMs), request()), { fetch, now: () => (clock += 1_000), sleep: async () => {} });
    expect(times).toEqual([2_000, 4_000]);
  });
});
