import { randomBytes } from 'node:crypto';
import { checkFeedbackOutcome, checkFeedbackReason, type FeedbackSource, type LeadFeedback } from './lead-feedback';
import type { LeadState } from './lead-state';
import { unknownLeadError } from './lead-view';
import type { EntityRef, FeedbackStore } from './ports';
import type { Ruleset } from './rules/load';

export type GivenFeedback =
  /** `laterState`: the time of the lead's state, when a pass of a later time than `now` saved it (evaluate --at). */
  | { ok: true; feedback: LeadFeedback; laterState?: string }
  /** `neverEvaluated`: no state of that type and id in that workspace, where a caller that can look elsewhere says where. */
  | { ok: false; status: 400 | 404; error: string; neverEvaluated?: true };

/**
 * Feedback from the CLI or the lead page: checked against the rules (outcome, reason) and the table (a lead, current
 * or former), then kept for the evaluator. Bad input changes nothing and says which field.
 */
export async function giveFeedback(
  store: FeedbackStore,
  ref: EntityRef,
  input: { outcome?: string; reason?: string },
  ruleset: Ruleset,
  via: Exclude<FeedbackSource, 'link'>,
  now: Date,
): Promise<GivenFeedback> {
  const outcome = checkFeedbackOutcome(input.outcome);
  if (!outcome.ok) return { ok: false, status: 400, error: outcome.error };
  const reason = checkFeedbackReason(input.reason, ruleset);
  if (!reason.ok) return { ok: false, status: 400, error: reason.error };
  const lead = await store.state(ref);
  if (!lead) return { ok: false, status: 404, error: unknownLeadError(ref), neverEvaluated: true };
  // A former lead takes feedback: its hold keeps it out of the tiers (already_customer: a year). One that never
  // qualified is no one's lead: its feedback would be a Lead Feedback event with no tier, about no one sales was told of.
  if (!lead.qualification) return { ok: false, status: 404, error: `${ref.type} ${JSON.stringify(ref.id)} in workspace ${JSON.stringify(ref.workspace)} is not a lead: it has never qualified for a tier` };
  const feedback: LeadFeedback = { outcome: outcome.outcome, reason: reason.reason, at: now.toISOString(), via, id: randomBytes(12).toString('base64url') };
  await store.give(ref, feedback);
  const laterState = laterStateOf(lead, feedback.at);
  return { ok: true, feedback, ...(laterState !== undefined ? { laterState } : {}) };
}

/**
 * What was kept and when the evaluator applies it, as the CLI and the lead page confirm it. No run decides a lead at
 * a time before its state's (core/evaluate-leads), so after a pass of a later time the feedback waits for that time.
 */
export function feedbackConfirmation(given: Extract<GivenFeedback, { ok: true }>): string {
  return `${given.feedback.outcome}${given.feedback.reason ? `, ${given.feedback.reason}` : ''}; ${whenApplied(given.laterState)}`;
}

/** The time of the lead's state when a pass of a later time than `at` saved it (evaluate --at): feedback given at `at` waits for it. */
export const laterStateOf = (lead: Pick<LeadState, 'evaluatedAt'>, at: string): string | undefined => (lead.evaluatedAt > at ? lead.evaluatedAt : undefined);

/** When the evaluator applies feedback: at its next run, or, after a pass of a later time saved the lead (`laterState`), at that time. */
export function whenApplied(laterState: string | undefined): string {
  if (laterState === undefined) return "the evaluator's next run applies it";
  return `the evaluator applies it at its first run from ${laterState}: a pass of that later time (evaluate --at) saved this lead; evaluate --once --at ${laterState} applies it now`;
}

