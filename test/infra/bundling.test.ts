import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { App } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { build, type Metafile } from 'esbuild';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as lambdaZod from '../../functions/shared/lambda-zod-members';
import { bundleFunction, projectRoot } from '../../bench/bundle';
import { ingestEntries } from '../../lib/ingest-api';
import { lambdaBundling } from '../../lib/lambda-bundling';
import type { PqlRadarStack } from '../../lib/pql-radar-stack';
import { WriteKeyBootstrap } from '../../lib/write-key-bootstrap';
import { buildStack, bundledFunction, loadHandler } from './synth';

/** Every bundle, minified with the AWS SDK inside, as deployed (issue 11). */
const budgetBytes = 400 * 1024;

/** The stacks the bundles are taken from, by their config's ingest buffer: each builds ingest from another entry. */
type BufferSetting = keyof typeof ingestEntries;

/** The Lambda entries, and where the stack with `buffer` keeps a function of each (the Kinesis one's unless said). */
const functions: { name: string; entry: string; of: (stack: PqlRadarStack) => lambda.IFunction; buffer?: BufferSetting }[] = [
  // Each ingest entry a deployment can have: writing the table (no buffer, or a draining one) or putting requests on a buffer.
  { name: 'ingest', entry: ingestEntries.direct.entry, of: (stack: PqlRadarStack) => stack.ingestApi.handler, buffer: 'direct' },
  { name: 'ingest-kinesis', entry: ingestEntries.kinesis.entry, of: (stack: PqlRadarStack) => stack.ingestApi.handler },
  { name: 'ingest-firehose', entry: ingestEntries.firehose.entry, of: (stack: PqlRadarStack) => stack.ingestApi.handler, buffer: 'firehose' },
  { name: 'ingest-buffer', entry: 'functions/ingest-buffer/handler.ts', of: (stack: PqlRadarStack) => stack.ingestBuffer!.consumer },
  {
    name: 'buffer-loader',
    entry: 'functions/ingest-buffer-loader/handler.ts',
    of: (stack: PqlRadarStack) => stack.ingestFirehoseBuffer!.loader,
    buffer: 'firehose',
  },
  { name: 'lead-status', entry: 'functions/lead-status/handler.ts', of: (stack: PqlRadarStack) => stack.leadStatusApi.handler },
  { name: 'evaluator', entry: 'functions/evaluator/handler.ts', of: (stack: PqlRadarStack) => stack.evaluator.handler },
  { name: 'notifier', entry: 'functions/notifier/handler.ts', of: (stack: PqlRadarStack) => stack.leadFanout.notifiers[0]! },
  { name: 'rule-health', entry: 'functions/health/handler.ts', of: (stack: PqlRadarStack) => stack.ruleHealth.handler },
  {
    name: 'bootstrap',
    entry: 'functions/bootstrap/handler.ts',
    of: (stack: PqlRadarStack) => stack.node.findAll().find((construct) => construct instanceof WriteKeyBootstrap)!.handler,
  },
];

/** The bundles with no zod at all. */
const zodFree = ['evaluator', 'ingest-buffer', 'buffer-loader'];

