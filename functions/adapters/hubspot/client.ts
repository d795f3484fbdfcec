import { hubspotReadBody, hubspotSync, hubspotUpsertBody, type HubspotSync } from '../../core/crm-properties';
import { responseExcerpt, type AttemptResult } from '../../core/delivery';
import type { LeadEvent } from '../../core/lead-event';
import { httpExchange, type HttpAttemptOptions } from '../webhook/delivery';

/**
 * The HubSpot destination: one attempt to leave a lead's contact or company in the state its latest transition
 * describes (HubSpot's CRM v3 batch upsert, after a batch read when a property is only to be filled in), answered as an
 * AttemptResult for the delivery queue to act on. E-mail addresses travel only in request bodies, never in URLs,
 * errors or excerpts.
 */

export const defaultHubspotBaseUrl = 'https://api.hubapi.com';

/**
 * HubSpot's burst limits count requests over a rolling ten seconds, and its 429 as documented carries no Retry-After:
 * a retry sooner would most likely be refused again, and count against the limit.
 */
const rateLimitWindowMs = 10_000;

/** The property a test event checks: it exists once the pql_* properties were created. */
const checkedProperty = 'pql_tier';

/** The error category of a batch read's id that matches no record. */
const notFoundCategory = 'OBJECT_NOT_FOUND';

/**
 * What an operator is told when the token cannot read companies (a scope recommended, not required): what it costs,
 * and the fix. No personal data: it is logged and kept in the delivery log.
 */
export const missingReadScopeWarning =
  'the HubSpot token lacks the crm.objects.companies.read scope: until it is added to the private app, every account ' +
  'transition with a company trait writes that trait over the company name in HubSpot, even a name sales corrected';

export interface HubspotSyncOptions extends HttpAttemptOptions {
  /**
   * A private-app access token with the crm.objects.contacts.write and crm.objects.companies.write scopes, and
   * preferably crm.objects.companies.read, without which a company's name is written at every transition.
   */
  token: string;
  /** The unique company property that holds the account id (see defaultCompanyIdProperty). */
  companyIdProperty: string;
  /** @default https://api.hubapi.com */
  baseUrl?: string;
  /**
   * Waits for the destination's next request slot before an attempt's second request (the upsert after a read): the
   * caller paces attempts, so their first requests. @default no wait
   */
  pace?: () => Promise<void>;
}

/**
 * Syncs one lead event to HubSpot. A user becomes a contact (by e-mail) and an account a company (by
 * `companyIdProperty`), created when missing, with one batch upsert; when the event carries a property that is only
 * filled in (a company's name), a batch read of the record comes first, so the upsert writes it only where HubSpot has
 * no value. What cannot be matched (no e-mail, a visitor) is `skipped` without a request. A test event writes nothing
 * (checkToken). Network errors and timeouts are `retryable`; an answer is classified with classifyStatus, with
 * HubSpot's Retry-After when it sends one. A failed read fails the attempt before anything is written, so its retry
 * reads again; but a read refused for the token's missing read scope makes the upsert write the name, as pql-radar did
 * before it read names, with `warning` saying so (missingReadScopeWarning).
 *
 * Two deliveries for one new company at once both find no name and both write the company trait: no name someone set
 * is lost. HubSpot has no conditional write, so a name typed in HubSpot between the read and the upsert (a fraction of
 * a second, on a company that had none) would still be overwritten.
 */
export async function syncLeadToHubspot(event: LeadEvent, options: HubspotSyncOptions): Promise<AttemptResult> {
  if (event.detail.test) return checkToken(event, options);
  const sync = hubspotSync(event, options.companyIdProperty);
  if ('skip' in sync) return { outcome: 'skipped', error: sync.skip, latencyMs: 0 };
  let held: Record<string, string | null> = {};
  let readMs = 0;
  let readScopeMissing = false;
  if (Object.keys(sync.ifEmpty).length > 0) {
    const read = await readHeld(sync, options);
    if ('failed' in read) return read.failed;
    ({ held, latencyMs: readMs, scopeMissing: readScopeMissing } = read);
    await options.pace?.();
  }
  const { result, body } = await exchange('POST', `/crm/v3/objects/${sync.object}/batch/upsert`, hubspotUpsertBody(sync, held), options);
  result.latencyMs += readMs;
  if (readScopeMissing) result.warning = missingReadScopeWarning;
  const answer = result.outcome === 'delivered' && body !== undefined ? batchAnswer(body) : undefined;
  const record = answer?.results[0];
  if (answer?.error) {
    // A 2xx (207 Multi-Status) whose input failed wrote nothing: not a delivery, or the lead's later events would be
    // taken as superseded by it.
    refuse(result, answer.error);
  } else if (typeof record?.id === 'string') {
    result.excerpt = `${sync.object === 'contacts' ? 'contact' : 'company'} ${record.id} ${record.new === true ? 'created' : 'updated'}`;
  }
  return result;
}

/**
 * A test event writes nothing. It reads the pql_tier contact property, which proves the token works and the
 * properties were created. Then it makes the read an account delivery makes (for the test lead's id, which no company
 * has), only to learn whether the token has the companies read scope: without it the test still passes, its `warning`
 * saying what that costs. Any other answer to that read is left alone: a deployment without account rules may well
 * have no company id property for it to read by, and needs none.
 */
