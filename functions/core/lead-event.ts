import { z } from 'zod';
import { leadEventSource, type LeadEventType } from './lead-event-names';

/**
 * The contract of lead events on the bus: what subscribers receive as the EventBridge `detail`, with `source` =
 * leadEventSource and `detail-type` one of leadEventTypes. Subscribers can import this schema to validate and type
 * what they receive.
 */
export { leadEventSource, leadEventType, leadEventTypes, maxLeadEventDetailBytes, type LeadEventType } from './lead-event-names';

const entitySchema = z.object({
  /** visitor: an anonymous visitor, only when the rules file sets `identity.anonymous_leads`. */
  type: z.enum(['user', 'account', 'visitor']),
  id: z.string(),
});

export const leadEventDetailSchema = z.object({
  workspace: z.string(),
  entity: entitySchema,
  /** The tier now; null once disqualified, or once converted unless the rules keep customers in the tiers. */
  tier: z.string().nullable(),
  previousTier: z.string().nullable(),
  score: z.object({ total: z.number(), engagement: z.number(), fit: z.number() }),
  /** Each matched signal, with the value observed and the points it gave. */
  signals: z.array(z.object({ name: z.string(), value: z.union([z.number(), z.string(), z.boolean(), z.null()]), points: z.number() })),
  /**
   * The route of the tier (e.g. sales, nurture), or the one its route map chose from the lead's traits; for a
   * disqualification, the route of the tier it left; for a conversion, the route of the tier held at the time (or, when
   * it held none, of the tier it last qualified in). A map's route is the one the current traits choose.
   */
  route: z.string().nullable(),
  owner: z
    .string()
    .nullable()
    .optional()
    .describe(
      "Who owns the lead: the value of the trait the tier names as owner (a user's own, or the first of their accounts by " +
        'account id that has it), e.g. an e-mail, a Slack member id or a HubSpot owner id; null when that trait is not set. ' +
        'Absent when the tier names no owner trait.',
    ),
  rulesetVersion: z.string(),
  evaluatedAt: z.string(),
  /** The same on every delivery of one transition: deduplicate on it. */
  idempotencyKey: z.string(),
  /** Why the lead changed, in words, for people reading a Slack message or a CRM note. */
  reasons: z.array(z.string()),
  /** The transition, score and matched signals in one line, for destinations that cannot format lists. */
  summary: z.string(),
  /** A sample from `pql-radar destinations test`: no one qualified, act on nothing. Absent on real lead events. */
  test: z.literal(true).optional(),
  /** Lead Converted only: the conversion, and the qualification it followed. */
  conversion: z
    .object({
      /** When the conversion happened (the converting message's time, as the rules file defines conversion). */
      convertedAt: z.string(),
      /** The tier held at the time; null when the lead had been disqualified before converting. */
      tier: z.string().nullable(),
      /** When the lead last qualified, the tier it qualified in, and the signals it qualified on. */
      qualifiedAt: z.string(),
      qualifiedTier: z.string(),
      qualifiedOn: z.array(z.string()),
      /** Whole days from the qualification to the conversion. */
      daysSinceQualification: z.number(),
    })
    .optional(),
  /** Lead Feedback only: what sales said (core/lead-feedback.ts); the lead is out of the tiers until `heldUntil`. */
  feedback: z
    .object({
      outcome: z.enum(['done', 'disqualified']),
      /** A code of the rules file's policy.feedback_reasons, e.g. not_a_fit; null when none was given. */
      reason: z.string().nullable(),
      givenAt: z.string(),
      via: z.enum(['link', 'cli', 'page']),
      heldUntil: z.string(),
    })
    .optional(),
  /**
   * Lead Qualified and Lead Tier Changed as delivered to Slack and webhooks (never on the bus): one-click feedback
   * links (signed, expiring, single use), done and disqualified for each reason. The link opens a confirmation page;
   * the feedback is applied by its button (a POST), so a link previewed or prefetched by Slack or a scanner changes nothing.
   */
  feedbackLinks: z.array(z.object({ outcome: z.enum(['done', 'disqualified']), reason: z.string().nullable(), url: z.string() })).optional(),
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
