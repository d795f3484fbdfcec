import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { escapeHtml } from '../analysis/html';
import { feedbackLinkLabel, verifyFeedbackToken, type FeedbackClaim } from '../core/lead-feedback';
import { laterStateOf, whenApplied } from '../core/give-feedback';
import { unknownLeadError } from '../core/lead-view';
import type { FeedbackStore } from '../core/ports';

export interface FeedbackLinkDependencies {
  store: FeedbackStore;
  /** The signing key; undefined when this deployment never signed a link (then every token is forged). */
  secret: () => Promise<string | undefined>;
  now?: () => Date;
}

/**
 * `GET /v1/feedback?t=TOKEN` answers a confirmation page and changes nothing: Slack's link previews and mail scanners
 * fetch GET links, and must not use them up. Its button POSTs the token back, which records the link's nonce and
 * keeps the feedback for the evaluator, in one write: a link works once. An expired, used, altered or unknown link
 * gets a page saying which, and changes nothing. Nothing is logged: the page shows lead ids (personal data).
 */
export function createFeedbackLinkHandler(dependencies: FeedbackLinkDependencies) {
  const now = dependencies.now ?? (() => new Date());
  return async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    const method = event.requestContext.http.method;
    if (method !== 'GET' && method !== 'POST') return page(405, 'Not supported', `${method} is not supported: open the link, then confirm`, { allow: 'GET, POST' });
    const token = method === 'POST' ? new URLSearchParams(Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8').toString('utf8')).get('t') : new URLSearchParams(event.rawQueryString ?? '').get('t');
    const secret = await dependencies.secret();
    const checked = verifyFeedbackToken(token, secret ?? '', now());
    if (!checked.ok || secret === undefined) {
      const problem = checked.ok ? ({ problem: 'forged', error: 'this deployment has not signed any feedback link' } as const) : checked;
      return page(problem.problem === 'expired' ? 410 : problem.problem === 'forged' ? 403 : 400, 'This link does not work', problem.error);
    }
    const { claim } = checked;
    const ref = { workspace: claim.workspace, type: claim.type, id: claim.id };
    if (await dependencies.store.used(claim.workspace, claim.nonce)) return used();
    const lead = await dependencies.store.state(ref);
    if (!lead) return page(404, 'Unknown lead', unknownLeadError(ref));
    if (method === 'GET') return confirmation(claim, token!);
    const given = now().toISOString();
    const kept = await dependencies.store.give(ref, { outcome: claim.outcome, reason: claim.reason, at: given, via: 'link', id: claim.nonce }, { expires: new Date(claim.expires * 1000) });
    if (!kept) return used();
    const held = lead.tier === null ? 'It is out of the tiers already, and stays out' : 'The lead leaves its tier, and stays out';
    return page(200, 'Feedback recorded', `${describe(claim)}: ${whenApplied(laterStateOf(lead, given))}. ${held} while the feedback holds it, with no notification meanwhile.`);
  };
}

const used = () => page(410, 'This link was used already', 'each feedback link works once; give new feedback with pql-radar leads feedback');
const describe = (claim: FeedbackClaim) => `${claim.type} ${JSON.stringify(claim.id)} (workspace ${JSON.stringify(claim.workspace)}): ${feedbackLinkLabel(claim)}`;

function confirmation(claim: FeedbackClaim, token: string): APIGatewayProxyStructuredResultV2 {
  const form = `<form method="post"><input type="hidden" name="t" value="${escapeHtml(token)}"><button type="submit">Confirm</button></form>`;
  return page(200, 'Confirm feedback', `${describe(claim)}?`, {}, form);
}

/** A page that loads nothing, runs nothing, and is not kept by caches or sent on as a referrer. */
function page(statusCode: number, title: string, message: string, headers: Record<string, string> = {}, extra = ''): APIGatewayProxyStructuredResultV2 {
  const body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(title)}</title></head><body style="font-family:sans-serif;max-width:40em;margin:3em auto"><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>${extra}</body></html>`;
  return {
    statusCode,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
      ...headers,
    },
    body,
  };
}
