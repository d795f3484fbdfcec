import { App, type CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type { IConstruct } from 'constructs';
import { expect } from 'vitest';
import { EventStore } from '../../lib/event-store';
import { SKIP_BUNDLING_CONTEXT } from '../../lib/lambda-function';

export type Resource = { Type: string; Properties: Record<string, any>; DeletionPolicy?: string };

/** A stack's template read by construct: a construct's resource, its attributes, and the statements of a role. */
export function readTemplate(stack: Stack) {
  const template = Template.fromStack(stack);
  const logicalId = (construct: IConstruct) => stack.getLogicalId((construct.node.defaultChild ?? construct) as CfnElement);
  const resource = (construct: IConstruct): Resource => template.toJSON().Resources[logicalId(construct)];
  const getAtt = (construct: IConstruct, attribute: string) => ({ 'Fn::GetAtt': [logicalId(construct), attribute] });
  /** The statements of the one policy of `role`: a policy resource, or inline in the role. */
  const statements = (role: IConstruct): Record<string, unknown>[] => {
    const inline = (resource(role).Properties.Policies ?? []) as { PolicyDocument: { Statement: Record<string, unknown>[] } }[];
    const attached = (Object.values(template.findResources('AWS::IAM::Policy')) as Resource[]).filter((policy) =>
      policy.Properties.Roles.some((each: unknown) => JSON.stringify(each) === JSON.stringify({ Ref: logicalId(role) })),
    );
    const policies = [...inline, ...attached.map((policy) => policy.Properties as (typeof inline)[number])];
    expect(policies).toHaveLength(1);
    return policies[0]!.PolicyDocument.Statement;
  };
  return { template, logicalId, resource, getAtt, statements };
}
export type TemplateReader = ReturnType<typeof readTemplate>;

/**
 * The environment a function storing ingest's accepted requests gets (an ingest buffer's), as `test/infra/synth.ts`'s
 * stack gives it. Spelled out rather than taken from lib/, so that a change to it cannot slip through.
 */
export const storingEnvironment = (table: unknown) => ({
  POWERTOOLS_SERVICE_NAME: 'pql-radar',
  POWERTOOLS_METRICS_NAMESPACE: 'pql-radar',
  NODE_OPTIONS: '--enable-source-maps',
  TABLE_NAME: table,
  RETENTION_DAYS: '400',
  QUARANTINE_RETENTION_DAYS: '14',
  TIME_ZONE: 'UTC',
});

/**
 * The table statements of a function storing ingest's accepted requests: workspace data by key, not the write keys
 * (KEYS) nor the feedback links' key (META), which are the HTTP side's. Spelled out rather than taken from
 * storingTableAccess, so that widening it cannot slip through.
 */
export const storingTableStatements = (tableArn: unknown) => {
  const workspaceData = { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['WS#*'] } };
  return [
    { Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:BatchGetItem'], Resource: tableArn, Condition: workspaceData },
    { Effect: 'Allow', Action: ['dynamodb:BatchWriteItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], Resource: tableArn, Condition: workspaceData },
  ];
};

/** The template of a stack of a table and what `add` builds on it: an ingest buffer construct alone. */
export function templateWithTable(add: (stack: Stack, storage: { table: dynamodb.ITable }) => void): Template {
  const stack = new Stack(new App({ context: { [SKIP_BUNDLING_CONTEXT]: true } }), 'Buffered');
  const { table } = new EventStore(stack, 'EventStore');
  add(stack, { table });
  return Template.fromStack(stack);
}
