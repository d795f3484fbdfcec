/**
 * A subscriber you can copy: a Lambda function that an EventBridge rule on the pql-radar bus invokes with lead
 * events. It validates what it receives with the same zod schema pql-radar publishes with, skips repeated
 * deliveries, and turns the event into a note for a CRM.
 *
 * Subscribe it with a rule on the bus, e.g. the pattern `{ "source": ["pql-radar"], "detail": { "route": ["sales"] } }`.
 */
import type { EventBridgeEvent } from 'aws-lambda';
import { z } from 'zod';
// In your own repository import the schema from the package path the README documents; this relative import
// only lets the example run inside the pql-radar repository.
import { leadEventDetailSchema, leadEventSource, leadEventTypes, type LeadEventDetail, type LeadEventType } from '../../functions/core/lead-event';

/** The parts of the EventBridge envelope a subscriber relies on, around pql-radar's detail. */
const leadEventSchema = z.object({
  source: z.literal(leadEventSource),
  'detail-type': z.enum(leadEventTypes),
  detail: leadEventDetailSchema,
});

/**
 * Idempotency keys of the lead events already handled. Delivery is at least once: EventBridge retries a failed or
 * throttled invocation for up to 24 hours, and pql-radar publishes a transition again if it crashed between
 * saving and publishing it. Every delivery of one transition carries the same `detail.idempotencyKey`.
 */
export interface ProcessedKeys {
  has(key: string): Promise<boolean>;
  add(key: string): Promise<void>;
}

/**
 * The last `capacity` keys seen by this Lambda instance. It catches a repeat that reaches the same warm instance,
 * which is where most retries land, but not one that reaches another instance or follows a cold start. When a
 * repeat must never get through (e.g. the CRM call is not idempotent), keep the keys in DynamoDB instead: a
 * PutItem with `attribute_not_exists(pk)` and a TTL of a few days, or the Powertools idempotency utility.
 */
export class RecentKeys implements ProcessedKeys {
  private readonly keys = new Set<string>();

  constructor(private readonly capacity: number) {}

  async has(key: string): Promise<boolean> {
    return this.keys.has(key);
  }

  async add(key: string): Promise<void> {
    this.keys.add(key);
    // A Set iterates in insertion order: the first key is the oldest.
    if (this.keys.size > this.capacity) this.keys.delete(this.keys.values().next().value!);
  }
}

export type SubscriberResult =
  | { status: 'processed'; idempotencyKey: string; note: string }
  | { status: 'duplicate'; idempotencyKey: string };

const headline: Record<LeadEventType, (detail: LeadEventDetail) => string> = {
  'Lead Qualified': (detail) => `Qualified as ${detail.tier}`,
  'Lead Tier Changed': (detail) => `Moved from ${detail.previousTier} to ${detail.tier}`,
  'Lead Disqualified': (detail) => `No longer a lead (was ${detail.previousTier})`,
  'Lead Feedback': (detail) => `Sales feedback: ${detail.feedback?.outcome ?? '?'}${detail.feedback?.reason ? ` (${detail.feedback.reason.replaceAll('_', ' ')})` : ''}, held out until ${detail.feedback?.heldUntil ?? '?'}`,
  'Lead Converted': (detail) => `Converted ${detail.conversion?.daysSinceQualification ?? '?'} days after qualifying (as ${detail.conversion?.tier ?? 'no tier'})`,
};

/**
 * A plain-text note for the lead's CRM record: why it changed, in the evaluator's own words, and what the lead
 * did. No name or e-mail: the note is attached to the record that already has them.
 */
export function crmNote(detailType: LeadEventType, detail: LeadEventDetail): string {
  const { score } = detail;
  const lines = [
    `${headline[detailType](detail)}: score ${score.total} (engagement ${score.engagement}, fit ${score.fit})` +
      (detail.route ? `, route ${detail.route}` : ''),
    ...detail.reasons.map((reason) => `- ${reason}`),
  ];
  if (detail.context.topEvents.length > 0) {
    lines.push(`Most frequent: ${detail.context.topEvents.map((event) => `${event.name} (${event.count})`).join(', ')}`);
  }
  lines.push(`pql-radar, ${detail.evaluatedAt}, rules ${detail.rulesetVersion}`);
  return lines.join('\n');
}

export interface SubscriberDependencies {
  processed: ProcessedKeys;
  /** Structured log lines. @default one JSON line on stdout */
  log?: (message: string, fields: Record<string, unknown>) => void;
}

export function createHandler({ processed, log = (message, fields) => console.log(JSON.stringify({ message, ...fields })) }: SubscriberDependencies) {
  return async (event: EventBridgeEvent<string, unknown>): Promise<SubscriberResult> => {
    const parsed = leadEventSchema.safeParse(event);
    // Throwing makes EventBridge retry and then hand the event to the target's dead-letter queue, where it can
    // be inspected; the message names the field, e.g. "→ at detail.score.total".
    if (!parsed.success) throw new Error(`not a pql-radar lead event:\n${z.prettifyError(parsed.error)}`);
    const { 'detail-type': detailType, detail } = parsed.data;
    // Identifiers and tiers only: names, e-mails and the note stay out of the logs.
    const fields = {
      detailType,
      workspace: detail.workspace,
      entityType: detail.entity.type,
      tier: detail.tier,
      previousTier: detail.previousTier,
      idempotencyKey: detail.idempotencyKey,
    };

    if (await processed.has(detail.idempotencyKey)) {
      log('lead event already processed', fields);
      return { status: 'duplicate', idempotencyKey: detail.idempotencyKey };
    }
    const note = crmNote(detailType, detail);
    // Your work goes here, e.g. add `note` to the CRM record of detail.entity.id. Record the key only once it
    // succeeded, so a failed attempt is retried rather than skipped.
    await processed.add(detail.idempotencyKey);
    log('lead event processed', fields);
    return { status: 'processed', idempotencyKey: detail.idempotencyKey, note };
  };
}

export const handler = createHandler({ processed: new RecentKeys(10_000) });
