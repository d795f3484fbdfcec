import { type CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { EventStore } from '../../lib/event-store';
import { RuleHealth, type RuleHealthProps } from '../../lib/rule-health';
import { buildStack, synth, testApp } from './synth';

type Resource = { Type: string; Properties: Record<string, any>; DependsOn?: string[] };

/** The job in a stack of its own, with the table it reads. */
function build(props: Partial<RuleHealthProps> = {}) {
  const app = testApp();
  const stack = new Stack(app, 'RuleHealthTest');
  const { table } = new EventStore(stack, 'EventStore');
  const ruleHealth = new RuleHealth(stack, 'RuleHealth', { table, tierOrder: ['PQL-A', 'PQL-B'], ...props });
  const logicalId = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
  return { stack, ruleHealth, template: Template.fromStack(stack), logicalId, tableId: logicalId(table) };
}

const resources = (template: Template, type: string) => Object.values(template.findResources(type)) as Resource[];
const statementsOfRole = (template: Template, roleId: string) =>
  resources(template, 'AWS::IAM::Policy')
    .filter((policy) => policy.Properties.Roles.some((role: unknown) => JSON.stringify(role) === JSON.stringify({ Ref: roleId })))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown; Condition?: unknown }[]);
const actionsOf = (statement: { Action: string | string[] }) => [statement.Action].flat();

describe('rule-health function', () => {
  it('gets the table, the shards, the tiers in rules order and the period in its environment', () => {
    const { template, tableId } = build({ shards: 8 });
    const [fn] = resources(template, 'AWS::Lambda::Function');
    expect(fn!.Properties.Environment.Variables).toMatchObject({
      TABLE_NAME: { Ref: tableId },
      DIRTY_SHARDS: '8',
      TIER_ORDER: '["PQL-A","PQL-B"]',
      HEALTH_PERIOD_DAYS: '90',
    });
  });

  it('takes tier names with a comma, as the rules file does', () => {
    const [fn] = resources(build({ tierOrder: ['PQL, hot', 'PQL-B'] }).template, 'AWS::Lambda::Function');
    expect(JSON.parse(fn!.Properties.Environment.Variables.TIER_ORDER)).toEqual(['PQL, hot', 'PQL-B']);
  });

  it("may only read: GetItem and BatchGetItem on the table's entities and META, Query on the dirty index, nothing else of DynamoDB", () => {
    const { template, ruleHealth, logicalId, tableId } = build();
    const statements = statementsOfRole(template, logicalId(ruleHealth.handler.role!));
    const dynamodb = statements.filter((statement) => actionsOf(statement).some((action) => action.startsWith('dynamodb:')));
    expect(dynamodb.flatMap(actionsOf).sort()).toEqual(['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query']);
    const [onTable, onIndex] = [
      dynamodb.find((statement) => actionsOf(statement).includes('dynamodb:GetItem'))!,
      dynamodb.find((statement) => actionsOf(statement).includes('dynamodb:Query'))!,
    ];
    expect(actionsOf(onTable).sort()).toEqual(['dynamodb:BatchGetItem', 'dynamodb:GetItem']);
    expect(onTable.Resource).toEqual({ 'Fn::GetAtt': [tableId, 'Arn'] });
    // The lead states (WS#*) and the shard counts and backtests (META): not the write keys (KEYS) nor the feedback
    // links' signing key (FEEDBACK_SIGNING_KEY).
    expect(onTable.Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['WS#*', 'META'] } });
    expect(actionsOf(onIndex)).toEqual(['dynamodb:Query']);
    expect(JSON.stringify(onIndex.Resource)).toContain('/index/dirty');
    // Only DynamoDB reads and its own logs.
    expect(statements.flatMap(actionsOf).filter((action) => !action.startsWith('dynamodb:') && !action.startsWith('logs:'))).toEqual([]);
  });
});

