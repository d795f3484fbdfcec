import { build } from 'esbuild';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Bundles a Lambda entry as lib/lambda-function.ts does (minified ESM, node22 target, `require` for CommonJS parts),
 * with the AWS SDK inside or left out. The output goes under the project's node_modules so that a bundle without the
 * SDK still resolves it when imported, as it would from the Lambda runtime's copy.
 */
export async function bundleFunction(entry: string, options: { sdk: 'bundled' | 'external' }) {
  const outfile = join(projectRoot, 'node_modules/.cache/pql-radar-bench', options.sdk, entry.replace(/[/.]/g, '_'), 'index.mjs');
  await mkdir(dirname(outfile), { recursive: true });
  await build({
    entryPoints: [join(projectRoot, entry)],
    outfile,
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    mainFields: ['module', 'main'],
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
    external: options.sdk === 'external' ? ['@aws-sdk/*', '@smithy/*'] : [],
    logLevel: 'error',
  });
  const code = await readFile(outfile);
  return { outfile, bytes: code.length, gzipBytes: gzipSync(code).length };
}
