/**
 * Browser origins a workspace accepts events from. A write key ships inside every page that loads a browser SDK, so
 * anyone can copy it; the origin list keeps other sites' browsers from sending with it (a server can still forge an
 * Origin header: this is hygiene against copied snippets, not authentication).
 */

/** Allows every origin; possible, never the default. */
export const anyOrigin = '*';

/** URL's special schemes other than http(s): no page a browser SDK runs in has an origin of one of them. */
const neverPageSchemes = new Set(['ftp:', 'file:', 'ws:', 'wss:']);

/**
 * The canonical form of an origin as browsers send it, or `*`; or why the value is not one (`problem`, worded to
 * follow "it"). A web page's origin is http(s) (`https://app.example.com`, `http://localhost:5173`; a default port
 * dropped). Hybrid, desktop and extension apps have their own scheme (`capacitor://localhost`, `ionic://localhost`,
 * `tauri://localhost`, `chrome-extension://<id>`, `moz-extension://<uuid>`, `app://<host>`), whose origin is scheme
 * and host as written, in lower case. `null` (a file:// page, a sandboxed frame) is not an origin here: any site can
 * send it from a sandboxed frame, so allowing it would allow every site.
 */
export function canonicalOrigin(value: string): { origin: string } | { problem: string } {
  if (value === anyOrigin) return { origin: anyOrigin };
  if (value === 'null') return { problem: "is the opaque origin, which any site's sandboxed frame sends: allowing it would allow every site" };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { problem: 'is not a URL' };
  }
  if (neverPageSchemes.has(url.protocol)) return { problem: `has the scheme ${url.protocol.slice(0, -1)}, which no page's origin has` };
  if (url.username || url.password) return { problem: 'holds a user name or password' };
  if (url.search || url.hash) return { problem: 'has a query or a fragment' };
  if (url.pathname !== '/' && url.pathname !== '') return { problem: 'has a path' };
  if (url.protocol === 'http:' || url.protocol === 'https:') return { origin: url.origin };
  // URL keeps another scheme's host as written: browsers send it as the app wrote it, which is lower case.
  if (url.host === '') return { problem: `names no host (write ${url.protocol}//<host>)` };
  return { origin: `${url.protocol}//${url.host.toLowerCase()}` };
}

/** What an origin option or setting looks like, for the message refusing one that is not. */
export const originExamples = 'scheme, host and port only, e.g. https://app.example.com or capacitor://localhost, or *';

export const originAllowed = (allowed: readonly string[], origin: string): boolean => allowed.includes(anyOrigin) || allowed.includes(origin);
