/**
 * How long to wait before retry number `retry` (1 for the first retry): exponential backoff with full jitter, a
 * random wait between 0 and `baseMs` doubled at each retry, never above `maxMs`. The randomness keeps clients
 * that failed together from retrying together.
 */
export function backoffDelayMs(retry: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  return random() * Math.min(maxMs, baseMs * 2 ** (retry - 1));
}
