import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type App, Validations } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { ingestPaths } from '../../lib/ingest-api';
import { buildStack } from './synth';

interface Finding {
  readonly plugin: string;
  readonly rule: string;
  readonly severity: string;
  readonly path: string;
}

interface ValidationReport {
  pluginReports: {
    pluginName: string;
    violations: { ruleName: string; severity: string; violatingConstructs: { constructPath?: string }[] }[];
  }[];
}

/**
 * Registers cdk-nag as bin/app.ts does, synthesizes, and returns every unacknowledged finding of the
 * validation report: cdk-nag's errors and warnings, and those of CDK's built-in CloudFormation validation.
 * cdk-nag 3 reports through CDK's policy validation, not through annotations.
 */
function findings(app: App): Finding[] {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const assembly = app.synth();
  // Written whenever a plugin is registered; a missing file means the checks did not run, and fails the test.
  const report: ValidationReport = JSON.parse(readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8'));
  return report.pluginReports.flatMap((plugin) =>
    plugin.violations.flatMap((violation) =>
      violation.violatingConstructs.map((construct) => ({
        plugin: plugin.pluginName,
        rule: violation.ruleName,
        severity: violation.severity,
        path: construct.constructPath ?? '?',
      })),
    ),
  );
}

// Report findings instead of throwing on the first error, so the test can show all of them.
const context = { '@aws-cdk/core:failSynthOnValidationErrors': false };

function acknowledgements(app: App) {
  return app.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) => Object.keys(entry.data as Record<string, string>).map((id) => `${construct.node.path} ${id}`)),
  );
}

describe('AwsSolutions checks', () => {
  it('find nothing unacknowledged in the stack', () => {
    const { app } = buildStack({ context, validate: true });
    expect(findings(app)).toEqual([]);
  });

  it('report a finding when one appears (the checks really run)', () => {
    const { app, stack } = buildStack({ context });
    new sqs.Queue(stack, 'Unprotected');
    expect(findings(app)).toEqual(
      expect.arrayContaining([
        { plugin: 'AwsSolutions', rule: 'AwsSolutions-SQS3', severity: 'error', path: 'PqlRadar/Unprotected/Resource' },
        { plugin: 'AwsSolutions', rule: 'AwsSolutions-SQS4', severity: 'error', path: 'PqlRadar/Unprotected/Resource' },
      ]),
    );
  });

  it('are acknowledged only where reviewed: one finding each, on the one resource it concerns', () => {
    const { app } = buildStack();
    expect(acknowledgements(app).sort()).toEqual(
      [
        // X-Ray's PutTraceSegments/PutTelemetryRecords take no resource: every function role (lib/lambda-function.ts).
        ...['IngestApi/Handler', 'Evaluator/Handler', 'LeadFanout/sales/Slack1/Notifier', 'LeadFanout/sales/Webhook1/Notifier', 'WriteKeyBootstrap/Handler'].map(
          (fn) => `PqlRadar/${fn}/Role Annotation::AwsSolutions-IAM5[Resource::*]`,
        ),
        // The CDK custom-resource provider invokes its handler's versions (lib/write-key-bootstrap.ts).
        'PqlRadar/WriteKeyBootstrap/ProviderRole Annotation::AwsSolutions-IAM5[Resource::<WriteKeyBootstrapHandlerFunctionFC19C522.Arn>:*]',
        // Segment clients authenticate with a write key the function checks (lib/ingest-api.ts).
        ...ingestPaths.map(
          (path) => `PqlRadar/IngestApi/HttpApi/POST${path.replaceAll('/', '--')} Annotation::AwsSolutions-APIG4`,
        ),
        // Dead-letter queues of schedules and rule targets, which cdk-nag does not recognise as DLQs.
        ...['Evaluator', 'LeadFanout/nurture/Email', 'LeadFanout/nurture/Queue', 'LeadFanout/sales/Hubspot1', 'LeadFanout/sales/Lambda1', 'LeadFanout/sales/Slack1', 'LeadFanout/sales/Webhook1'].map(
          (owner) => `PqlRadar/${owner}/DeadLetterQueue Annotation::AwsSolutions-SQS3`,
        ),
      ].sort(),
    );
  });
});
