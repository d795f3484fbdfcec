/**
 * us-east-1 list prices, USD: DynamoDB on demand, API Gateway HTTP API, Lambda arm64, EventBridge, Kinesis Data Streams
 * provisioned, the Firehose variant's Amazon Data Firehose, S3 and SQS, and CloudWatch Logs.
 */
export const listPrices = {
  writeUnit: 0.625 / 1e6,
  readUnit: 0.125 / 1e6,
  httpRequest: 1 / 1e6,
  lambdaRequest: 0.2 / 1e6,
  /** arm64, per GB-second. */
  lambdaGbSecond: 0.0000133334,
  eventBridgeEvent: 1 / 1e6,
  storageGbMonth: 0.25,
  pitrGbMonth: 0.2,
  /**
   * The Standard-IA table class: reads and writes 25% dearer ($0.78125 per million write units, $0.15625 read), storage
   * $0.10 per GB-month; PITR as Standard, by the table's size.
   */
  infrequentAccessRequestFactor: 1.25,
  infrequentAccessStorageGbMonth: 0.1,
  /** A PUT payload unit is a record's 25 KB (or less). */
  kinesisPutUnit: 0.014 / 1e6,
  kinesisShardHour: 0.015,
  /**
   * Amazon Data Firehose, Direct PUT ingestion, per GB (2^30 bytes) ingested, each record rounded up to 5 KB (the first
   * 500 TB a month): https://aws.amazon.com/firehose/pricing/ (its example divides KB by 1,048,576 KB/GB).
   */
  firehoseGb: 0.029,
  /** S3 Standard requests: PUT $0.005 and GET $0.0004 per 1,000; DELETE is free. https://aws.amazon.com/s3/pricing/ */
  s3Put: 0.005 / 1000,
  s3Get: 0.0004 / 1000,
  /** CloudWatch Logs, Standard log class, per GB (2^30 bytes) ingested (each log event counted with 26 bytes more): https://aws.amazon.com/cloudwatch/pricing/ */
  logsIngestedGb: 0.5,
  /** SQS standard queue, per request (each 64 KB of payload a request), past the first million a month: https://aws.amazon.com/sqs/pricing/ */
  sqsRequest: 0.4 / 1e6,
};
