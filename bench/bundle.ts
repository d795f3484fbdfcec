import { build, type Metafile } from 'esbuild';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { lambdaBundling } from '../lib/lambda-bundling';

export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Bundles a Lambda entry with the options lib/lambda-function.ts deploys (lib/lambda-bundling.ts), with the AWS SDK
 * inside, as deployed, or left out. The output goes under the project's node_modules (unless `outDir` says
 * otherwise) so that a bundle without the SDK still resolves it when imported, as it would from the Lambda runtime's
 * copy. `metafile` tells which input files went into the bundle, and how many bytes each.
 */
export async function bundleFunction(
  entry: string,
  options: { sdk: 'bundled' | 'external'; outDir?: string },
): Promise<{ outfile: string; bytes: number; gzipBytes: number; metafile: Metafile }> {
  const outDir = options.outDir ?? join(projectRoot, 'node_modules/.cache/pql-radar-bench');
  const outfile = join(outDir, options.sdk, entry.replace(/[/.]/g, '_'), 'index.mjs');
  await mkdir(dirname(outfile), { recursive: true });
  const { metafile } = await build({
    ...lambdaBundling,
    mainFields: [...lambdaBundling.mainFields],
    // The aliases are relative to the project root, where CDK runs esbuild.
    absWorkingDir: projectRoot,
    entryPoints: [join(projectRoot, entry)],
    outfile,
    bundle: true,
    external: options.sdk === 'external' ? ['@aws-sdk/*', '@smithy/*'] : [],
    metafile: true,
    logLevel: 'error',
  });
  const code = await readFile(outfile);
  return { outfile, bytes: code.length, gzipBytes: gzipSync(code).length, metafile };
}
