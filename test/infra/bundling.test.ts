import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { buildStack, bundledFunction, loadHandler } from './synth';

it('bundles the ingest handler into one minified ESM file that includes the AWS SDK', { timeout: 120_000 }, () => {
  // Asset metadata tells which staged asset directory belongs to which function.
  const { app, stack } = buildStack({ bundle: true, context: { 'aws:cdk:enable-asset-metadata': true } });
  const bundled = bundledFunction(app, stack.ingestApi.handler);
  expect(bundled.resource.Properties.Handler).toBe('index.handler');

  const { assetDir } = bundled;
  expect(readdirSync(assetDir).sort()).toEqual(['index.mjs', 'index.mjs.map']);
  const bundle = readFileSync(join(assetDir, 'index.mjs'), 'utf8');

  // Booleans and short extracts only: a failing matcher would print the whole bundle.
  expect(bundle.slice(0, 100)).toMatch(
    /^import \{ createRequire \} from 'node:module'; const require = createRequire\(import\.meta\.url\);/,
  );
  expect(/export\s*\{[^}]*\bhandler\s*\}/.test(bundle), 'exports handler as ESM').toBe(true);
  expect(bundle.includes('DynamoDBClient'), 'contains the DynamoDB client').toBe(true);
  const staticImports = [...bundle.matchAll(/\bfrom\s*["']([^"']+)["']/g)].map((match) => match[1]);
  expect(staticImports.filter((specifier) => !specifier!.startsWith('node:')), 'imports only Node.js built-ins').toEqual([]);
  expect(bundle.slice(-40)).toMatch(/\/\/# sourceMappingURL=index\.mjs\.map\s*$/);

  // The bundle loads (banner, ESM syntax, cold-start configuration) with the environment the template gives it.
  expect(loadHandler(bundled)).toBe('function');
});