async function checkToken(event: LeadEvent, options: HubspotSyncOptions): Promise<AttemptResult> {
  const { result } = await exchange('GET', `/crm/v3/properties/contacts/${checkedProperty}`, undefined, options);
  if (result.status === 404) result.error = `the HubSpot property ${checkedProperty} does not exist: create the pql_* properties first`;
  if (result.outcome !== 'delivered') return result;
  result.excerpt = `the contact property ${checkedProperty} exists`;
  await options.pace?.();
  const read = await exchange('POST', '/crm/v3/objects/companies/batch/read', hubspotReadBody(options.companyIdProperty, event.detail.entity.id, ['name']), options);
  result.latencyMs += read.result.latencyMs;
  if (refusedForScope(read.result, read.body)) result.warning = missingReadScopeWarning;
  return result;
}

/**
 * The values the record holds for `sync.ifEmpty`, read by its unique property: none when there is no record yet
 * (HubSpot reports the id it did not find as an OBJECT_NOT_FOUND error, in a 207 Multi-Status). Or the attempt's
 * result when the read failed: then nothing is written, since a write without knowing could overwrite a value
 * someone set.
 *
 * Except a read refused for the token's missing read scope (`scopeMissing`): a token made before pql-radar read
 * names has only the write scopes, and its deliveries go on as they did then, the name written from the trait (nothing
 * held), rather than fail until dead-lettered. Any other 403 fails the attempt as before: it tells nothing of what the
 * company holds and is no sign of such a token; what refuses a token most likely refuses its upsert as well, and a
 * missing-scope warning would send the operator the wrong way.
 */
async function readHeld(sync: HubspotSync, options: HubspotSyncOptions): Promise<{ held: Record<string, string | null>; latencyMs: number; scopeMissing: boolean } | { failed: AttemptResult }> {
  const { result, body } = await exchange('POST', `/crm/v3/objects/${sync.object}/batch/read`, hubspotReadBody(sync.idProperty, sync.id, Object.keys(sync.ifEmpty)), options);
  if (refusedForScope(result, body)) return { held: {}, latencyMs: result.latencyMs, scopeMissing: true };
  if (result.outcome !== 'delivered') return { failed: result };
  const answer = body === undefined ? undefined : batchAnswer(body);
  if (answer === undefined) return { failed: { ...result, outcome: 'retryable', excerpt: 'the batch read answered 2xx with a body that is not JSON' } };
  if (answer.error && answer.error.category !== notFoundCategory) return { failed: refuse(result, answer.error) };
  const properties = answer.results[0]?.properties;
  return { held: typeof properties === 'object' && properties !== null ? (properties as Record<string, string | null>) : {}, latencyMs: result.latencyMs, scopeMissing: false };
}

/**
 * Whether HubSpot refused a request because the token has not been granted a scope it needs: a 403 whose error
 * category is MISSING_SCOPES. The scopes its `errors[].context` names are not relied on: they come under
 * `requiredScopes` or `requiredGranularScopes` depending on the API, and have been known to name the wrong one.
 */
function refusedForScope(result: AttemptResult, body: string | undefined): boolean {
  if (result.status !== 403 || body === undefined) return false;
  try {
    return (JSON.parse(body) as { category?: unknown }).category === 'MISSING_SCOPES';
  } catch {
    return false;
  }
}

/**
 * A 2xx whose input HubSpot reports failed, classified as its error category says (a rate limit is retried, anything
 * else is not), its message masked as any excerpt.
 */
function refuse(result: AttemptResult, error: { category: string; message: string }): AttemptResult {
  result.outcome = error.category === 'RATE_LIMITS' ? 'retryable' : 'permanent';
  result.excerpt = responseExcerpt(`${error.category}: ${error.message}`);
  return result;
}

/**
 * One request through httpExchange. A 2xx answer's excerpt is left to the caller: an upsert's or a read's echoes the
 * contact's e-mail, which must not reach the delivery log.
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

interface BatchRecord {
  id?: unknown;
  new?: unknown;
  properties?: unknown;
}

/**
 * What a batch answer (upsert or read, of one input) says: the records it returns (`results`) and the error it reports
 * for the input (`errors[0]`, with `numErrors`), if any; undefined when the answer is not JSON.
 */
function batchAnswer(body: string): { results: BatchRecord[]; error?: { category: string; message: string } } | undefined {
  try {
    const parsed = JSON.parse(body) as { results?: unknown; numErrors?: unknown; errors?: { category?: unknown; message?: unknown }[] };
    const results = Array.isArray(parsed.results) ? (parsed.results as BatchRecord[]) : [];
    const failure = parsed.errors?.[0];
    if (failure === undefined && !(typeof parsed.numErrors === 'number' && parsed.numErrors > 0)) return { results };
    return {
      results,
      error: {
        category: typeof failure?.category === 'string' ? failure.category : 'ERROR',
        message: typeof failure?.message === 'string' ? failure.message : `${String(parsed.numErrors)} input failed`,
      },
    };
  } catch {
    return undefined;
  }
}
