import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, type AppProps, type CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { configSchema, loadConfig, loadRulesFile, type PqlRadarConfig } from '../../lib/config';
import { SKIP_BUNDLING_CONTEXT } from '../../lib/lambda-function';
import { PqlRadarStack } from '../../lib/pql-radar-stack';

/** The example rules, whose tiers route to sales and nurture. */
export const testRulesFile = resolve(import.meta.dirname, '../../examples/activation.rules.yaml');

/** Rules whose PQL-A routes by its accounts' region (sales-emea, sales-us, else sales) and PQL-B to nurture. */
export const routedRules = `version: 1
signals:
  active: { event: Logged In, points: 10 }
tiers:
  - name: PQL-A
    min_score: 20
    route: { by: account.region, map: { emea: sales-emea, uk: sales-emea, us: sales-us }, default: sales }
    owner: account.owner_email
  - { name: PQL-B, min_score: 10, route: nurture }
`;

/** Writes routedRules and a config naming them, with an sqs destination for each of `routes`; loads it as bin/app.ts does. */
export function loadRoutedConfig(routes: readonly string[]): () => ReturnType<typeof loadConfig> {
  const dir = mkdtempSync(join(tmpdir(), 'pql-radar-config-'));
  writeFileSync(join(dir, 'routed.rules.yaml'), routedRules);
  writeFileSync(join(dir, 'pql-radar.config.yaml'), `rules: routed.rules.yaml\nroutes:\n${routes.map((route) => `  ${route}:\n    - type: sqs\n`).join('')}`);
  return () => loadConfig(join(dir, 'pql-radar.config.yaml'));
}

/**
 * A config with every destination type, so the stack tests and cdk-nag see every resource the stack can make.
 * Overrides are config-file input (before defaults), as a user would write them.
 */
export function testConfig(overrides: Record<string, unknown> = {}): PqlRadarConfig {
  return configSchema.parse({
    rules: testRulesFile,
    writeKeys: [{ workspace: 'default' }],
    alarmEmails: ['ops@example.com'],
    routes: {
      sales: [
        { type: 'slack', webhookUrlSecret: 'pql-radar/slack-webhook', entityUrlTemplate: 'https://admin.example.com/{type}/{id}' },
        { type: 'webhook', url: 'https://hooks.example.com/pql', signingSecret: 'pql-radar/webhook-secret' },
        { type: 'lambda', functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:crm-sync' },
      ],
      nurture: [{ type: 'email', addresses: ['growth@example.com'] }, { type: 'sqs' }],
    },
    crm: [{ type: 'hubspot', tokenSecret: 'pql-radar/hubspot-token' }],
    ...overrides,
  });
}

export interface BuildOptions {
  /** Config-file overrides of testConfig(). */
  readonly config?: Record<string, unknown>;
  /** Runs esbuild for real (seconds instead of milliseconds). */
  readonly bundle?: boolean;
  readonly context?: Record<string, unknown>;
  /** Runs CDK's built-in CloudFormation template validation (about 2 s for the first synth of a process). */
  readonly validate?: boolean;
}

/** The context `cdk synth` gives the app from cdk.json: its feature flags shape the template deployed, and tested. */
const cdkJsonContext = (JSON.parse(readFileSync(resolve(import.meta.dirname, '../../cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;

/** An app as `cdk synth` makes it (cdk.json's context), its Lambda code an inline placeholder unless `context` says otherwise. */
export function testApp(context: Record<string, unknown> = {}, props: Omit<AppProps, 'context'> = {}): App {
  return new App({ ...props, context: { ...cdkJsonContext, [SKIP_BUNDLING_CONTEXT]: true, ...context } });
}

/** The app and the stack as bin/app.ts builds them under `cdk synth`, without the cdk-nag plugin. */
export function buildStack({ config = {}, bundle = false, context = {}, validate = false }: BuildOptions = {}): {
  app: App;
  stack: PqlRadarStack;
} {
  const app = testApp({ [SKIP_BUNDLING_CONTEXT]: !bundle, ...context }, { builtinCloudFormationValidation: validate });
  return { app, stack: new PqlRadarStack(app, 'PqlRadar', { config: testConfig(config), rulesFile: loadRulesFile(testRulesFile) }) };
}

/** The synthesized template of a stack whose Lambda code is an inline placeholder. */
export function synth(config?: Record<string, unknown>): Template {
  return Template.fromStack(buildStack({ config: config ?? {} }).stack);
}

/** A bundled function: its resource in the synthesized template and the directory its code asset is staged in. */
export interface BundledFunction {
  readonly resource: { Properties: Record<string, any>; Metadata: Record<string, any> };
  readonly assetDir: string;
}

/**
 * Synthesizes `app` and locates the bundle of `fn` (a function of one of its stacks). The app needs bundling on and the
 * 'aws:cdk:enable-asset-metadata' context, which tells which staged asset directory belongs to which function.
 */
export function bundledFunction(app: App, fn: IConstruct): BundledFunction {
  const assembly = app.synth();
  const stack = Stack.of(fn);
  const resource = assembly.getStackByName(stack.stackName).template.Resources[stack.getLogicalId(fn.node.defaultChild as CfnElement)];
  return { resource, assetDir: join(assembly.directory, resource.Metadata['aws:asset:path']) };
}

/**
 * Imports a bundle in a new Node.js process as Lambda would (the bundle as working directory, the environment the
 * template gives it, with deploy-time values stubbed) and returns `typeof` its handler export.
 */
export function loadHandler({ resource, assetDir }: BundledFunction): string {
  const environment: Record<string, string> = { PATH: process.env.PATH ?? '', AWS_REGION: 'us-east-1' };
  for (const [name, value] of Object.entries<unknown>(resource.Properties.Environment.Variables)) {
    environment[name] = typeof value === 'string' ? value : `resolved-at-deploy-${name}`;
  }
  const bundleUrl = JSON.stringify(pathToFileURL(join(assetDir, 'index.mjs')).href);
  const loaded = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', `const m = await import(${bundleUrl}); console.log(typeof m.handler);`],
    { cwd: assetDir, env: environment, encoding: 'utf8' },
  );
  return loaded.trim();
}

/**
 * Properties named like a name that are not the physical name of something account-wide, so two stacks may share
 * them: each is scoped to its resource's parent, is a label, or refers to a resource outside the stack.
 */
const notPhysicalNames = new Set([
  'AWS::IAM::Policy.PolicyName', // an inline policy of its role
  'AWS::ApiGatewayV2::Stage.StageName', // `$default`, a stage of its own API
  'AWS::EventSchemas::Schema.SchemaName', // a schema in its own registry
  'AWS::CloudWatch::Alarm.MetricName', // the metric an alarm watches
  'AWS::SNS::Topic.DisplayName', // the sender name of the e-mails
  'AWS::Lambda::Permission.FunctionName', // the user's function that a lambda destination invokes
]);

/** Every literal string of a `...Name` or `...NamePrefix` property, as `<type>.<property> = <value>`. */
export function physicalNames(template: Template): string[] {
  const resources = Object.values(template.toJSON().Resources as Record<string, { Type: string; Properties?: Record<string, unknown> }>);
  return resources.flatMap(({ Type, Properties = {} }) =>
    Object.entries(Properties)
      .filter(([key, value]) => /Name(Prefix)?$/.test(key) && typeof value === 'string' && !notPhysicalNames.has(`${Type}.${key}`))
      .map(([key, value]) => `${Type}.${key} = ${value}`),
  );
}
