import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Write keys made here look like `pqr_<keyId>_<secret>`. The keyId is public (it names the key in `keys list`,
 * logs and the table); only a SHA-256 of the secret is stored, and it is compared in constant time.
 * A key brought from elsewhere (an existing Segment write key, or `dev --write-key`) is any string of
 * 12 to 256 characters; its keyId is derived from its hash and the whole key is its secret.
 *
 * Read keys (`pqr_read_<keyId>_<secret>`) let a product's backend read lead status and nothing else. The prefix only
 * makes them recognisable (in a config, a log, a secret scanner); what a key may do is its record's `access`.
 */
const keyPattern = /^pqr_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
const readKeyPattern = /^pqr_read_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
const importedKeyPattern = /^[\x21-\x7e]{12,256}$/;

export const workspacePattern = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** Refuses a workspace name no key can have: the CLI checks it before anything is started or written. */
export function checkWorkspace(workspace: string): void {
  if (!workspacePattern.test(workspace)) {
    throw new Error(`workspace "${workspace}" is not valid: use 1-63 lowercase letters, digits, "-" or "_", starting with a letter or digit`);
  }
}

export interface ParsedWriteKey {
  keyId: string;
  secret: string;
}

/** What a key may do: send events into its workspace (`write`), or read its leads' status and nothing else (`read`). */
export type KeyAccess = 'write' | 'read';

export interface WriteKeyRecord {
  keyId: string;
  workspace: string;
  secretHash: string;
  createdAt: string;
  revokedAt?: string;
  /** Absent in records of write keys, and in every record made before read keys existed. */
  access?: KeyAccess;
}

export const accessOf = (record: WriteKeyRecord): KeyAccess => record.access ?? 'write';

export function generateWriteKey(access: KeyAccess = 'write'): { keyId: string; key: string; secret: string } {
  const keyId = randomBytes(8).toString('hex').slice(0, 12);
  const secret = randomBytes(32).toString('base64url');
  return { keyId, key: `${access === 'read' ? 'pqr_read_' : 'pqr_'}${keyId}_${secret}`, secret };
}

/** The keyId and secret of a key of either access; undefined when it cannot be a key at all. */
export function parseWriteKey(key: string): ParsedWriteKey | undefined {
  const match = keyPattern.exec(key) ?? readKeyPattern.exec(key);
  if (match) return { keyId: match[1]!, secret: match[2]! };
  if (importedKeyPattern.test(key)) return { keyId: `x${hashSecret(key).slice(0, 11)}`, secret: key };
  return undefined;
}

/**
 * A key given to be registered or accepted (one an SDK already sends, or pql-radar's own), parsed; refused with an
 * error naming `name`, where it was given (`--key`), and the rule, never the key itself: it is a secret.
 */
export function parseGivenKey(key: string, name: string): ParsedWriteKey {
  const parsed = parseWriteKey(key);
  if (!parsed) throw new Error(`${name} must be 12 to 256 printable ASCII characters without spaces`);
  return parsed;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function secretMatches(secret: string, record: WriteKeyRecord): boolean {
  const presented = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(record.secretHash, 'hex');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

/**
 * The record of a presented key when the key is well-formed, known, not revoked and its secret matches; undefined
 * otherwise, whichever of these failed (telling them apart would help someone guessing keys).
 */
export async function verifiedKey(key: string, find: (keyId: string) => Promise<WriteKeyRecord | undefined>): Promise<WriteKeyRecord | undefined> {
  const parsed = parseWriteKey(key);
  const record = parsed && (await find(parsed.keyId));
  return parsed && record && !record.revokedAt && secretMatches(parsed.secret, record) ? record : undefined;
}

/** The write key of a request: HTTP Basic (`base64("<key>:")`, as Segment SDKs send it) first, else `writeKey` in the body. */
export function writeKeyFromRequest(authorization: string | undefined, bodyWriteKey: unknown): string | undefined {
  const basic = basicUser(authorization);
  if (basic !== undefined) return basic || undefined;
  return typeof bodyWriteKey === 'string' && bodyWriteKey !== '' ? bodyWriteKey : undefined;
}

/** The key of a request that carries it in its Authorization header only: `Bearer <key>`, or Basic like Segment's. */
export function keyFromAuthorization(authorization: string | undefined): string | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (bearer) return bearer[1];
  return basicUser(authorization) || undefined;
}

/** The user name of HTTP Basic credentials (`base64("<user>:<password>")`); undefined without Basic credentials. */
function basicUser(authorization: string | undefined): string | undefined {
  const basic = /^Basic\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (!basic) return undefined;
  return Buffer.from(basic[1]!, 'base64').toString('utf8').split(':')[0] ?? '';
}
