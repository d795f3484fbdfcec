import { PutEventsCommand, type EventBridgeClient, type PutEventsRequestEntry, type PutEventsResultEntry } from '@aws-sdk/client-eventbridge';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelayMs } from '../../core/backoff';
import { responseExcerpt } from '../../core/delivery';
import { describeError } from '../../core/evaluate-leads';
import type { LeadEvent } from '../../core/lead-event';
import { leadEventSource, maxLeadEventDetailBytes } from '../../core/lead-event-names';
import type { LeadPublisher, PublishOutcome } from '../../core/ports';

/** EventBridge's limits for one PutEvents call: 10 entries, and their total size below 256 KB. */
const maxEntriesPerCall = 10;
const maxEntriesBytesPerCall = 256 * 1024;
/** Longest wait between two rounds, whatever the round: a Lambda must not sleep away its timeout. */
const maxDelayMs = 5_000;

export interface EventBridgePublisherOptions {
  /** Built once per Lambda container; its own retry strategy handles throttling and 5xx of whole calls. */
  client: EventBridgeClient;
  eventBusName: string;
  /** Rounds of PutEvents before an entry that keeps failing is given back to the caller. Default 8. */
  maxRounds?: number;
  /** First wait between rounds; it doubles each round, with full jitter, capped at 5 s. Default 100 ms. */
  baseDelayMs?: number;
}

interface Pending {
  key: string;
  entry: PutEventsRequestEntry;
  /** What EventBridge counts against the per-call limit (see entrySize). */
  bytes: number;
}

/**
 * Publishes lead events to the bus, at least once each. PutEvents can accept part of a
 * call and fail the rest entry by entry, so each round resends exactly the entries that failed; whatever still
 * fails after the last round is returned by idempotency key, never dropped, so the caller can keep it for later.
 */
export class EventBridgePublisher implements LeadPublisher {
  private readonly client: EventBridgeClient;
  private readonly eventBusName: string;
  private readonly maxRounds: number;
  private readonly baseDelayMs: number;

  constructor({ client, eventBusName, maxRounds = 8, baseDelayMs = 100 }: EventBridgePublisherOptions) {
    this.client = client;
    this.eventBusName = eventBusName;
    this.maxRounds = maxRounds;
    this.baseDelayMs = baseDelayMs;
  }

  async publish(events: readonly LeadEvent[]): Promise<PublishOutcome> {
    // Build and check every entry before sending any: a bad event must not leave the batch half published.
    let pending = events.map((event) => this.toPending(event));
    const givenUp: string[] = [];
    let delivered = 0;
    let callError: unknown;
    /**
     * Why what is left over failed, for the operator: the calls the SDK gave up on, and the entries' errors of the last
     * round that had any (one line each, e-mail addresses masked: AWS does not say what an error message may quote).
     */
    const callReasons = new Set<string>();
    let entryReasons = new Set<string>();

    for (let round = 0; round < this.maxRounds && pending.length > 0; round++) {
      if (round > 0) await sleep(backoffDelayMs(round, this.baseDelayMs, maxDelayMs));
      const retry: Pending[] = [];
      const roundReasons = new Set<string>();
      // Calls go one after the other: one evaluation publishes a handful of calls at most, and the bus then
      // receives the transitions in the order the evaluator produced them.
      for (const call of calls(pending)) {
        let results: PutEventsResultEntry[];
        try {
          const output = await this.client.send(new PutEventsCommand({ Entries: call.map((p) => p.entry) }));
          results = output.Entries ?? [];
        } catch (error) {
          // The SDK has already retried throttling, 5xx and network errors; what is left will not get better within
          // this invocation, so the call's entries go back to the caller rather than into another round.
          callError ??= error;
          callReasons.add(responseExcerpt(describeError(error)));
          givenUp.push(...call.map((p) => p.key));
          continue;
        }
        // Results come back in request order. Only an EventId proves delivery: an entry with an ErrorCode, or no
        // result at all, is resent.
        call.forEach((p, i) => {
          const result = results[i];
          if (result?.EventId && !result.ErrorCode) delivered++;
          else {
            retry.push(p);
            roundReasons.add(result?.ErrorCode ? responseExcerpt(`${result.ErrorCode}: ${result.ErrorMessage ?? ''}`) : 'no result for the entry');
          }
        });
      }
      if (roundReasons.size > 0) entryReasons = roundReasons;
      pending = retry;
    }

    // Nothing got through and a call failed outright (no such bus, no permission, endpoint unreachable): say why,
    // instead of answering with a list of keys that hides the cause.
    if (delivered === 0 && callError !== undefined) {
      throw new Error(`PutEvents to event bus ${this.eventBusName} failed; none of ${events.length} lead events was published`, {
        cause: callError,
      });
    }
    const failed = [...givenUp, ...pending.map((p) => p.key)];
    return failed.length > 0 ? { failed, reasons: [...callReasons, ...(pending.length > 0 ? entryReasons : [])] } : { failed };
  }

  private toPending({ detailType, detail }: LeadEvent): Pending {
    const json = JSON.stringify(detail);
    const detailBytes = Buffer.byteLength(json, 'utf8');
    const who = `${detail.workspace}/${detail.entity.type}:${detail.entity.id} (idempotencyKey ${detail.idempotencyKey})`;
    // The evaluator trims details to fit; a bigger one is a bug there, and EventBridge targets could not carry it.
    if (detailBytes > maxLeadEventDetailBytes) {
      throw new Error(`Lead event detail for ${who} is ${detailBytes} bytes, over the ${maxLeadEventDetailBytes}-byte limit`);
    }
    const time = new Date(detail.evaluatedAt);
    if (Number.isNaN(time.getTime())) throw new Error(`Lead event detail for ${who} has an invalid evaluatedAt: ${detail.evaluatedAt}`);
    const entry: PutEventsRequestEntry = {
      Source: leadEventSource,
      DetailType: detailType,
      Detail: json,
      EventBusName: this.eventBusName,
      // The time of the evaluation, not of the put: a retried delivery still says when the lead changed.
      Time: time,
    };
    return { key: detail.idempotencyKey, entry, bytes: entrySize(entry, detailBytes) };
  }
}

/**
 * Splits entries into PutEvents calls within both limits: 10 entries, and a total size below 256 KB. Ten 64 KB
 * details would pass the first and break the second, so the count alone is not enough.
 */
function calls(entries: readonly Pending[]): Pending[][] {
  const result: Pending[][] = [];
  let current: Pending[] = [];
  let bytes = 0;
  for (const p of entries) {
    if (current.length > 0 && (current.length === maxEntriesPerCall || bytes + p.bytes >= maxEntriesBytesPerCall)) {
      result.push(current);
      current = [];
      bytes = 0;
    }
    current.push(p);
    bytes += p.bytes;
  }
  if (current.length > 0) result.push(current);
  return result;
}

/** An entry's size as EventBridge computes it: Time counts 14 bytes, Source, DetailType and Detail their UTF-8 bytes. */
function entrySize(entry: PutEventsRequestEntry, detailBytes: number): number {
  return 14 + Buffer.byteLength(entry.Source ?? '', 'utf8') + Buffer.byteLength(entry.DetailType ?? '', 'utf8') + detailBytes;
}
