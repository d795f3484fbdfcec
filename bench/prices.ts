/** us-east-1 list prices, USD: DynamoDB on demand, API Gateway HTTP API, Lambda arm64, EventBridge, Kinesis Data Streams provisioned. */
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
  /** A PUT payload unit is a record's 25 KB (or less). */
  kinesisPutUnit: 0.014 / 1e6,
  kinesisShardHour: 0.015,
};
