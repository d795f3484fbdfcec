import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { SKIP_BUNDLING_CONTEXT } from '../../lib/lambda-function';
import { PqlRadarStack, type PqlRadarStackProps } from '../../lib/pql-radar-stack';

export interface BuildOptions {
  readonly props?: PqlRadarStackProps;
  /** Runs esbuild for real (seconds instead of milliseconds). */
  readonly bundle?: boolean;
  readonly context?: Record<string, unknown>;
  /** Runs CDK's built-in CloudFormation template validation (about 2 s for the first synth of a process). */
  readonly validate?: boolean;
}

/** The app and the stack as bin/app.ts builds them, without the cdk-nag plugin. */
export function buildStack({ props, bundle = false, context = {}, validate = false }: BuildOptions = {}): {
  app: App;
  stack: PqlRadarStack;
} {
  const app = new App({
    context: { [SKIP_BUNDLING_CONTEXT]: !bundle, ...context },
    builtinCloudFormationValidation: validate,
  });
  return { app, stack: new PqlRadarStack(app, 'PqlRadar', props) };
}

/** The synthesized template of a stack whose Lambda code is an inline placeholder. */
export function synth(props?: PqlRadarStackProps): Template {
  return Template.fromStack(buildStack({ props }).stack);
}
