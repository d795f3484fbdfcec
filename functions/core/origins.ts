/**
 * Browser origins a workspace accepts events from. A write key ships inside every page that loads a browser SDK, so
 * anyone can copy it; the origin list keeps other sites' browsers from sending with it (a server can still forge an
 * Origin header: this is hygiene against copied snippets, not authentication).
 */

/** Allows every origin; possible, never the default. */
export const anyOrigin = '*';

/**
 * The canonical form of an origin as browsers send it (`https://app.example.com`, `http://localhost:5173`), or `*`;
 * undefined when the value is not one (a path, a query, credentials or another scheme).
 */
export function canonicalOrigin(value: string): string | undefined {
  if (value === anyOrigin) return anyOrigin;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) return undefined;
  return url.origin;
}

export const originAllowed = (allowed: readonly string[], origin: string): boolean => allowed.includes(anyOrigin) || allowed.includes(origin);
