import { z } from 'zod';

/**
 * The contract of lead events on the bus: what subscribers receive as the EventBridge `detail`, with `source` =
 * leadEventSource and `detail-type` one of leadEventTypes. Subscribers can import this schema to validate and type
 * what they receive.
 */
export const leadEventSource = 'pql-radar';
export const leadEventTypes = ['Lead Qualified', 'Lead Tier Changed', 'Lead Disqualified'] as const;
export type LeadEventType = (typeof leadEventTypes)[number];

/** EventBridge refuses entries over 256 KB; a detail stays far below, so every target can carry it. */
export const maxLeadEventDetailBytes = 64 * 1024;

const entitySchema = z.object({
  /** visitor: an anonymous visitor, only when the rules file sets `identity.anonymous_leads`. */
  type: z.enum(['user', 'account', 'visitor']),
  id: z.string(),
});

export const leadEventDetailSchema = z.object({
  workspace: z.string(),
  entity: entitySchema,
  /** The tier now; null once disqualified. */
  tier: z.string().nullable(),
  previousTier: z.string().nullable(),
  score: z.object({ total: z.number(), engagement: z.number(), fit: z.number() }),
  /** Each matched signal, with the value observed and the points it gave. */
  signals: z.array(z.object({ name: z.string(), value: z.union([z.number(), z.string(), z.boolean(), z.null()]), points: z.number() })),
  /** The route of the tier (e.g. sales, nurture); for a disqualification, the route of the tier it left. */
  route: z.string().nullable(),
  rulesetVersion: z.string(),
  evaluatedAt: z.string(),
  /** The same on every delivery of one transition: deduplicate on it. */
  idempotencyKey: z.string(),
  /** Why the lead changed, in words, for people reading a Slack message or a CRM note. */
  reasons: z.array(z.string()),
  /** The transition, score and matched signals in one line, for destinations that cannot format lists. */
  summary: z.string(),
  context: z.object({
    traits: z.object({
      name: z.string().optional(),
      email: z.string().optional(),
      company: z.string().optional(),
      plan: z.string().optional(),
    }),
    firstSeen: z.string().nullable(),
    lastSeen: z.string().nullable(),
    /** Accounts only: the members, with their tier when they are leads themselves (first 50). */
    members: z.array(z.object({ id: z.string(), tier: z.string().nullable() })).optional(),
    /** The most frequent events in the evaluation window, with their counts (first 10). */
    topEvents: z.array(z.object({ name: z.string(), count: z.number() })),
  }),
});

export type LeadEventDetail = z.infer<typeof leadEventDetailSchema>;

/** One lead event as it travels: what the evaluator publishes and every local sink receives. */
export interface LeadEvent {
  detailType: LeadEventType;
  detail: LeadEventDetail;
}

/**
 * A lead event as an EventBridge entry, with Detail parsed: the body of a lead-event webhook, and a line of the
 * local runtime's JSONL file.
 */
export interface LeadEventEnvelope {
  Source: typeof leadEventSource;
  DetailType: LeadEventType;
  Detail: LeadEventDetail;
}

export function leadEventEnvelope(event: LeadEvent): LeadEventEnvelope {
  return { Source: leadEventSource, DetailType: event.detailType, Detail: event.detail };
}

export function leadEventType(previousTier: string | null, tier: string | null): LeadEventType {
  if (previousTier === null) return 'Lead Qualified';
  return tier === null ? 'Lead Disqualified' : 'Lead Tier Changed';
}