describe('rule-health schedule', () => {
  it('runs the function every 24 hours by default, from a group of its own, with a role only that group may assume', () => {
    const { template, ruleHealth, logicalId } = build();
    const [schedule] = resources(template, 'AWS::Scheduler::Schedule');
    expect(resources(template, 'AWS::Scheduler::Schedule')).toHaveLength(1);
    // Scheduler's own spelling of 24 hours.
    expect(schedule!.Properties.ScheduleExpression).toBe('rate(1 day)');
    expect(schedule!.Properties.Target.Arn).toEqual({ 'Fn::GetAtt': [logicalId(ruleHealth.handler), 'Arn'] });
    expect(schedule!.DependsOn).toContain(logicalId(ruleHealth.scheduleGroup));
    const schedulerRoleId = logicalId(ruleHealth.node.findChild('SchedulerRole'));
    const role = template.toJSON().Resources[schedulerRoleId] as Resource;
    expect(JSON.stringify(role.Properties.AssumeRolePolicyDocument)).toContain(logicalId(ruleHealth.scheduleGroup));
    expect(statementsOfRole(template, schedulerRoleId).flatMap(actionsOf)).toEqual(['lambda:InvokeFunction', 'sqs:SendMessage']);
  });

  it('sends an invocation it could not deliver after its retries to an encrypted dead-letter queue of its own', () => {
    const { template, ruleHealth, logicalId } = build();
    const [schedule] = resources(template, 'AWS::Scheduler::Schedule');
    const queueId = logicalId(ruleHealth.deadLetterQueue);
    expect(schedule!.Properties.Target.DeadLetterConfig).toEqual({ Arn: { 'Fn::GetAtt': [queueId, 'Arn'] } });
    expect(schedule!.Properties.Target.RetryPolicy).toEqual({ MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 });
    expect((template.toJSON().Resources[queueId] as Resource).Properties).toEqual({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 86_400 });
    const [policy] = resources(template, 'AWS::SQS::QueuePolicy');
    expect(policy!.Properties.Queues).toEqual([{ Ref: queueId }]);
    expect(JSON.stringify(policy!.Properties.PolicyDocument)).toContain('aws:SecureTransport');
    const sends = statementsOfRole(template, logicalId(ruleHealth.node.findChild('SchedulerRole'))).filter((statement) => actionsOf(statement).includes('sqs:SendMessage'));
    expect(sends.map((statement) => statement.Resource)).toEqual([{ 'Fn::GetAtt': [queueId, 'Arn'] }]);
  });

  it('takes everyHours, from 1 to 24', () => {
    const [schedule] = resources(build({ everyHours: 6 }).template, 'AWS::Scheduler::Schedule');
    expect(schedule!.Properties.ScheduleExpression).toBe('rate(6 hours)');
    expect(() => build({ everyHours: 25 })).toThrow(/everyHours/);
    expect(() => build({ everyHours: 0 })).toThrow(/everyHours/);
  });
});

const liftAlarm = (template: Template) => resources(template, 'AWS::CloudWatch::Alarm').find((each) => each.Properties.MetricName === 'TierLiftLowerBound')!;
const failureAlarm = (template: Template) => resources(template, 'AWS::CloudWatch::Alarm').find((each) => each.Properties.AlarmName.endsWith('rule health failed'))!;

