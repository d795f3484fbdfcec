import { identifyTraits, isPlainObject } from './message-traits';
import { traitHolds } from './rules/conditions';
import { whereHolds } from './rules/engine';
import type { ConversionRule } from './rules/schema';

/**
 * Conversion detection, as the rules file's `conversion` defines it: the one place that says whether a message
 * converts its user or account, used by the evaluator (on stored messages) and by the backtest and discover (on the
 * event stream), so the running system and the analyses agree on who converted and when. Pure.
 */

/** What detection reads of a message, as ingest stores it (the Segment message with its resolved timestamp). */
export interface ConversionMessage {
  type: string;
  timestamp: string;
  event?: unknown;
  properties?: unknown;
  traits?: unknown;
  context?: unknown;
}

/**
 * Whether the message converts: a track call of the conversion event whose properties pass `where`; or, for a trait
 * rule, the call that sets the entity's traits (identify for a user, group for an account) giving the trait a value
 * that meets `is`. A call that does not carry the trait changes nothing, so `not_in` or `exists: false` never fire
 * on calls about other traits.
 */
export function convertsBy(rule: ConversionRule, message: ConversionMessage, level: 'user' | 'account'): boolean {
  if (rule.event !== undefined) {
    // Accounts have no events of their own: they convert through their members (accountConversion).
    return level === 'user' && message.type === 'track' && message.event === rule.event && whereHolds(rule.where, isPlainObject(message.properties) ? message.properties : {});
  }
  if (message.type !== (level === 'user' ? 'identify' : 'group')) return false;
  const traits = level === 'user' ? identifyTraits(message) : message.traits;
  return isPlainObject(traits) && traitsConvert(rule, traits);
}

/** Whether traits meet a trait rule: the trait is present and its value meets `is`. Event rules: never. */
export function traitsConvert(rule: ConversionRule, traits: Record<string, unknown>): boolean {
  return rule.trait !== undefined && rule.is !== undefined && Object.hasOwn(traits, rule.trait) && traitHolds(rule.is, traits[rule.trait]);
}

/** The time of a user's earliest converting message (they may come in any order), or null when none converts. */
export function firstConversion(rule: ConversionRule, messages: Iterable<ConversionMessage>): string | null {
  let first: string | null = null;
  for (const message of messages) if (convertsBy(rule, message, 'user') && (first === null || message.timestamp < first)) first = message.timestamp;
  return first;
}

/**
 * When an account converted, as its evaluation sees it: at its first member's conversion, as the account signals roll
 * up their members; or, for a trait rule, when its own group traits meet the rule, at `now` (the time of evaluation:
 * an account's stored profile keeps its traits, not the time each was set). Null when neither holds.
 */
export function accountConversion(rule: ConversionRule, traits: Record<string, unknown>, memberConversions: Iterable<string | null | undefined>, now: Date): string | null {
  let first: string | null = null;
  for (const at of memberConversions) if (at != null && (first === null || at < first)) first = at;
  if (traitsConvert(rule, traits)) {
    const evaluatedAt = now.toISOString();
    if (first === null || evaluatedAt < first) first = evaluatedAt;
  }
  return first;
}

/** The rule in words, for reports: `event "Order Completed" where {...}` or `trait "plan" {"in":["pro"]}`. */
export function describeConversion(rule: ConversionRule): string {
  if (rule.event !== undefined) return `event "${rule.event}"${rule.where !== undefined ? ` where ${JSON.stringify(rule.where)}` : ''}`;
  return `trait "${rule.trait}" ${JSON.stringify(rule.is)}`;
}
