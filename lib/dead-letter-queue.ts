import { Duration, Validations } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';

/**
 * A dead-letter queue for a sender that cdk-nag does not recognize as one (it knows only the redrive of SQS queues
 * and Lambda's asynchronous dead-letter queues): encrypted, TLS only, messages kept 14 days (SQS's longest), and its
 * AwsSolutions-SQS3 finding acknowledged with `of`, what it is the dead-letter queue of.
 */
export function deadLetterQueue(scope: Construct, id: string, of: string): sqs.Queue {
  const queue = new sqs.Queue(scope, id, {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  Validations.of(queue).acknowledge({
    id: 'AwsSolutions-SQS3',
    reason: `This queue is a dead-letter queue, of ${of}; cdk-nag recognizes only dead-letter queues of SQS queues and Lambda functions.`,
  });
  return queue;
}
