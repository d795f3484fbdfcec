import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { deadLetterQueue } from './dead-letter-queue';

/**
 * A schedule group of `scope`, the role its schedules invoke `handler` with, and the dead-letter queue for the
 * invocations Scheduler could not deliver after its retries (kept 14 days), for the constructs that run a function on
 * EventBridge Scheduler (the evaluator, the rule-health job). The group holds nothing but those schedules, so it goes
 * with the stack; the role answers only schedules of this group in this account (a confused-deputy guard), may invoke
 * the function itself, not its versions and aliases (`:*`), which LambdaInvoke's grantInvoke would add, and may send
 * to that queue.
 */
export function scheduleInvoker(scope: Construct, handler: lambda.IFunction, description: string): { group: scheduler.ScheduleGroup; role: iam.Role; deadLetterQueue: sqs.Queue } {
  const group = new scheduler.ScheduleGroup(scope, 'Schedules', { removalPolicy: RemovalPolicy.DESTROY });
  const role = new iam.Role(scope, 'SchedulerRole', {
    assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
      conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(scope).account, 'aws:SourceArn': group.scheduleGroupArn } },
    }),
    description,
  });
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [handler.functionArn] }));
  const queue = deadLetterQueue(scope, 'DeadLetterQueue', `the EventBridge Scheduler schedules of ${scope.node.id}`);
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [queue.queueArn] }));
  return { group, role, deadLetterQueue: queue };
}
