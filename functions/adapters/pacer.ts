import { setTimeout as delay } from 'node:timers/promises';

/**
 * Spaces requests to at most `perSecond` a second: each wait() takes the next free slot and resolves when it comes.
 * A destination's notifier handles one batch at a time (its FIFO queue has one message group), so a pacer per
 * process keeps the destination's rate; Slack, for one, allows one message per second per webhook.
 */
export class Pacer {
  #next = 0;
  readonly #intervalMs: number;

  constructor(
    perSecond: number,
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<unknown> = (ms) => delay(ms),
  ) {
    this.#intervalMs = 1000 / perSecond;
  }

  async wait(): Promise<void> {
    const now = this.now();
    const slot = Math.max(now, this.#next);
    this.#next = slot + this.#intervalMs;
    if (slot > now) await this.sleep(slot - now);
  }
}
