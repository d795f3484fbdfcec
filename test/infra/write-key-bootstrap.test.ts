import { Stack, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { EventStore } from '../../lib/event-store';
import { testApp } from './synth';
import { WriteKeyBootstrap, type WriteKeyBootstrapProps } from '../../lib/write-key-bootstrap';
import { acknowledgements, nagFindings, reportValidationErrors } from './nag-report';

type Resource = { Type: string; Properties: Record<string, any>; DependsOn?: string[] };

function build(props: Partial<WriteKeyBootstrapProps> = {}, context: Record<string, unknown> = {}) {
  const app = testApp(context);
  const stack = new Stack(app, 'Keys');
  const { table } = new EventStore(stack, 'EventStore');
  const bootstrap = new WriteKeyBootstrap(stack, 'WriteKeyBootstrap', { table, workspaces: ['acme', 'beta'], ...props });
  return { app, stack, table, bootstrap };
}

const { stack, table, bootstrap } = build();
const template = Template.fromStack(stack);
const logicalId = (construct: IConstruct) => stack.getLogicalId((construct.node.defaultChild ?? construct) as CfnElement);
const resource = (id: string): Resource => template.toJSON().Resources[id];
const getAtt = (id: string, attribute: string) => ({ 'Fn::GetAtt': [id, attribute] });
const frameworkRole = bootstrap.node.findChild('ProviderRole');
const frameworkFunction = bootstrap.provider.node.findChild('framework-onEvent');

/** The statements of the one policy attached to a role. */
function statementsOf(role: IConstruct) {
  const policies = (Object.values(template.findResources('AWS::IAM::Policy')) as Resource[]).filter((policy) =>
    policy.Properties.Roles.some((attached: unknown) => JSON.stringify(attached) === JSON.stringify({ Ref: logicalId(role) })),
  );
  expect(policies).toHaveLength(1);
  return policies[0]!.Properties.PolicyDocument.Statement as unknown[];
}

const secretArn = (name: string) => ({
  'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':secretsmanager:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:secret:${name}`]],
});

const resources = () => Object.values(template.findResources('Custom::PqlRadarWriteKeys')) as Resource[];

describe('write-key custom resource', () => {
  it('passes the table, the secret name prefix and the workspaces to the provider', () => {
    expect(resources()).toHaveLength(1);
    expect(resources()[0]!.Properties).toEqual({
      ServiceToken: getAtt(logicalId(frameworkFunction), 'Arn'),
      TableName: { Ref: logicalId(table) },
      SecretNamePrefix: 'Keys/write-key/',
      Workspaces: ['acme', 'beta'],
      // So that the deploy upgrading a stack made before the signing key left META runs the bootstrap, which moves it.
      Migrations: ['feedback-signing-key-out-of-meta'],
    });
    expect(bootstrap.secretNames).toEqual({ acme: 'Keys/write-key/acme', beta: 'Keys/write-key/beta' });
  });

  it('declares no secret: the key never passes through the template', () => {
    template.resourceCountIs('AWS::SecretsManager::Secret', 0);
  });

  it('has the provider framework call the bootstrap function, built like every other function', () => {
    expect(resource(logicalId(frameworkFunction)).Properties.Environment.Variables).toEqual({
      USER_ON_EVENT_FUNCTION_ARN: getAtt(logicalId(bootstrap.handler), 'Arn'),
    });
    const handler = resource(logicalId(bootstrap.handler)).Properties;
    expect(handler).toMatchObject({ Architectures: ['arm64'], Runtime: 'nodejs24.x', Timeout: 60 });
    expect(handler.TracingConfig).toBeUndefined();
    // The table name comes with each event, so a replaced table needs no new function configuration.
    expect(Object.keys(handler.Environment.Variables).sort()).toEqual(['NODE_OPTIONS', 'POWERTOOLS_METRICS_NAMESPACE', 'POWERTOOLS_SERVICE_NAME']);
  });

  it('keeps the framework logs in a log group with a retention', () => {
    const logGroup = bootstrap.node.findChild('ProviderLogGroup');
    expect(resource(logicalId(frameworkFunction)).Properties.LoggingConfig.LogGroup).toEqual({ Ref: logicalId(logGroup) });
    expect(resource(logicalId(logGroup)).Properties.RetentionInDays).toBe(30);
  });

  it('honours another secret name prefix', () => {
    const other = build({ secretNamePrefix: 'staging/pql-radar/write-key/', workspaces: ['acme'] });
    Template.fromStack(other.stack).hasResourceProperties('Custom::PqlRadarWriteKeys', { SecretNamePrefix: 'staging/pql-radar/write-key/' });
    expect(other.bootstrap.secretNames).toEqual({ acme: 'staging/pql-radar/write-key/acme' });
  });

  it('passes the destinations to record, and leaves them out when there are none', () => {
    const destinations = [
      { id: 'sales-slack-1', kind: 'slack' as const, route: 'sales', transport: 'sqs' as const, ruleArn: 'arn:aws:events:eu-west-1:123456789012:rule/bus/r1' },
      { id: 'crm-hubspot-1', kind: 'hubspot' as const, route: '*', transport: 'sqs' as const },
    ];
    const other = build({ destinations });
    Template.fromStack(other.stack).hasResourceProperties('Custom::PqlRadarWriteKeys', { Destinations: destinations });
    expect(resources()[0]!.Properties.Destinations).toBeUndefined();
    expect(() => build({ destinations: [destinations[0]!, destinations[0]!] })).toThrow(/destination ids must be unique/);
  });

  it('exists without workspaces, to record the destinations, and may then touch no secret', () => {
    const other = build({ workspaces: [] });
    const otherTemplate = Template.fromStack(other.stack);
    otherTemplate.hasResourceProperties('Custom::PqlRadarWriteKeys', { Workspaces: [] });
    expect(other.bootstrap.secretNames).toEqual({});
    const actions = Object.values(otherTemplate.findResources('AWS::IAM::Policy')).flatMap((policy) =>
      (policy as Resource).Properties.PolicyDocument.Statement.flatMap((statement: { Action: string | string[] }) => statement.Action),
    );
    expect(actions.filter((action: string) => action.startsWith('secretsmanager:'))).toEqual([]);
  });

  it('refuses an invalid workspace and a repeated one', () => {
    expect(() => build({ workspaces: ['Acme Corp'] })).toThrow(/workspace "Acme Corp" is not valid/);
    expect(() => build({ workspaces: ['acme', 'acme'] })).toThrow(/must be unique/);
  });
});

describe('bootstrap function role', () => {
  it('is assumed by Lambda and carries no managed or inline policies', () => {
    const role = resource(logicalId(bootstrap.handler.role!));
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
    ]);
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(role.Properties.Policies).toBeUndefined();
  });

  it('may write its logs, read and put items in the table and create, describe or read its workspaces\' secrets, nothing more', () => {
    const statements = statementsOf(bootstrap.handler.role!);
    expect(statements).toHaveLength(5);
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: getAtt(logicalId(bootstrap.handler.node.scope!.node.findChild('LogGroup')), 'Arn'),
    });
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['dynamodb:GetItem', 'dynamodb:PutItem'],
      Resource: getAtt(logicalId(table), 'Arn'),
      Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['KEYS'] } },
    });
    // The destination records (DynamoDbDestinationRegistry.replace), and the signing key versions before kept there (read,
    // then deleted once moved), in META alone: DeleteItem never reaches a key.
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
      Resource: getAtt(logicalId(table), 'Arn'),
      Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['META'] } },
    });
    // The feedback links' signing key: made or moved by a conditional put, never read back nor deleted.
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: 'dynamodb:PutItem',
      Resource: getAtt(logicalId(table), 'Arn'),
      Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['FEEDBACK_SIGNING_KEY'] } },
    });
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue', 'secretsmanager:CreateSecret'],
      // `-??????` is the random suffix of an existing secret's ARN; the bare name is how a missing one is authorized.
      Resource: ['acme', 'beta'].flatMap((workspace) => [
        secretArn(`Keys/write-key/${workspace}-??????`),
        secretArn(`Keys/write-key/${workspace}`),
      ]),
    });
  });
});

describe('provider framework role', () => {
  it('is the construct\'s own role, with no managed policy', () => {
    expect(resource(logicalId(frameworkFunction)).Properties.Role).toEqual(getAtt(logicalId(frameworkRole), 'Arn'));
    const role = resource(logicalId(frameworkRole));
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
    ]);
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
  });

  it('may write its logs and invoke and look up the bootstrap function, nothing more', () => {
    const statements = statementsOf(frameworkRole);
    const handlerArn = getAtt(logicalId(bootstrap.handler), 'Arn');
    expect(statements).toHaveLength(3);
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: getAtt(logicalId(bootstrap.node.findChild('ProviderLogGroup')), 'Arn'),
    });
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: 'lambda:InvokeFunction',
      Resource: [handlerArn, { 'Fn::Join': ['', [handlerArn, ':*']] }],
    });
    expect(statements).toContainEqual({ Effect: 'Allow', Action: 'lambda:GetFunction', Resource: handlerArn });
  });
});

describe('AwsSolutions checks', () => {
  it('find nothing unacknowledged', () => {
    const { app } = build({}, reportValidationErrors);
    expect(nagFindings(app)).toEqual([]);
  });

  it('are acknowledged only where reviewed: the framework role, one finding', () => {
    expect(acknowledgements(build().app)).toEqual([
      `Keys/WriteKeyBootstrap/ProviderRole Annotation::AwsSolutions-IAM5[Resource::<${logicalId(bootstrap.handler)}.Arn>:*]`,
    ]);
  });
});
