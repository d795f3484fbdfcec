import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { dayMs } from './days';
import type { Ruleset } from './rules/ruleset';

/**
 * Sales feedback on a lead: `done` (the team is working it, or it converted) or `disqualified`, with a reason code
 * from the rules file's `policy.feedback_reasons`. Either way the lead leaves the tiers and is held out of them for
 * the reason's hold, so it is not notified again meanwhile; a sweep re-qualifies it when the hold ends if the rules
 * still say so. Given from the CLI, the local lead page or a signed link (the token below); applied by the evaluator.
 */

export const feedbackOutcomes = ['done', 'disqualified'] as const;
export type FeedbackOutcome = (typeof feedbackOutcomes)[number];
export const feedbackSources = ['link', 'cli', 'page'] as const;
export type FeedbackSource = (typeof feedbackSources)[number];

export interface LeadFeedback {
  outcome: FeedbackOutcome;
  /** A code of `policy.feedback_reasons`; null: none given, the default hold. */
  reason: string | null;
  /** When it was given (ISO 8601): the hold counts from it. */
  at: string;
  via: FeedbackSource;
  /** Unique per feedback (a link's nonce): two given at the same millisecond stay apart. */
  id: string;
}

/** The reasons and their holds when the rules file names none. */
export const defaultFeedbackReasons: Readonly<Record<string, number>> = { not_a_fit: 30, bad_timing: 14, already_customer: 365 };
/** The hold of feedback without a reason when the rules set no `policy.cooldown` either. */
export const defaultFeedbackHoldDays = 30;

export const feedbackReasons = (ruleset: Ruleset): Readonly<Record<string, number>> => ruleset.file.policy.feedback_reasons ?? defaultFeedbackReasons;

/** Days feedback holds a lead out: its reason's, else (no reason, or one the rules no longer name) policy.cooldown's. */
export function feedbackHoldDays(feedback: Pick<LeadFeedback, 'reason'>, ruleset: Ruleset): number {
  const reasonDays = feedback.reason === null ? undefined : feedbackReasons(ruleset)[feedback.reason];
  return reasonDays ?? (ruleset.file.policy.cooldown || defaultFeedbackHoldDays);
}

export const feedbackHoldUntil = (feedback: LeadFeedback, ruleset: Ruleset): string => new Date(Date.parse(feedback.at) + feedbackHoldDays(feedback, ruleset) * dayMs).toISOString();

/** "not a fit", "Not-A-Fit" and "not_a_fit" are one code: what a person types on the command line. */
export const reasonCode = (text: string): string => text.trim().toLowerCase().replace(/[\s-]+/g, '_');

/** The reason code, or an error naming the field and the codes there are. */
export function checkFeedbackReason(reason: string | undefined, ruleset: Ruleset): { ok: true; reason: string | null } | { ok: false; error: string } {
  if (reason === undefined || reason.trim() === '') return { ok: true, reason: null };
  const code = reasonCode(reason);
  const known = Object.keys(feedbackReasons(ruleset));
  if (known.includes(code)) return { ok: true, reason: code };
  return { ok: false, error: `reason ${JSON.stringify(reason)} is not one of the rules' feedback reasons: ${known.join(', ')}` };
}

export function checkFeedbackOutcome(outcome: string | undefined): { ok: true; outcome: FeedbackOutcome } | { ok: false; error: string } {
  if (feedbackOutcomes.includes(outcome as FeedbackOutcome)) return { ok: true, outcome: outcome as FeedbackOutcome };
  return { ok: false, error: `outcome ${JSON.stringify(outcome ?? '')} must be one of ${feedbackOutcomes.join(', ')}` };
}

/** The line a feedback adds to the lead's history and to its Lead Feedback event (a reason the rules no longer name gets the default hold). */
export const feedbackReasonLine = (feedback: LeadFeedback, ruleset: Ruleset): string =>
  `feedback (${feedback.via}): ${feedback.outcome}, reason ${feedback.reason ?? 'none'}; held out of the tiers until ${feedbackHoldUntil(feedback, ruleset)}`;

/**
 * The outcome and reason of a history line feedbackReasonLine wrote; undefined for any other line. The state keeps
 * feedback only as these lines (the feedback item is deleted when applied), so rule health reads them back here,
 * next to the writer, where a change of the line's wording must change the reading too.
 */
export function feedbackOfReasonLine(line: string): Pick<LeadFeedback, 'outcome' | 'reason'> | undefined {
  const match = /^feedback \(\w+\): (\w+), reason (\S+?);/.exec(line);
  if (!match || !feedbackOutcomes.includes(match[1] as FeedbackOutcome)) return undefined;
  return { outcome: match[1] as FeedbackOutcome, reason: match[2] === 'none' ? null : match[2]! };
}

