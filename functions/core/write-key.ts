import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Write keys made here look like `pqr_<keyId>_<secret>`. The keyId is public (it names the key in `keys list`,
 * logs and the table); only a SHA-256 of the secret is stored, and it is compared in constant time.
 * A key brought from elsewhere (an existing Segment write key, or `dev --write-key`) is any string of
 * 12 to 256 characters; its keyId is derived from its hash and the whole key is its secret.
 */
const keyPattern = /^pqr_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
const importedKeyPattern = /^[\x21-\x7e]{12,256}$/;

export const workspacePattern = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export interface ParsedWriteKey {
  keyId: string;
  secret: string;
}

export interface WriteKeyRecord {
  keyId: string;
  workspace: string;
  secretHash: string;
  createdAt: string;
  revokedAt?: string;
}

export function generateWriteKey(): { keyId: string; key: string; secret: string } {
  const keyId = randomBytes(8).toString('hex').slice(0, 12);
  const secret = randomBytes(32).toString('base64url');
  return { keyId, key: `pqr_${keyId}_${secret}`, secret };
}

export function parseWriteKey(key: string): ParsedWriteKey | undefined {
  const match = keyPattern.exec(key);
  if (match) return { keyId: match[1]!, secret: match[2]! };
  if (importedKeyPattern.test(key)) return { keyId: `x${hashSecret(key).slice(0, 11)}`, secret: key };
  return undefined;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function secretMatches(secret: string, record: WriteKeyRecord): boolean {
  const presented = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(record.secretHash, 'hex');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

/** The write key of a request: HTTP Basic (`base64("<key>:")`, as Segment SDKs send it) first, else `writeKey` in the body. */
export function writeKeyFromRequest(authorization: string | undefined, bodyWriteKey: unknown): string | undefined {
  const basic = /^Basic\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const user = decoded.split(':')[0];
    return user || undefined;
  }
  return typeof bodyWriteKey === 'string' && bodyWriteKey !== '' ? bodyWriteKey : undefined;
}
