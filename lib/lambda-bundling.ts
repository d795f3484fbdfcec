import type { BuildOptions } from 'esbuild';

/**
 * How every Lambda function is bundled, in esbuild's own terms, defined once: lib/lambda-function.ts hands it to
 * NodejsFunction (which runs the esbuild CLI in the project root) and bench/bundle.ts to esbuild's API, so the
 * benchmark measures what is deployed; test/infra/bundling.test.ts checks that both give the same bytes.
 *
 * Minified ESM for Node.js 24 (the functions' runtime, lib/lambda-function.ts), with the AWS SDK inside (pinned
 * version, faster cold start than the runtime's copy) and source maps without the sources.
 */
export const lambdaBundling = {
  target: 'node24',
  platform: 'node',
  format: 'esm',
  // The ESM build of packages that ship both.
  mainFields: ['module', 'main'],
  // esbuild's ESM output has no `require`; CommonJS dependencies inside the bundle still call it.
  banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  minify: true,
  sourcemap: true,
  sourcesContent: false,
  /**
   * Packages replaced by a module of ours inside the bundles only, paths relative to the project root (esbuild
   * resolves an alias from its working directory). Each replacement says why in its own file; together they keep
   * every bundle under 400 KB (test/infra/bundling.test.ts).
   */
  alias: {
    // `z` without zod's 40-odd locales and the rest of zod the functions do not use (about 340 KB of each bundle).
    zod: './functions/shared/lambda-zod.ts',
    // The SDK's default credentials: from the environment, as Lambda gives them, without SSO, STS, ini files (about 130 KB).
    '@aws-sdk/credential-provider-node': './functions/shared/lambda-credentials.ts',
    // Event-stream support of the SDK's protocols, which no operation the functions call uses (about 19 KB).
    '@smithy/core/event-streams': './functions/shared/lambda-no-event-streams.ts',
  },
} as const satisfies BuildOptions;