describe('rule-health alarm', () => {
  it('fires when the lowest TierLiftLowerBound of a period is below the threshold, and no data is not breaching', () => {
    const { template } = build({ liftAlarmBelow: 1.2, everyHours: 12 });
    const alarm = liftAlarm(template);
    expect(alarm!.Properties).toMatchObject({
      Namespace: 'pql-radar',
      MetricName: 'TierLiftLowerBound',
      Dimensions: [{ Name: 'service', Value: 'pql-radar' }],
      Statistic: 'Minimum',
      Period: 12 * 3600,
      Threshold: 1.2,
      ComparisonOperator: 'LessThanThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
    });
  });

  it('alarms below 1.0 by default and notifies the given topic on ALARM and OK', () => {
    const app = testApp();
    const stack = new Stack(app, 'WithTopic');
    const topic = new sns.Topic(stack, 'Topic');
    new RuleHealth(stack, 'RuleHealth', { table: new EventStore(stack, 'EventStore').table, tierOrder: ['PQL-A'], alarmTopic: topic });
    const template = Template.fromStack(stack);
    const topicRef = { Ref: stack.getLogicalId(topic.node.defaultChild as CfnElement) };
    expect(liftAlarm(template).Properties.Threshold).toBe(1);
    for (const alarm of [liftAlarm(template), failureAlarm(template)]) {
      expect(alarm.Properties.AlarmActions).toEqual([topicRef]);
      expect(alarm.Properties.OKActions).toEqual([topicRef]);
    }
  });

  it("fires on a run that failed or was dropped unrun: the function's dropped asynchronous invocations over the job's period, none being no data", () => {
    const { template, ruleHealth, logicalId } = build({ everyHours: 6 });
    expect(resources(template, 'AWS::CloudWatch::Alarm')).toHaveLength(2);
    expect(failureAlarm(template).Properties).toMatchObject({
      AlarmName: 'RuleHealthTest rule health failed',
      Namespace: 'AWS/Lambda',
      MetricName: 'AsyncEventsDropped',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalId(ruleHealth.handler) } }],
      Statistic: 'Sum',
      Period: 6 * 3600,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
    });
    expect(failureAlarm(build().template).Properties.Period).toBe(86_400);
  });
});

describe('in the stack', () => {
  it("takes the config's health section, the rules' tiers in order, and notifies the alarm topic of a low lift, a failed run and a dead letter", () => {
    const { stack } = buildStack({ config: { health: { liftAlarmBelow: 0.9, everyHours: 24 }, evaluation: { shards: 16 } } });
    const template = Template.fromStack(stack);
    const alarm = liftAlarm(template);
    expect(alarm.Properties.Threshold).toBe(0.9);
    const topicId = stack.getLogicalId(stack.monitoring.alarmTopic.node.defaultChild as CfnElement);
    expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
    const failed = resources(template, 'AWS::CloudWatch::Alarm').find(
      (each) => each.Properties.MetricName === 'AsyncEventsDropped' && JSON.stringify(each.Properties.Dimensions) === JSON.stringify([{ Name: 'FunctionName', Value: { Ref: stack.getLogicalId(stack.ruleHealth.handler.node.defaultChild as CfnElement) } }]) && each.Properties.Period === 86_400,
    );
    expect(failed?.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
    expect(failed?.Properties.OKActions).toEqual([{ Ref: topicId }]);
    const queueName = { 'Fn::GetAtt': [stack.getLogicalId(stack.ruleHealth.deadLetterQueue.node.defaultChild as CfnElement), 'QueueName'] };
    const deadLetters = resources(template, 'AWS::CloudWatch::Alarm').find((each) => JSON.stringify(each.Properties.Dimensions) === JSON.stringify([{ Name: 'QueueName', Value: queueName }]));
    expect(deadLetters?.Properties).toMatchObject({ MetricName: 'ApproximateNumberOfMessagesVisible', AlarmActions: [{ Ref: topicId }] });
    const fn = resources(template, 'AWS::Lambda::Function').find((each) => each.Properties.Environment?.Variables?.TIER_ORDER !== undefined)!;
    expect(fn.Properties.Environment.Variables.DIRTY_SHARDS).toBe('16');
    expect(JSON.parse(fn.Properties.Environment.Variables.TIER_ORDER)).toEqual(stack.evaluator.ruleset.file.tiers.map((tier) => tier.name));
  });

  it('runs daily with a 1.0 threshold by default', () => {
    const template = synth();
    expect(resources(template, 'AWS::Scheduler::Schedule').filter((each) => each.Properties.ScheduleExpression === 'rate(1 day)')).toHaveLength(1);
    expect(liftAlarm(template).Properties.Threshold).toBe(1);
  });
});
