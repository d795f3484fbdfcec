import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { build } from 'esbuild';

/**
 * A product's page for the browser SDK tests: the SDK bundled from its npm package as the product's own bundler would,
 * served with a page that loads it, from an origin of its own (a port other than the ingest's).
 */

/** One IIFE script from an entry module, e.g. `import { X } from 'sdk'; window.X = X;`. */
export async function bundleForBrowser(entry: string): Promise<string> {
  const result = await build({ stdin: { contents: entry, resolveDir: process.cwd() }, bundle: true, format: 'iife', platform: 'browser', write: false, logLevel: 'silent' });
  return result.outputFiles[0]!.text;
}

/** Serves `/analytics.js` (the script), anything `route` answers (it returns true), and the page for every other path. */
export async function servePage(script: string, route: (request: IncomingMessage, response: ServerResponse) => boolean = () => false): Promise<{ server: Server; origin: string }> {
  const server = createServer((request, response) => {
    if (request.url === '/analytics.js') {
      response.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
      return;
    }
    if (route(request, response)) return;
    response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>product</title><script src="/analytics.js"></script><h1>product</h1>');
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  return { server, origin: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` };
}
