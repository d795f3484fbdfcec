import { leadPath, renderHealthHtml, renderLeadHtml, renderLeadListHtml, renderMessageHtml, renderErrorHtml, leadPagesCsp, type LeadListForm } from '../analysis/lead-html';
import { healthWithPromise, type HealthReport } from '../analysis/live-health';
import { feedbackReasons } from '../core/lead-feedback';
import { feedbackConfirmation, giveFeedback } from '../core/give-feedback';
import type { FeedbackStore } from '../core/ports';
import type { Ruleset } from '../core/rules/load';
import type { DynamoDbLeadReader } from '../adapters/dynamodb/lead-reader';
import { ageMs } from '../core/days';
import { durationDays, durationRule } from '../core/rules/schema';
import { defaultHealthPeriodDays } from '../shared/settings';
import { leadChoices, leadList, leadView, unknownLeadError, type LeadFilters, type LeadSummary, type LeadView } from '../core/lead-view';
import type { EntityRef } from '../core/ports';

/**
 * The lead inspector: `pql-radar leads list|show` and the /leads pages both gather their views here, from one read
 * of the reader and core/lead-view's formatting, so the page and `--json` cannot show different figures.
 */

export const entityTypes: readonly EntityRef['type'][] = ['user', 'account', 'visitor'];

/** The leads in a tier that pass the filters, newest first, and the tiers and routes the workspace's leads are in now. */
export async function inspectLeads(reader: DynamoDbLeadReader, filters: LeadFilters): Promise<{ rows: LeadSummary[]; tiers: string[]; routes: string[] }> {
  const states = await reader.leadStates();
  return { rows: leadList(states, filters), ...leadChoices(states, filters.workspace) };
}

/** One lead's view; undefined when the table has no evaluated entity of that type and id in that workspace. */
export async function inspectLead(reader: DynamoDbLeadReader, ref: EntityRef, now: Date): Promise<LeadView | undefined> {
  const record = await reader.lead(ref, now);
  return record && leadView(record);
}

/** Rule health over the lead states (analysis/live-health.ts): what `pql-radar health` prints and /leads/health shows. */
export async function inspectHealth(reader: DynamoDbLeadReader, options: { workspace?: string | undefined; periodDays: number; now: Date }): Promise<HealthReport> {
  const states = await reader.leadStates();
  const leads = options.workspace === undefined ? states : states.filter((state) => state.ref.workspace === options.workspace);
  const report = await healthWithPromise({ leads, now: options.now, periodDays: options.periodDays }, reader);
  if (options.workspace === undefined || leads.length > 0) return report;
  // A workspace misspelt, or not evaluated yet: its zeros would read as a measurement.
  const known = [...new Set(states.map((state) => state.ref.workspace))].sort();
  const nothing = `Nothing found for workspace ${JSON.stringify(options.workspace)}: no entity of it has been evaluated${known.length > 0 ? ` (evaluated workspaces: ${known.join(', ')})` : ''}.`;
  return { ...report, warnings: [nothing, ...report.warnings] };
}

/** The error an unknown lead gets, naming what was asked for and where else the table has its id evaluated. */
export async function unknownLead(reader: DynamoDbLeadReader, ref: EntityRef): Promise<string> {
  return unknownLeadError(ref, await reader.evaluatedElsewhere(ref, entityTypes));
}

export interface HtmlPage {
  status: number;
  body: string;
  headers: Record<string, string>;
}

/** A form POSTed to a page: the request's Origin header (same-origin only) and its urlencoded body. */
export interface PostedForm {
  origin: string | undefined;
  body: string;
}

/** Answers the GET requests under /leads (and a form POSTed to one); undefined for any other path. */
export type PageHandler = (url: URL, form?: PostedForm) => Promise<HtmlPage | undefined>;

/** Host names a page may be asked for by: a page of another site rebinding its name to 127.0.0.1 gets nothing. */
export const loopbackHosts = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * The /leads pages: `/leads?tier=&route=&since=7d&workspace=`, `/leads/<type>/<id>?workspace=default` and
 * `/leads/health?since=90d&workspace=` (rule health, as `pql-radar health`). Nothing a
 * page shows is logged: a failure logs its error's name only (lead data is personal data).
 */
