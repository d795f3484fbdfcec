import { noClaims, productTypes, type HistoryEntry } from '../analysis/replay';
import { identityKey, parseIdentityKey, type Claim } from '../core/identity';
import type { MessageType } from '../core/segment-schema';

/**
 * A history entry (analysis/replay's historyEntry) as a partitioned backtest's temporary files hold it: the JSON of
 *
 *   [type, timestamp, owner (identityKey), messageId, converts (1 or 0), groupId, the event's name, its properties,
 *    traits, receivedAt, then the identityKey of each identifier it claims]
 *
 * with null for what it has not: reading it back works nothing out again (the owner, the conversion, the claims), and
 * the lines are shorter than the JSON of the message's fields. JSON rather than fields apart by tabs: JSON.stringify
 * writes such an array faster than its fields are joined into a line, and JSON.parse gives strings of their own, where
 * those split from a line share its text (V8's sliced strings), and the replay's engine ran measurably slower on them.
 */
export function entryText(entry: HistoryEntry): string {
  const { usage, claims } = entry;
  const fields: unknown[] = [entry.type, entry.timestamp, entry.owner, entry.messageId, entry.converts ? 1 : 0, entry.groupId ?? null, usage?.event ?? null, usage?.properties ?? null, entry.traits ?? null, entry.receivedAt ?? null];
  // A message's claims are all made for its user, at its time, by its messageId (core/identity's claimsOf).
  for (const claim of claims) fields.push(identityKey(claim.from));
  return JSON.stringify(fields);
}

type EntryFields = [MessageType, string, string, string, 0 | 1, string | null, string | null, Record<string, unknown> | null, Record<string, unknown> | null, string | null, ...string[]];

/** Where the claims begin among an entry's fields. */
const claimsAt = 10;

/** The history entry of entryText's text. */
export function textEntry(text: string): HistoryEntry {
  const fields = JSON.parse(text) as EntryFields;
  const [type, timestamp, owner, messageId, converts, groupId, event, properties, traits, receivedAt] = fields;
  const identity = parseIdentityKey(owner);
  // The fields in historyEntry's order: one shape for the code that reads them.
  return {
    type,
    timestamp,
    identity,
    owner,
    messageId,
    converts: converts === 1,
    claims: fields.length > claimsAt ? (fields.slice(claimsAt) as string[]).map((key): Claim => ({ from: parseIdentityKey(key), to: identity.id, at: timestamp, messageId })) : noClaims,
    groupId: groupId ?? undefined,
    traits: traits ?? undefined,
    usage: productTypes.has(type) ? { type, timestamp, event: event ?? undefined, properties: properties ?? undefined } : undefined,
    receivedAt: receivedAt ?? undefined,
  };
}
