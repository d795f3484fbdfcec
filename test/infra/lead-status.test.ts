import type { CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { leadStatusCacheSeconds, leadStatusMemoryMb, leadStatusRoute } from '../../lib/lead-status-api';
import { buildStack } from './synth';

type Resource = { Type: string; Properties: Record<string, any> };

let template: Template;
let ids: { table: string; api: string; handler: string; role: string; logGroup: string; integration: string };

beforeAll(() => {
  const { stack } = buildStack();
  template = Template.fromStack(stack);
  const logicalId = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
  const handler = stack.leadStatusApi.handler;
  const integrations = template.findResources('AWS::ApiGatewayV2::Integration', { Properties: { IntegrationUri: { 'Fn::GetAtt': [logicalId(handler), 'Arn'] } } });
  ids = {
    table: logicalId(stack.eventStore.table),
    api: logicalId(stack.ingestApi.httpApi),
    handler: logicalId(handler),
    role: logicalId(handler.role!),
    logGroup: logicalId(handler.logGroup),
    integration: Object.keys(integrations)[0]!,
  };
});

const resource = (logicalId: string): Resource => template.toJSON().Resources[logicalId];
const getAtt = (logicalId: string, attribute: string) => ({ 'Fn::GetAtt': [logicalId, attribute] });

describe('the lead status route', () => {
  it('is GET /v1/leads/{type}/{id} on the ingest HTTP API, to its own function with payload format 2.0', () => {
    const routes = (Object.values(template.findResources('AWS::ApiGatewayV2::Route')) as Resource[]).filter((route) => route.Properties.RouteKey.startsWith('GET /v1/leads'));
    expect(routes.map((route) => route.Properties)).toEqual([
      { ApiId: { Ref: ids.api }, RouteKey: `GET ${leadStatusRoute}`, AuthorizationType: 'NONE', Target: { 'Fn::Join': ['', ['integrations/', { Ref: ids.integration }]] } },
    ]);
    expect(leadStatusRoute).toBe('/v1/leads/{type}/{id}');
    expect(resource(ids.integration).Properties).toMatchObject({ ApiId: { Ref: ids.api }, IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0' });
  });

  it('lets API Gateway invoke the function, and nobody else', () => {
    const permissions = (Object.values(template.findResources('AWS::Lambda::Permission')) as Resource[]).filter(
      (permission) => JSON.stringify(permission.Properties.FunctionName) === JSON.stringify(getAtt(ids.handler, 'Arn')),
    );
    expect(permissions).toHaveLength(1);
    expect(permissions[0]!.Properties).toMatchObject({ Action: 'lambda:InvokeFunction', Principal: 'apigateway.amazonaws.com' });
    expect(permissions[0]!.Properties.SourceArn).toBeDefined();
  });
});

describe('the lead status function', () => {
  it('runs on arm64 with little memory, a short timeout and the table and cache settings only', () => {
    const props = resource(ids.handler).Properties;
    expect(props.Architectures).toEqual(['arm64']);
    expect(props.MemorySize).toBe(256);
    expect(leadStatusMemoryMb).toBe(256);
    expect(props.Timeout).toBe(5);
    expect(props.Environment.Variables).toEqual({
      POWERTOOLS_SERVICE_NAME: 'pql-radar',
      POWERTOOLS_METRICS_NAMESPACE: 'pql-radar',
      NODE_OPTIONS: '--enable-source-maps',
      TABLE_NAME: { Ref: ids.table },
      LEAD_CACHE_SECONDS: String(leadStatusCacheSeconds),
    });
    expect(leadStatusCacheSeconds).toBe(30);
  });

  it('may write its logs and GetItem keys and the partitions of users and accounts, and nothing more', () => {
    const policies = (Object.values(template.findResources('AWS::IAM::Policy')) as Resource[]).filter((policy) =>
      policy.Properties.Roles.some((role: unknown) => JSON.stringify(role) === JSON.stringify({ Ref: ids.role })),
    );
    expect(policies).toHaveLength(1);
    // Spelled out rather than taken from leadStatusTableAccess, so that widening it cannot slip through.
    expect(policies[0]!.Properties.PolicyDocument.Statement).toEqual([
      { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: getAtt(ids.logGroup, 'Arn') },
      {
        Effect: 'Allow',
        Action: 'dynamodb:GetItem',
        Resource: getAtt(ids.table, 'Arn'),
        // Not the quarantine (WS#<workspace>#REJECTED), the outbox, the delivery log, nor any write or query.
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['KEYS', 'WS#*#user#*', 'WS#*#account#*'] } },
      },
    ]);
    expect(resource(ids.role).Properties.ManagedPolicyArns).toBeUndefined();
  });
});