export function leadPages(reader: DynamoDbLeadReader, now: () => Date = () => new Date(), feedback?: { store: FeedbackStore; ruleset: Ruleset }): PageHandler {
  return async (url, form) => {
    const parts = url.pathname.split('/').slice(1);
    if (parts[0] !== 'leads') return undefined;
    if (!loopbackHosts.has(url.hostname)) return errorPage(403, `the lead inspector answers on 127.0.0.1 or localhost only, not ${url.hostname}`);
    try {
      const workspace = url.searchParams.get('workspace') ?? 'default';
      if (form) return await feedbackPosted(url, parts, form, workspace, feedback, now());
      if (parts.length === 1 || (parts.length === 2 && parts[1] === '')) return await listPage(reader, url.searchParams, now());
      if (parts.length === 2 && parts[1] === 'health') return await healthPage(reader, url.searchParams, now());
      if (parts.length !== 3) return errorPage(404, `no page ${url.pathname}: the pages are /leads, /leads/health and /leads/<type>/<id>`);
      const type = decodeURIComponent(parts[1]!);
      const id = decodeURIComponent(parts[2]!);
      if (!entityTypes.includes(type as EntityRef['type'])) return errorPage(404, `no lead type ${JSON.stringify(type)}: the types are ${entityTypes.join(', ')}`);
      const ref: EntityRef = { workspace, type: type as EntityRef['type'], id };
      const view = await inspectLead(reader, ref, now());
      if (!view) return errorPage(404, await unknownLead(reader, ref));
      // The form only where feedback is taken: on a lead, current or former (give-feedback.ts).
      return html(200, renderLeadHtml(view, feedback && view.qualification ? { reasons: Object.keys(feedbackReasons(feedback.ruleset)) } : undefined));
    } catch (error) {
      if (error instanceof URIError) return errorPage(400, `the path ${url.pathname} is not well-formed percent-encoding`);
      console.error(`lead inspector: ${error instanceof Error ? error.name : 'error'} while answering a page`);
      return errorPage(500, 'the lead inspector could not read the table; the terminal says why');
    }
  };
}

/**
 * `POST /leads/<type>/<id>/feedback`: the lead page's feedback form. Same-origin only (the form's own page sends its
 * Origin): another site's page cannot post feedback through a browser on this machine.
 */
async function feedbackPosted(url: URL, parts: string[], form: PostedForm, workspace: string, feedback: { store: FeedbackStore; ruleset: Ruleset } | undefined, now: Date): Promise<HtmlPage> {
  if (!feedback || parts.length !== 4 || parts[3] !== 'feedback') return errorPage(404, `nothing to post to at ${url.pathname}`);
  if (form.origin !== url.origin) return errorPage(403, 'feedback is accepted from the lead page itself only (same origin)');
  const type = decodeURIComponent(parts[1]!);
  if (!entityTypes.includes(type as EntityRef['type'])) return errorPage(404, `no lead type ${JSON.stringify(type)}: the types are ${entityTypes.join(', ')}`);
  const ref: EntityRef = { workspace, type: type as EntityRef['type'], id: decodeURIComponent(parts[2]!) };
  const fields = new URLSearchParams(form.body);
  const given = await giveFeedback(feedback.store, ref, { outcome: fields.get('outcome') ?? '', reason: fields.get('reason') ?? '' }, feedback.ruleset, 'page', now);
  if (!given.ok) return errorPage(given.status, given.error);
  return html(200, renderMessageHtml('Feedback recorded', feedbackConfirmation(given), leadPath(ref)));
}

async function listPage(reader: DynamoDbLeadReader, query: URLSearchParams, now: Date): Promise<HtmlPage> {
  const field = (name: string) => (query.get(name) ?? '') || undefined;
  const form: LeadListForm = { ...(query.has('workspace') ? { workspace: query.get('workspace')! } : {}), ...(field('tier') ? { tier: field('tier')! } : {}), ...(field('route') ? { route: field('route')! } : {}), ...(field('since') ? { since: field('since')! } : {}) };
  const since = form.since === undefined ? undefined : ageMs(form.since);
  if (form.since !== undefined && since === undefined) return errorPage(400, `since ${JSON.stringify(form.since)}: must be an age such as 7d, 12h or 30m`);
  const states = await reader.leadStates();
  const rows = leadList(states, {
    ...(form.workspace !== undefined ? { workspace: form.workspace } : {}),
    ...(form.tier !== undefined ? { tier: form.tier } : {}),
    ...(form.route !== undefined ? { route: form.route } : {}),
    ...(since !== undefined ? { since: new Date(now.getTime() - since) } : {}),
  });
  return html(200, renderLeadListHtml(rows, form, leadChoices(states, form.workspace)));
}

async function healthPage(reader: DynamoDbLeadReader, query: URLSearchParams, now: Date): Promise<HtmlPage> {
  const since = query.get('since') || `${defaultHealthPeriodDays}d`;
  // As `pql-radar health --since` takes it: a period under a day gives rates of no use.
  const periodDays = durationDays(since);
  if (periodDays === undefined) return errorPage(400, `since ${JSON.stringify(since)}: must be ${durationRule}`);
  const workspace = query.get('workspace') ?? undefined;
  const report = await inspectHealth(reader, { workspace, periodDays, now });
  return html(200, renderHealthHtml(report, workspace));
}

const errorPage = (status: number, message: string): HtmlPage => html(status, renderErrorHtml(status, message));

const html = (status: number, body: string): HtmlPage => ({
  status,
  body,
  headers: { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': leadPagesCsp, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' },
});
