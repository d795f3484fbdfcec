import { appendFile, mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { maskEmails, responseExcerpt } from '../core/delivery';
import { describeError } from '../core/evaluate-leads';
import { leadEventEnvelope, type LeadEvent, type LeadEventDetail } from '../core/lead-event';
import type { LeadPublisher, PublishOutcome } from '../core/ports';

/**
 * Where lead events go when pql-radar runs locally (`npm start`) instead of on the EventBridge bus: the console and
 * a JSONL file, with the delivery worker's queues (webhooks) through FanOutLeadSink. Each is a LeadPublisher.
 */

const noFailures = (): { failed: string[] } => ({ failed: [] });
const keysOf = (events: readonly LeadEvent[]) => events.map((event) => event.detail.idempotencyKey);

// ---------------------------------------------------------------------------------------------------------------
// Console


/**
 * One readable line per event, for a developer watching `npm start`. It never shows personal data: no traits
 * (name, email), and anything shaped like an email address, or equal to the lead's name or email, is masked
 * wherever it appears (an id, a signal value, a reason).
 */
export function formatLeadEvent(event: LeadEvent): string {
  const { detail } = event;
  const heading = `LEAD ${event.detailType.replace(/^Lead /, '').toUpperCase()}`;
  const tier = event.detailType === 'Lead Qualified' && detail.previousTier === null ? (detail.tier ?? 'none') : `${detail.previousTier ?? 'none'} -> ${detail.tier ?? 'none'}`;
  const { total, engagement, fit } = detail.score;
  const signals = detail.signals.length === 0 ? 'none' : detail.signals.map((signal) => `${signal.name}=${signalValue(signal.value)}`).join(', ');
  const parts = [
    heading,
    `${detail.entity.type} ${detail.entity.id} (${detail.workspace})`,
    `tier ${tier}`,
    `score ${total} (engagement ${engagement}, fit ${fit})`,
    `route ${detail.route ?? 'none'}`,
    ...(detail.owner ? [`owner ${detail.owner}`] : []),
    `signals: ${signals}`,
  ];
  if (detail.context.members !== undefined) parts.push(`members ${detail.context.members.length}`);
  if (detail.reasons.length > 0) parts.push(`reasons: ${detail.reasons.join('; ')}`);
  parts.push(`key ${detail.idempotencyKey}`);
  return redact(parts.join('  '), detail);
}

function signalValue(value: LeadEventDetail['signals'][number]['value']): string {
  if (typeof value === 'string') return /^[\w.:/+-]+$/.test(value) ? value : JSON.stringify(value);
  return String(value);
}

function redact(line: string, detail: LeadEventDetail): string {
  let out = maskEmails(line.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, ' '));
  for (const value of [detail.context.traits.email, detail.context.traits.name]) {
    const trimmed = value?.trim();
    if (trimmed && trimmed.length >= 3) out = out.split(trimmed).join('[redacted]');
  }
  return out;
}

export class ConsoleLeadSink implements LeadPublisher {
  constructor(private readonly write: (line: string) => void = console.log) {}

  async publish(events: readonly LeadEvent[]): Promise<{ failed: string[] }> {
    const failed: string[] = [];
    for (const event of events) {
      try {
        this.write(formatLeadEvent(event));
      } catch {
        failed.push(event.detail.idempotencyKey);
      }
    }
    return { failed };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// JSONL file

/**
 * Appends one JSON line per event, `{"Source":"pql-radar","DetailType":...,"Detail":{...}}`, to `path` (its
 * directory is created). It never truncates. The lines of one publish call go in one append, and publish calls
 * on one sink are serialised, so batches do not interleave. If an earlier run died mid-write and left a partial
 * last line, a newline is added first so the new lines still parse.
 */
export class JsonlLeadSink implements LeadPublisher {
  #queue: Promise<unknown> = Promise.resolve();
  #checkTail = true;

  constructor(readonly path: string) {}

  publish(events: readonly LeadEvent[]): Promise<{ failed: string[] }> {
    if (events.length === 0) return Promise.resolve(noFailures());
    const lines = events.map((event) => `${JSON.stringify(leadEventEnvelope(event))}\n`).join('');
    const run = this.#queue.then(() => this.#append(lines, events));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #append(lines: string, events: readonly LeadEvent[]): Promise<{ failed: string[] }> {
    try {
      if (this.#checkTail) {
        await mkdir(dirname(this.path), { recursive: true });
        if (await endsWithPartialLine(this.path)) lines = `\n${lines}`;
        this.#checkTail = false;
      }
      await appendFile(this.path, lines, 'utf8');
      return noFailures();
    } catch {
      // A failed append may have written part of the batch: check the tail again before the next one.
      this.#checkTail = true;
      return { failed: keysOf(events) };
    }
  }
}

async function endsWithPartialLine(path: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  try {
    const { size } = await handle.stat();
    if (size === 0) return false;
    const last = Buffer.alloc(1);
    await handle.read(last, 0, 1, size - 1);
    return last[0] !== 0x0a;
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Fan-out

/**
 * Publishes every event to every sink, in parallel. An event counts as failed if any sink failed it (a sink that
 * throws fails all of the call's events). When the caller publishes a failed event again, it goes only to the
 * sinks that have not had it yet: this sink remembers the last `rememberDelivered` keys each sink took, so a
 * queue that cannot be written does not make the console and the JSONL file repeat the lead on every retry.
 */
export class FanOutLeadSink implements LeadPublisher {
  readonly #delivered: Set<string>[];

  constructor(
    private readonly sinks: readonly LeadPublisher[],
    private readonly rememberDelivered = 10_000,
  ) {
    this.#delivered = sinks.map(() => new Set<string>());
  }

  async publish(events: readonly LeadEvent[]): Promise<PublishOutcome> {
    const results = await Promise.all(
      this.sinks.map(async (sink, index): Promise<PublishOutcome> => {
        const delivered = this.#delivered[index]!;
        const due = events.filter((event) => !delivered.has(event.detail.idempotencyKey));
        if (due.length === 0) return { failed: [] };
        let result: PublishOutcome;
        try {
          result = await sink.publish(due);
        } catch (error) {
          result = { failed: keysOf(due), reasons: [responseExcerpt(describeError(error))] };
        }
        const failedSet = new Set(result.failed);
        for (const key of keysOf(due)) if (!failedSet.has(key)) remember(delivered, key, this.rememberDelivered);
        return result;
      }),
    );
    const failed = [...new Set(results.flatMap((result) => result.failed))];
    return failed.length > 0 ? { failed, reasons: [...new Set(results.flatMap((result) => result.reasons ?? []))] } : { failed };
  }
}

function remember(keys: Set<string>, key: string, limit: number) {
  if (limit <= 0) return;
  keys.delete(key);
  keys.add(key);
  // A Set iterates in insertion order: the first key is the oldest.
  while (keys.size > limit) keys.delete(keys.values().next().value!);
}
