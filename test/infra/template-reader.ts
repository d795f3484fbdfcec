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
 * (KEYS) nor the feedback links' key (FEEDBACK_SIGNING_KEY), which are the HTTP side's. Spelled out rather than taken from
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

export type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: Record<string, Record<string, unknown>> };

/** Every role's statements, by the role's logical id: those of the policies attached to it, and its inline ones. */
export function statementsByRole(template: Template): Map<string, Statement[]> {
  const byRole = new Map<string, Statement[]>();
  const add = (role: string, statements: Statement[]) => byRole.set(role, [...(byRole.get(role) ?? []), ...statements]);
  for (const [id, role] of Object.entries(template.findResources('AWS::IAM::Role') as Record<string, Resource>)) {
    add(id, (role.Properties.Policies ?? []).flatMap((policy: { PolicyDocument: { Statement: Statement[] } }) => policy.PolicyDocument.Statement));
  }
  for (const policy of Object.values(template.findResources('AWS::IAM::Policy') as Record<string, Resource>)) {
    for (const role of policy.Properties.Roles as { Ref: string }[]) add(role.Ref, policy.Properties.PolicyDocument.Statement);
  }
  return byRole;
}

/** An IAM StringLike pattern as a regular expression: `*` any characters, `?` one. */
const stringLike = (pattern: string) => new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.')}$`, 's');

/**
 * The DynamoDB actions `statements` allow on the items of one partition of the table whose ARN is `tableArn` (as the
 * template spells it). A statement on the table reaches the partition when it has no condition, or when one of its
 * `dynamodb:LeadingKeys` patterns (the condition pql-radar's table statements use) matches the partition key; any other
 * condition is taken to reach it, so that this never answers "no" for a statement it does not understand. Statements
 * on an index are left out: the one index (`dirty`) holds only the items that carry its keys, entities and markers.
 */
export function actionsOnPartition(statements: readonly Statement[], tableArn: unknown, partitionKey: string): string[] {
  return statements
    .filter((statement) => statement.Effect === 'Allow')
    .filter((statement) => [statement.Resource].flat().some((resource) => resource === '*' || JSON.stringify(resource) === JSON.stringify(tableArn)))
    .filter((statement) => {
      const conditions = Object.entries(statement.Condition ?? {});
      if (conditions.length === 0) return true;
      const [operator, keys] = conditions.length === 1 ? conditions[0]! : [];
      const patterns = keys?.['dynamodb:LeadingKeys'];
      if (operator !== 'ForAllValues:StringLike' || Object.keys(keys!).length !== 1 || !Array.isArray(patterns)) return true;
      return patterns.some((pattern: string) => stringLike(pattern).test(partitionKey));
    })
    .flatMap((statement) => [statement.Action].flat())
    .filter((action) => action === '*' || action.startsWith('dynamodb:'));
}
