import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CfnElement } from 'aws-cdk-lib';
import { expect, it } from 'vitest';
import { buildStack } from './synth';

it('bundles the ingest handler into one minified ESM file that includes the AWS SDK', { timeout: 120_000 }, () => {
  // Asset metadata tells which staged asset directory belongs to which function.
  const { app, stack } = buildStack({ bundle: true, context: { 'aws:cdk:enable-asset-metadata': true } });
  const assembly = app.synth();
  const handlerId = stack.getLogicalId(stack.ingestApi.handler.node.defaultChild as CfnElement);
  const handler = assembly.getStackByName(stack.stackName).template.Resources[handlerId];
  expect(handler.Properties.Handler).toBe('index.handler');

  const assetDir = join(assembly.directory, handler.Metadata['aws:asset:path']);
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
  const environment: Record<string, string> = { PATH: process.env.PATH ?? '', AWS_REGION: 'us-east-1' };
  for (const [name, value] of Object.entries<unknown>(handler.Properties.Environment.Variables)) {
    environment[name] = typeof value === 'string' ? value : `resolved-at-deploy-${name}`;
  }
  const bundleUrl = JSON.stringify(pathToFileURL(join(assetDir, 'index.mjs')).href);
  const loaded = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', `const m = await import(${bundleUrl}); console.log(typeof m.handler);`],
    { env: environment, encoding: 'utf8' },
  );
  expect(loaded.trim()).toBe('function');
});
