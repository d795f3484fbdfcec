import { Template } from 'aws-cdk-lib/assertions';
import { expect, it } from 'vitest';
import { loadRulesFile } from '../../lib/config';
import { PqlRadarStack } from '../../lib/pql-radar-stack';
import { physicalNames, testApp, testConfig, testRulesFile } from './synth';

it('lets two stacks share an account and region: no physical name of one is a name of the other', () => {
  const app = testApp();
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
