import { hubspotUpsert } from '../../core/crm-properties';
import { responseExcerpt, type AttemptResult } from '../../core/delivery';
import type { LeadEvent } from '../../core/lead-event';
import { httpExchange, type HttpAttemptOptions } from '../webhook/delivery';

/**
 * The HubSpot destination: one attempt to leave a lead's contact or company in the state its latest transition
 * describes (HubSpot's CRM v3 batch upsert), answered as an AttemptResult for the delivery queue to act on.
 * E-mail addresses travel only in request bodies, never in URLs, errors or excerpts.
 */

export const defaultHubspotBaseUrl = 'https://api.hubapi.com';

/**
 * HubSpot's burst limits count requests over a rolling ten seconds, and its 429 as documented carries no Retry-After:
 * a retry sooner would most likely be refused again, and count against the limit.
 */
const rateLimitWindowMs = 10_000;

/** The property a test event checks: it exists once the pql_* properties were created. */
const checkedProperty = 'pql_tier';

export interface HubspotSyncOptions extends HttpAttemptOptions {
  /** A private-app access token with the crm.objects.contacts.write and crm.objects.companies.write scopes. */
  token: string;
  /** The unique company property that holds the account id (see defaultCompanyIdProperty). */
  companyIdProperty: string;
  /** @default https://api.hubapi.com */
  baseUrl?: string;
}

/**
 * Syncs one lead event to HubSpot with one request. A user becomes a contact (by e-mail) and an account a company
 * (by `companyIdProperty`), created when missing; what cannot be matched (no e-mail, a visitor) is `skipped` without
 * a request. A test event writes nothing: it reads the pql_tier contact property instead, which proves the token
 * works and the properties were created. Network errors and timeouts are `retryable`; an answer is classified with
 * classifyStatus, with HubSpot's Retry-After when it sends one.
 */
export async function syncLeadToHubspot(event: LeadEvent, options: HubspotSyncOptions): Promise<AttemptResult> {
  if (event.detail.test) {
    const { result } = await exchange('GET', `/crm/v3/properties/contacts/${checkedProperty}`, undefined, options);
    if (result.outcome === 'delivered') result.excerpt = `the contact property ${checkedProperty} exists`;
    if (result.status === 404) result.error = `the HubSpot property ${checkedProperty} does not exist: create the pql_* properties first`;
    return result;
  }
  const upsert = hubspotUpsert(event, options.companyIdProperty);
  if ('skip' in upsert) return { outcome: 'skipped', error: upsert.skip, latencyMs: 0 };
  const { result, body } = await exchange('POST', `/crm/v3/objects/${upsert.object}/batch/upsert`, upsert.body, options);
  const answer = result.outcome === 'delivered' && body !== undefined ? upsertAnswer(body) : undefined;
  if (answer && 'error' in answer) {
    // A 2xx (207 Multi-Status) whose input failed wrote nothing: not a delivery, or the lead's later events would be
    // taken as superseded by it. Classified as HubSpot's error category says, its message masked as any excerpt.
    result.outcome = answer.error.category === 'RATE_LIMITS' ? 'retryable' : 'permanent';
    result.excerpt = responseExcerpt(`${answer.error.category}: ${answer.error.message}`);
  } else if (answer) {
    result.excerpt = `${upsert.object === 'contacts' ? 'contact' : 'company'} ${answer.id} ${answer.created ? 'created' : 'updated'}`;
  }
  return result;
}

/**
 * One request through httpExchange. A 2xx answer's excerpt is left to the caller: an upsert's echoes the contact's
 * e-mail, which must not reach the delivery log.
 */
async function exchange(method: 'GET' | 'POST', path: string, body: unknown, options: HubspotSyncOptions): Promise<{ result: AttemptResult; body?: string }> {
  const url = `${(options.baseUrl ?? defaultHubspotBaseUrl).replace(/\/+$/, '')}${path}`;
  const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const exchanged = await httpExchange(url, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) }, options);
  if (exchanged.result.outcome === 'delivered') delete exchanged.result.excerpt;
  if (exchanged.result.status === 429) exchanged.result.retryAfterMs ??= rateLimitWindowMs;
  return exchanged;
}

/**
 * What a batch upsert's answer says of its one input: the record written (HubSpot's `results[0]`), or the error it
 * reports instead (`errors[0]`, with `numErrors`), when the answer says either.
 */
function upsertAnswer(body: string): { id: string; created: boolean } | { error: { category: string; message: string } } | undefined {
  try {
    const parsed = JSON.parse(body) as { results?: { id?: unknown; new?: unknown }[]; numErrors?: unknown; errors?: { category?: unknown; message?: unknown }[] };
    const failure = parsed.errors?.[0];
    if (failure !== undefined || (typeof parsed.numErrors === 'number' && parsed.numErrors > 0)) {
      return { error: { category: typeof failure?.category === 'string' ? failure.category : 'ERROR', message: typeof failure?.message === 'string' ? failure.message : `${String(parsed.numErrors)} input failed` } };
    }
    const record = parsed.results?.[0];
    return typeof record?.id === 'string' ? { id: record.id, created: record.new === true } : undefined;
  } catch {
    return undefined;
  }
}
