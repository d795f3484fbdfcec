import type { EvaluatorRunSummary } from '../core/evaluate-leads';
import { failureBody, type FailureStatus } from '../core/request-failure';
import { loopbackHosts, type HtmlPage, type PageHandler } from './lead-inspector';

/** The path of the local runtime's evaluator control, which `pql-radar replay --paced` posts to. */
export const evaluatePath = '/local/evaluate';

/** Refused because the time asked for is before one the local evaluator has already run at. */
export class EvaluationTimeTooEarly extends Error {}

/**
 * `POST /local/evaluate` with `{"at": "<ISO time>"}`: one evaluator run at that time, answered with its counts. A paced
 * replay sends a day of history, then runs the evaluator at that day's end, so leads qualify on the days they would have
 * live (and rule health sees them qualify before they convert). Local runtime only: on 127.0.0.1, from a program or the
 * same origin (a page of another site cannot post to it through this machine's browser).
 */
export function evaluateRoute(evaluateAt: (at: Date) => Promise<EvaluatorRunSummary>, now: () => Date = () => new Date()): PageHandler {
  return async (url, form) => {
    if (url.pathname !== evaluatePath || !form) return undefined;
    if (!loopbackHosts.has(url.hostname)) return refuse(403, 'host', `${evaluatePath} answers on 127.0.0.1 or localhost only, not ${url.hostname}`);
    if (form.origin !== undefined && form.origin !== url.origin) return refuse(403, 'origin', `${evaluatePath} is not for other sites' pages (Origin ${form.origin})`);
    let at: unknown;
    try {
      at = (JSON.parse(form.body) as { at?: unknown }).at;
    } catch {
      return refuse(400, '', 'the body must be JSON: {"at": "<ISO time>"}');
    }
    if (typeof at !== 'string' || !/^\d{4}-\d\d-\d\dT/.test(at) || Number.isNaN(Date.parse(at))) {
      return refuse(400, 'at', `must be an ISO time such as 2026-11-30T23:59:59Z, not ${JSON.stringify(at)}`);
    }
    if (Date.parse(at) > now().getTime() + 60_000) return refuse(400, 'at', `${at} is in the future; the evaluator runs at past times or now`);
    try {
      const summary = await evaluateAt(new Date(at));
      return json(200, { evaluated: summary.evaluated, transitions: summary.transitions.length, published: summary.published });
    } catch (error) {
      if (error instanceof EvaluationTimeTooEarly) return refuse(409, 'at', error.message);
      throw error;
    }
  };
}

/** Its refusals have the body of every error answer of the local server, ingest's and the lead status API's. */
const refuse = (status: FailureStatus, path: string, reason: string): HtmlPage => json(status, failureBody(status, path, reason));

const json = (status: number, body: object): HtmlPage => ({ status, body: JSON.stringify(body), headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });
