import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { resolve } from 'node:path';
import { configSchema, type PqlRadarConfig } from '../../lib/config';
import { SKIP_BUNDLING_CONTEXT } from '../../lib/lambda-function';
import { PqlRadarStack } from '../../lib/pql-radar-stack';

/** The example rules, whose tiers route to sales and nurture. */
export const testRulesFile = resolve(import.meta.dirname, '../../examples/activation.rules.yaml');

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
        { type: 'hubspot', tokenSecret: 'pql-radar/hubspot-token' },
        { type: 'webhook', url: 'https://hooks.example.com/pql', signingSecret: 'pql-radar/webhook-secret' },
        { type: 'lambda', functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:crm-sync' },
      ],
      nurture: [{ type: 'email', addresses: ['growth@example.com'] }, { type: 'sqs' }],
    },
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

/** The app and the stack as bin/app.ts builds them, without the cdk-nag plugin. */
export function buildStack({ config = {}, bundle = false, context = {}, validate = false }: BuildOptions = {}): {
  app: App;
  stack: PqlRadarStack;
} {
  const app = new App({
    context: { [SKIP_BUNDLING_CONTEXT]: !bundle, ...context },
    builtinCloudFormationValidation: validate,
  });
  return { app, stack: new PqlRadarStack(app, 'PqlRadar', { config: testConfig(config), rulesFile: testRulesFile }) };
}

/** The synthesized template of a stack whose Lambda code is an inline placeholder. */
export function synth(config?: Record<string, unknown>): Template {
  return Template.fromStack(buildStack({ config: config ?? {} }).stack);
}
