import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { expect, it } from 'vitest';
import { loadRulesFile } from '../../lib/config';
import { SKIP_BUNDLING_CONTEXT } from '../../lib/lambda-function';
import { PqlRadarStack } from '../../lib/pql-radar-stack';
import { testConfig, testRulesFile } from './synth';

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
function physicalNames(template: Template): string[] {
  const resources = Object.values(template.toJSON().Resources as Record<string, { Type: string; Properties?: Record<string, unknown> }>);
  return resources.flatMap(({ Type, Properties = {} }) =>
    Object.entries(Properties)
      .filter(([key, value]) => /Name(Prefix)?$/.test(key) && typeof value === 'string' && !notPhysicalNames.has(`${Type}.${key}`))
      .map(([key, value]) => `${Type}.${key} = ${value}`),
  );
}

it('lets two stacks share an account and region: no physical name of one is a name of the other', () => {
  const app = new App({ context: { [SKIP_BUNDLING_CONTEXT]: true } });
  // The account and region of the lambda destination of testConfig(), which must be the stack's.
  const env = { account: '123456789012', region: 'us-east-1' };
  const stacks = ['PqlRadar', 'PqlRadarStaging'].map(
    (stackName) => new PqlRadarStack(app, stackName, { env, config: testConfig(), rulesFile: loadRulesFile(testRulesFile) }),
  );
  const [production, staging] = stacks.map((stack) => physicalNames(Template.fromStack(stack)));
  // The names that made two stacks collide before, now derived from the stack name.
  expect(staging).toEqual(
    expect.arrayContaining([
      'AWS::Events::EventBus.Name = PqlRadarStaging-leads',
      'AWS::EventSchemas::Registry.RegistryName = PqlRadarStaging-leads',
      'Custom::PqlRadarWriteKeys.SecretNamePrefix = PqlRadarStaging/write-key/',
      'AWS::ApiGatewayV2::Api.Name = PqlRadarStaging-ingest',
    ]),
  );
  expect(production!.filter((name) => staging!.includes(name))).toEqual([]);
});
