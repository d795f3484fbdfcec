import { Duration, Validations } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';

/**
 * What a queue of the project chooses for itself, each with sqs.QueueProps' meaning and default (a standard queue, a
 * 30-second visibility timeout, no redrive); `encryptedQueue` sets the rest alike for every queue.
 */
export type EncryptedQueueOptions = Pick<sqs.QueueProps, 'fifo' | 'contentBasedDeduplication' | 'visibilityTimeout' | 'deadLetterQueue'>;

/**
 * A queue as every queue of the project is: SQS-managed encryption rather than KMS, so that EventBridge, Scheduler
 * and Lambda can send to it without key policies; TLS only; messages kept 14 days, SQS's longest, so that what waits
 * in it for a fix waits as long as SQS allows. Alarms are not made here: lib/monitoring.ts makes one for each
 * dead-letter queue the stack hands it.
 */
export function encryptedQueue(scope: Construct, id: string, options: EncryptedQueueOptions = {}): sqs.Queue {
  return new sqs.Queue(scope, id, {
    ...options,
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
}

/**
 * A dead-letter queue (an `encryptedQueue`) for a sender that cdk-nag does not recognize as one (it knows only the
 * redrive of SQS queues and Lambda's asynchronous dead-letter queues), its AwsSolutions-SQS3 finding acknowledged
 * with `of`, what it is the dead-letter queue of.
 */
export function deadLetterQueue(scope: Construct, id: string, of: string): sqs.Queue {
  const queue = encryptedQueue(scope, id);
  Validations.of(queue).acknowledge({
    id: 'AwsSolutions-SQS3',
    reason: `This queue is a dead-letter queue, of ${of}; cdk-nag recognizes only dead-letter queues of SQS queues and Lambda functions.`,
  });
  return queue;
}

/** The dead-letter queue of an EventBridge rule's target (its DeadLetterConfig): what EventBridge could not deliver. */
export function ruleTargetDeadLetterQueue(scope: Construct, id: string): sqs.Queue {
  return deadLetterQueue(scope, id, 'an EventBridge rule target (its DeadLetterConfig)');
}
