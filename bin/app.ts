import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { PqlRadarStack } from '../lib/pql-radar-stack';

const app = new App();

// Settings come from context for now (`cdk deploy -c retentionDays=30`); values given with -c are strings.
function numberContext(key: string): number | undefined {
  const raw: unknown = app.node.tryGetContext(key);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`context ${key}=${String(raw)}: expected a positive integer`);
  return value;
}

function booleanContext(key: string): boolean | undefined {
  const raw: unknown = app.node.tryGetContext(key);
  if (raw === undefined) return undefined;
  if (raw === true || raw === 'true') return true;
  if (raw === false || raw === 'false') return false;
  throw new Error(`context ${key}=${String(raw)}: expected true or false`);
}

new PqlRadarStack(app, 'PqlRadar', {
  description: 'pql-radar: product-qualified leads from Segment-compatible usage events',
  retentionDays: numberContext('retentionDays'),
  dirtyShards: numberContext('dirtyShards'),
  deletionProtection: booleanContext('deletionProtection'),
  throttling: {
    rateLimit: numberContext('throttleRateLimit'),
    burstLimit: numberContext('throttleBurstLimit'),
  },
});

// cdk-nag 3 runs as a policy validation plugin (no longer an Aspect); findings fail the synth.
// Acknowledgements sit next to the resources they concern, in lib/.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
