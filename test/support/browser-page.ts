import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { inject } from 'vitest';
import type { IngestResponse } from '../../functions/core/ingest';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { chromiumLaunchOptions, ensureChromium } from './chromium';

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

/**
 * What a browser SDK test runs on: Chromium, the product's page with the SDK bundled from `entry`, and `npm start`'s
 * runtime on its own table, accepting the page's origin; every ingest answer is pushed to `responses`.
 */
export async function startBrowserScenario(options: {
  entry: string;
  tableName: string;
  responses: IngestResponse[];
  route?: Parameters<typeof servePage>[1];
}): Promise<{ browser: Browser; page: { server: Server; origin: string }; dev: DevRuntime; stop: () => Promise<void> }> {
  const [executablePath, script] = await Promise.all([ensureChromium(), bundleForBrowser(options.entry)]);
  const page = await servePage(script, options.route);
  const dev = await startDev({
    port: 0,
    endpoint: inject('dynamoEndpoint'),
    tableName: options.tableName,
    allowedOrigins: [page.origin],
    observer: { onResponse: (response) => options.responses.push(response), onError: () => {} },
  });
  const browser = await chromium.launch(chromiumLaunchOptions(executablePath));
  const stop = async () => {
    await browser.close();
    await dev.stop();
    page.server.close();
  };
  return { browser, page, dev, stop };
}