/** Inputs no bundle may contain: what lib/lambda-bundling.ts replaces, and why. */
const leftOut: { what: string; pattern: RegExp; only?: string | string[] }[] = [
  {
    what: 'the default credential chain (SSO, STS, sign-in, ini, process, web identity, container and instance metadata)',
    pattern: /node_modules\/(@aws-sdk\/(credential-provider-(?!env\/)[a-z-]+|nested-clients|token-providers)|@smithy\/credential-provider-imds)\//,
  },
  { what: 'zod locales other than en', pattern: /node_modules\/zod\/v4\/locales\/(?!en\.js$)/ },
  { what: "zod's JSON Schema import and compiler", pattern: /node_modules\/zod\/v4\/(classic\/from-json-schema|core\/compile)\.js$/ },
  { what: 'SDK event streams', pattern: /node_modules\/@smithy\/core\/dist-es\/submodules\/event-streams\// },
  // The rule-health job reads no file: analysis/ must reach the rules only through ruleset.ts, never load.ts.
  { what: 'the YAML parser', pattern: /node_modules\/yaml\//, only: ['evaluator', 'rule-health'] },
  // The evaluator's rules come compiled at synth (loadCompiledRules); the ingest buffer's consumer and loader store
  // messages ingest validated. Both read their settings through plain readers (shared/environment.ts).
  { what: 'zod', pattern: /node_modules\/zod\//, only: zodFree },
  // Each ingest entry carries the client of its deployment's buffer only (lib/ingest-api.ts).
  { what: 'the Kinesis client', pattern: /node_modules\/@aws-sdk\/client-kinesis\//, only: ['ingest', 'ingest-firehose'] },
  { what: 'the Firehose client', pattern: /node_modules\/@aws-sdk\/client-firehose\//, only: ['ingest', 'ingest-kinesis'] },
];

/** The stack with each ingest buffer setting, bundled: `ingestBuffer: false`, and each service's. */
let stacks: Record<BufferSetting, { app: App; stack: PqlRadarStack }>;
/** This run's own bundles and probes, apart from a benchmark running meanwhile. */
const outDir = mkdtempSync(join(tmpdir(), 'pql-radar-bundles-'));

beforeAll(() => {
  // Asset metadata tells which staged asset directory belongs to which function.
  const bundled = (ingestBuffer: false | { service: 'kinesis' | 'firehose' }) =>
    buildStack({ bundle: true, config: { ingestBuffer }, context: { 'aws:cdk:enable-asset-metadata': true } });
  stacks = { direct: bundled(false), kinesis: bundled({ service: 'kinesis' }), firehose: bundled({ service: 'firehose' }) };
}, 600_000);

afterAll(() => rmSync(outDir, { recursive: true, force: true }));

it('bundles the ingest handler into one minified ESM file that includes the AWS SDK', () => {
  const bundled = bundledFunction(stacks.direct.app, stacks.direct.stack.ingestApi.handler);
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

it.each([
  ["the ingest buffer's consumer", () => bundledFunction(stacks.kinesis.app, stacks.kinesis.stack.ingestBuffer!.consumer)],
  ["the Firehose buffer's loader", () => bundledFunction(stacks.firehose.app, stacks.firehose.stack.ingestFirehoseBuffer!.loader)],
  ['ingest with the Kinesis buffer', () => bundledFunction(stacks.kinesis.app, stacks.kinesis.stack.ingestApi.handler)],
  ['ingest with the Firehose buffer', () => bundledFunction(stacks.firehose.app, stacks.firehose.stack.ingestApi.handler)],
])('bundles %s, which loads with the environment the template gives it', (_name, bundled) => {
  expect(bundled().resource.Properties.Handler).toBe('index.handler');
  expect(loadHandler(bundled())).toBe('function');
});

describe.each(functions)('the $name bundle', ({ name, entry, of, buffer = 'kinesis' }) => {
  let deployed: Buffer;
  let bench: { bytes: number; code: Buffer; metafile: Metafile };
  let inputs: string[];

  beforeAll(async () => {
    const built = stacks[buffer];
    deployed = readFileSync(join(bundledFunction(built.app, of(built.stack)).assetDir, 'index.mjs'));
    const bundle = await bundleFunction(entry, { sdk: 'bundled', outDir });
    bench = { bytes: bundle.bytes, code: readFileSync(bundle.outfile), metafile: bundle.metafile };
    // The files that put code into the bundle: esbuild also lists the ones it read and then shook out entirely.
    inputs = Object.keys(Object.values(bench.metafile.outputs).find((output) => output.entryPoint)!.inputs);
  }, 120_000);

  it('is byte for byte what bench/bundle.ts builds, so the benchmark and the checks below see what is deployed', () => {
    expect(deployed.length).toBe(bench.bytes);
    expect(deployed.equals(bench.code), 'identical bytes').toBe(true);
  });

  it(`is at most ${budgetBytes / 1024} KB`, () => {
    expect(deployed.length).toBeLessThanOrEqual(budgetBytes);
  });

  it.each(leftOut.filter((cut) => cut.only === undefined || [cut.only].flat().includes(name)))('leaves out $what', ({ pattern }) => {
    expect(inputs.filter((input) => pattern.test(input))).toEqual([]);
  });

  it("keeps zod's English messages (in the bundles with zod) and the SDK's environment credentials", () => {
    const locales = inputs.filter((input) => /node_modules\/zod\/v4\/locales\//.test(input)).map((input) => input.slice(input.lastIndexOf('/') + 1));
    expect(locales).toEqual(zodFree.includes(name) ? [] : ['en.js']);
    expect(inputs.some((input) => /node_modules\/@aws-sdk\/credential-provider-env\//.test(input))).toBe(true);
  });

  it('calls no z.<member> that its zod (functions/shared/lambda-zod-members.ts) leaves undefined', () => {
    const sources = inputs.filter((input) => !input.includes('node_modules/') && /\.ts$/.test(input));
    expect(sources.length).toBeGreaterThan(0);
    const missing = sources.flatMap((source) =>
      zodMembersCalled(join(projectRoot, source))
        .filter((member) => !(member in lambdaZod))
        .map((member) => `${source}: z.${member}`),
    );
    expect(missing).toEqual([]);
  });
});

/** The members of `z` a file uses as values (`z.string()`, `z.coerce.number()`), not as types (`z.output<...>`). */
function zodMembersCalled(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const members = new Set<string>();
  const visit = (node: ts.Node) => {
    if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'z') members.add(node.name.text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return [...members];
}

describe('the replacements inside a bundle', () => {
  /** Bundles `contents` (TypeScript in the project root) as the functions are bundled, and returns its file URL. */
  async function bundleProbe(name: string, contents: string): Promise<string> {
    const outfile = join(outDir, 'probes', name, 'index.mjs');
    mkdirSync(dirname(outfile), { recursive: true });
    await build({
      ...lambdaBundling,
      mainFields: [...lambdaBundling.mainFields],
      absWorkingDir: projectRoot,
      stdin: { contents, resolveDir: projectRoot, sourcefile: `${name}.ts`, loader: 'ts' },
      outfile,
      bundle: true,
      logLevel: 'error',
    });
    return pathToFileURL(outfile).href;
  }

  it('zod gives the same issues, in the same English, as the package', { timeout: 60_000 }, async () => {
    const probe = await bundleProbe(
      'zod-messages',
      `export { segmentMessageSchema } from './functions/core/segment-schema';
       export { rulesFileSchema } from './functions/core/rules/schema';`,
    );
    const bundled = await import(probe);
    const { segmentMessageSchema } = await import('../../functions/core/segment-schema');
    const { rulesFileSchema } = await import('../../functions/core/rules/schema');
    const wrong = {
      segment: [
        { type: 'track', userId: 42, event: '', timestamp: 'yesterday', properties: [] },
        { type: 'nope' },
        { type: 'identify', anonymousId: '', traits: 'x', context: { groupId: '' } },
      ],
      rules: [
        { version: 2, signals: { a: { event: 'x', window: 'soon', points: 'ten' } }, tiers: [{ name: 1 }], extra: true },
        { version: 1, signals: [], tiers: {} },
      ],
    };
    const issues = (schema: { safeParse: (value: unknown) => { error?: { issues: unknown } } }, value: unknown) =>
      JSON.parse(JSON.stringify(schema.safeParse(value).error?.issues ?? null));
    for (const value of wrong.segment) {
      const expected = issues(segmentMessageSchema, value);
      expect(expected).not.toBeNull();
      expect(issues(bundled.segmentMessageSchema, value)).toEqual(expected);
    }
    for (const value of wrong.rules) {
      const expected = issues(rulesFileSchema, value);
      expect(expected).not.toBeNull();
      expect(issues(bundled.rulesFileSchema, value)).toEqual(expected);
    }
  });

  it('SDK clients take credentials from the environment, and from nothing else', { timeout: 60_000 }, async () => {
    const probe = await bundleProbe(
      'credentials',
      `import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
       const credentials = await new DynamoDBClient({ region: 'us-east-1' }).config.credentials().then(
         ({ accessKeyId, secretAccessKey, sessionToken }) => ({ accessKeyId, secretAccessKey, sessionToken }),
         (error) => ({ error: error.message }),
       );
       console.log(JSON.stringify(credentials));`,
    );
    const run = (env: Record<string, string>) =>
      JSON.parse(
        execFileSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(probe)});`], {
          env: { PATH: process.env.PATH ?? '', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
          encoding: 'utf8',
        }),
      );
    // What Lambda sets for the function's role.
    expect(run({ AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'token' })).toEqual({
      accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: 'secret',
      sessionToken: 'token',
    });
    // A profile in a config file, which the SDK's default chain would read: not in a Lambda bundle.
    const home = join(outDir, 'home');
    mkdirSync(join(home, '.aws'), { recursive: true });
    writeFileSync(join(home, '.aws/credentials'), '[default]\naws_access_key_id = AKIDFROMFILE\naws_secret_access_key = fromfile\n');
    expect(run({ HOME: home })).toEqual({ error: 'Unable to find environment variable credentials.' });
  });
});