/* ------------------------------------------------------------------------------------------------------------------
 * Feedback links: one click, no login. A token is an HMAC-SHA256, with a secret only the deployment holds, over what
 * the click does (workspace, entity, outcome, reason), when it stops working, and a nonce that the link handler
 * records once, so a link is used at most once. Slack and webhook notifiers sign them into the lead events they
 * deliver (adapters/destinations.ts withFeedbackLinks); the ingest API checks them.
 * ---------------------------------------------------------------------------------------------------------------- */

export interface FeedbackClaim {
  workspace: string;
  type: 'user' | 'account' | 'visitor';
  id: string;
  outcome: FeedbackOutcome;
  reason: string | null;
  /** Unix seconds after which the link no longer works. */
  expires: number;
  nonce: string;
}

/** How long a link in a lead event works. */
export const feedbackLinkDays = 14;
export const feedbackPath = '/v1/feedback';

const tokenVersion = 'v1';
const base64url = (bytes: Buffer | string) => Buffer.from(bytes).toString('base64url');
const mac = (secret: string, payload: string) => createHmac('sha256', secret).update(`${tokenVersion}.${payload}`).digest();

export function signFeedbackToken(claim: FeedbackClaim, secret: string): string {
  const payload = base64url(JSON.stringify([claim.workspace, claim.type, claim.id, claim.outcome, claim.reason, claim.expires, claim.nonce]));
  return `${tokenVersion}.${payload}.${base64url(mac(secret, payload))}`;
}

export type FeedbackTokenCheck = { ok: true; claim: FeedbackClaim } | { ok: false; problem: 'malformed' | 'forged' | 'expired'; error: string };

/** Checks signature and expiry (not single use: the link handler's store does that); never says more than why. */
export function verifyFeedbackToken(token: string | null | undefined, secret: string, now: Date): FeedbackTokenCheck {
  const malformed = { ok: false, problem: 'malformed', error: 'the link is incomplete or not a pql-radar feedback link (query parameter t)' } as const;
  const [version, payload, signature, ...rest] = (token ?? '').split('.');
  if (version !== tokenVersion || !payload || !signature || rest.length > 0) return malformed;
  const expected = mac(secret, payload);
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, problem: 'forged', error: 'the link\'s signature does not match: it was altered or not made by this deployment' };
  let fields: unknown;
  try {
    fields = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return malformed;
  }
  const claim = claimOf(fields);
  if (!claim) return malformed;
  if (claim.expires * 1000 <= now.getTime()) return { ok: false, problem: 'expired', error: `the link expired at ${new Date(claim.expires * 1000).toISOString()}; give the feedback with pql-radar leads feedback instead` };
  return { ok: true, claim };
}

function claimOf(fields: unknown): FeedbackClaim | undefined {
  if (!Array.isArray(fields) || fields.length !== 7) return undefined;
  const [workspace, type, id, outcome, reason, expires, nonce] = fields as unknown[];
  if (typeof workspace !== 'string' || typeof id !== 'string' || typeof nonce !== 'string' || typeof expires !== 'number') return undefined;
  if (type !== 'user' && type !== 'account' && type !== 'visitor') return undefined;
  if (!feedbackOutcomes.includes(outcome as FeedbackOutcome) || (reason !== null && typeof reason !== 'string')) return undefined;
  return { workspace, type, id, outcome: outcome as FeedbackOutcome, reason: reason as string | null, expires, nonce };
}

export interface FeedbackLink {
  outcome: FeedbackOutcome;
  reason: string | null;
  url: string;
}

/** What signs links: the secret, and the ingest API's base URL the links point at. */
export interface FeedbackLinkSigner {
  secret: string;
  /** e.g. `https://abc.execute-api.eu-west-1.amazonaws.com/` or `http://127.0.0.1:3000`. */
  baseUrl: string;
}

/** A link per choice a salesperson has: done, and disqualified for each of the rules' reason codes. */
export function feedbackLinks(signer: FeedbackLinkSigner, ref: Pick<FeedbackClaim, 'workspace' | 'type' | 'id'>, reasons: readonly string[], now: Date, nonce: () => string = () => randomBytes(12).toString('base64url')): FeedbackLink[] {
  const expires = Math.floor(now.getTime() / 1000) + feedbackLinkDays * 86_400;
  const choices: { outcome: FeedbackOutcome; reason: string | null }[] = [{ outcome: 'done', reason: null }, ...reasons.map((reason) => ({ outcome: 'disqualified' as const, reason }))];
  const base = signer.baseUrl.replace(/\/+$/, '');
  return choices.map((choice) => {
    const token = signFeedbackToken({ workspace: ref.workspace, type: ref.type, id: ref.id, ...choice, expires, nonce: nonce() }, signer.secret);
    return { ...choice, url: `${base}${feedbackPath}?t=${token}` };
  });
}

export const feedbackLinkLabel = (link: Pick<FeedbackLink, 'outcome' | 'reason'>): string =>
  link.outcome === 'done' ? 'Done: we are on it' : `Disqualify: ${(link.reason ?? 'no reason').replaceAll('_', ' ')}`;
