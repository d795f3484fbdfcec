import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/** One unacknowledged finding of the validation report. */
export interface Finding {
  readonly plugin: string;
  readonly rule: string;
  readonly severity: string;
  readonly path: string;
}

/** The part of the synthesized validation-report.json the tests read. */
interface ValidationReport {
  pluginReports: {
    pluginName: string;
    violations: { ruleName: string; severity: string; violatingConstructs: { constructPath?: string }[] }[];
  }[];
}

/** Context that makes synth report findings instead of throwing on the first error, so a test can show all of them. */
export const reportValidationErrors = { '@aws-cdk/core:failSynthOnValidationErrors': false };

/**
 * Registers cdk-nag as bin/app.ts does, synthesizes, and returns every unacknowledged finding of the validation
 * report: cdk-nag's errors and warnings, and those of CDK's built-in CloudFormation validation (when the app runs it).
 * cdk-nag 3 reports through CDK's policy validation, not through annotations.
 */
export function nagFindings(app: App): Finding[] {
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

/** Every acknowledged rule on `scope` and below it, as `<construct path> <rule id>`. */
export function acknowledgements(scope: IConstruct): string[] {
  return scope.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) => Object.keys(entry.data as Record<string, string>).map((id) => `${construct.node.path} ${id}`)),
  );
}
