import type { LeadState } from './lead-state';
import type { EntityRef, WriteKeyStore } from './ports';
import { identifier } from './segment-schema';
import { failureBody, type FailureStatus, type RequestFailure } from './request-failure';
import { accessOf, keyFromAuthorization, verifiedKey } from './write-key';

/**
 * The product asks too: `GET /v1/leads/user/<userId>` and `GET /v1/leads/account/<groupId>` answer, to the product's
 * backend holding a read key, whether a user or account is a lead right now, so it can show an in-app upgrade prompt
 * the moment it qualifies. Only what the product already knows or the rules decided: no traits, no signal values.
 */
export const leadStatusPathPrefix = '/v1/leads/';

/** The types a product asks about, with the field of a Segment message that names them (400s name it). */
const idFields = { user: 'userId', account: 'groupId' } as const;
export type AskedType = keyof typeof idFields;

/** An entity a product asks about: a user or an account of the read key's workspace. */
export interface AskedEntity extends EntityRef {
  type: AskedType;
}

/** The answer of a 200: the entity's lead state as the evaluator last saved it. `tier: null`: known, not a lead. */
export interface LeadStatus {
  type: AskedType;
  id: string;
  tier: string | null;
  route: string | null;
  /** Engagement and fit only where the state keeps them: leads and former leads (lead-state.ts `scores`). */
  score: { total: number; engagement?: number; fit?: number };
  /** The names of the signals that matched at the last evaluation. */
  matched: string[];
  /** When the current tier was entered; null for an entity that is not a lead. */
  since: string | null;
  evaluatedAt: string;
}

export interface LeadStatusReader {
  /** The entity's status; undefined when it has no lead state (unknown, or its events not evaluated yet). */
  leadStatus(entity: AskedEntity): Promise<LeadStatus | undefined>;
}

export interface LeadStatusDependencies {
  keys: Pick<WriteKeyStore, 'find'>;
  leads: LeadStatusReader;
}

export interface LeadStatusRequest {
  /** The request path, percent-decoded (API Gateway's HTTP API hands the Lambda `rawPath` decoded). */
  path: string;
  authorization: string | undefined;
}

export interface LeadStatusResponse {
  status: number;
  body: LeadStatus | RequestFailure;
  /** Whether the answer may be kept for a while (a status, or the absence of one); a refusal may not. */
  cacheable: boolean;
  /** What may be logged: never the id asked about, which is the product's user. */
  summary: { workspace?: string; keyId?: string; type?: AskedType; found?: boolean };
}

/** The lead status use case: authenticate a read key, check the type and id, read one entity's state. */
export async function leadStatus(request: LeadStatusRequest, dependencies: LeadStatusDependencies): Promise<LeadStatusResponse> {
  if (!request.path.startsWith(leadStatusPathPrefix)) {
    // An ingest path asked with GET (a browser's address bar, a curl without -d) does not come here: a 405 tells it
    // (ingest/http.ts methodRefusal).
    return failure(404, '', `no such endpoint: GET ${request.path}; lead status reads are ${leadStatusPathPrefix}user/<userId> or ${leadStatusPathPrefix}account/<groupId>`);
  }
  const key = keyFromAuthorization(request.authorization);
  if (!key) return failure(401, 'authorization', 'a read key is required: Authorization: Bearer <read key> (or HTTP Basic with the key as user name)');
  const record = await verifiedKey(key, (keyId) => dependencies.keys.find(keyId));
  if (!record) return failure(401, 'authorization', 'unknown or revoked read key');
  const summary = { workspace: record.workspace, keyId: record.keyId };
  if (accessOf(record) !== 'read') {
    // A write key ships in every page that sends events; letting it read would show anyone whom sales is about to call.
    return failure(403, 'authorization', 'this is a write key, which only sends events: reading lead status needs a read-only key (pql-radar keys create --read-only)', summary);
  }

  const asked = parsePath(request.path);
  if (!asked.ok) return failure(400, asked.field, asked.reason, summary);
  const status = await dependencies.leads.leadStatus({ workspace: record.workspace, type: asked.type, id: asked.id });
  if (!status) {
    return {
      ...failure(404, idFields[asked.type], `no lead status for ${asked.type} ${JSON.stringify(asked.id)}: it is unknown in this workspace, or its events are not evaluated yet`, { ...summary, type: asked.type, found: false }),
      cacheable: true,
    };
  }
  return { status: 200, body: status, cacheable: true, summary: { ...summary, type: asked.type, found: true } };
}

/** The answer for an entity's saved lead state. */
export function leadStatusOf(ref: { type: AskedType; id: string }, lead: LeadState): LeadStatus {
  // The score history is appended whenever a part changes, so its last point is the current score, if there is one.
  const parts = lead.scores?.at(-1);
  const withParts = parts !== undefined && parts.total === lead.score;
  return {
    type: ref.type,
    id: ref.id,
    tier: lead.tier,
    route: lead.route,
    score: withParts ? { total: lead.score, engagement: parts.engagement, fit: parts.fit } : { total: lead.score },
    matched: [...lead.matched],
    since: lead.tier === null ? null : lead.since,
    evaluatedAt: lead.evaluatedAt,
  };
}

/** Whether an entity type is one the product may ask about (visitors are anonymous: the product names users and accounts). */
const isAskedType = (type: string): type is AskedType => Object.hasOwn(idFields, type);

type ParsedPath = { ok: true; type: AskedType; id: string } | { ok: false; field: string; reason: string };

function parsePath(path: string): ParsedPath {
  const rest = path.startsWith(leadStatusPathPrefix) ? path.slice(leadStatusPathPrefix.length) : '';
  const slash = rest.indexOf('/');
  const type = slash < 0 ? rest : rest.slice(0, slash);
  if (!isAskedType(type)) return { ok: false, field: 'type', reason: `must be user or account, as in ${leadStatusPathPrefix}user/<userId> or ${leadStatusPathPrefix}account/<groupId>` };
  const id = identifier.safeParse(slash < 0 ? '' : rest.slice(slash + 1));
  if (!id.success) return { ok: false, field: idFields[type], reason: id.error.issues[0]!.message };
  // The path arrives percent-decoded, and bytes that are not UTF-8 decode to U+FFFD: that is not the id that was sent,
  // and may be another one's.
  if (id.data.includes('\ufffd')) return { ok: false, field: idFields[type], reason: 'must be percent-encoded UTF-8 (encodeURIComponent): it held bytes that are not UTF-8, such as %FF' };
  return { ok: true, type, id: id.data };
}

function failure(status: FailureStatus, path: string, reason: string, summary: LeadStatusResponse['summary'] = {}): LeadStatusResponse {
  return { status, body: failureBody(status, path, reason), cacheable: false, summary };
}
