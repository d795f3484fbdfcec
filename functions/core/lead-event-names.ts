/**
 * The lead events' source, detail types and size budget, apart from their zod schema (lead-event.ts, which re-exports
 * them): the evaluator's bundle needs these few constants, not the schema it would build at every cold start.
 */
export const leadEventSource = 'pql-radar';
export const leadEventTypes = ['Lead Qualified', 'Lead Tier Changed', 'Lead Disqualified', 'Lead Converted', 'Lead Feedback'] as const;
export type LeadEventType = (typeof leadEventTypes)[number];

/** EventBridge refuses entries over 256 KB; a detail stays far below, so every target can carry it. */
export const maxLeadEventDetailBytes = 64 * 1024;

export function leadEventType(previousTier: string | null, tier: string | null, converted = false): LeadEventType {
  if (converted) return 'Lead Converted';
  if (previousTier === null) return 'Lead Qualified';
  return tier === null ? 'Lead Disqualified' : 'Lead Tier Changed';
}
