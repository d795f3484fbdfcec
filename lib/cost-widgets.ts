import { Duration, Token } from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { listPrices } from './list-prices';

/** A table as the cost widgets price it (lib/event-store.ts' EventStore is one). */
export interface PricedTable {
  /** Its consumed read and write units, and those of `indexNames`, are priced on demand. */
  readonly table: dynamodb.ITableV2;
  /** Its global secondary indexes: DynamoDB bills their writes (and reads) apart, under their own metrics. */
  readonly indexNames: readonly string[];
  /** It is of the Standard-IA class: its reads and writes cost 25% more. */
  readonly infrequentAccess: boolean;
}

/** What the deployment pays for by use, as CloudWatch counts it: the sources of the dashboard's cost widgets. */
export interface CostSources {
  readonly table: PricedTable;
  /** Every function that runs with the traffic: invocations and duration, at each one's memory size (arm64). */
  readonly functions: readonly lambda.IFunction[];
  /** The ingest HTTP API: its requests (the function URL's cost nothing of their own). */
  readonly httpApi: apigwv2.IHttpApi;
  /** Accepted events, the figure the costs are divided by. */
  readonly acceptedEvents: cloudwatch.Metric;
  /** Lead events put on the bus (EventBridge bills each custom event). */
  readonly leadEvents: cloudwatch.Metric;
  /**
   * The ingest buffer: the Kinesis stream (its records, each counted as one PUT payload unit, and its shards'
   * hours), or the Firehose delivery stream (each record billed as at least 5 KB).
   * @default none
   */
  readonly buffer?: { readonly stream: kinesis.IStream; readonly shards: number } | { readonly deliveryStream: firehose.IDeliveryStream };
}

/** One line of the cost widgets: a metric math expression in dollars over the period, and the metrics it reads by id. */
interface CostComponent {
  id: string;
  label: string;
  expression: string;
  usingMetrics: Record<string, cloudwatch.IMetric>;
}

/**
 * The deployment's cost by component over `period`, at us-east-1 list prices (lib/list-prices, the prices `npm run
 * bench:cost` uses): DynamoDB's consumed units, the functions' requests and GB-seconds, the HTTP API's requests,
 * EventBridge's lead events, and the ingest buffer's service. Each metric is summed over the period, and a period
 * without a data point counts 0 (FILL). Lower bounds where a price has a unit CloudWatch does not count: a Lambda
 * duration is billed rounded up to the millisecond, a Kinesis record over 25 KB is more than one payload unit, and a
 * Firehose record is rounded up to 5 KB each (counted here as the larger of its bytes and 5 KB a record).
 */
function costComponents(sources: CostSources, period: Duration): CostComponent[] {
  const requestFactor = sources.table.infrequentAccess ? listPrices.infrequentAccessRequestFactor : 1;
  const tableName = sources.table.table.tableName;
  const dynamodbMetric = (metricName: string, indexName?: string) =>
    new cloudwatch.Metric({
      namespace: 'AWS/DynamoDB',
      metricName,
      dimensionsMap: { TableName: tableName, ...(indexName === undefined ? {} : { GlobalSecondaryIndexName: indexName }) },
      statistic: 'Sum',
      period,
    });
  const tableTerms: Term[] = [undefined, ...sources.table.indexNames].flatMap((indexName, index) => [
    { id: `dynamodb_write${index}`, metric: dynamodbMetric('ConsumedWriteCapacityUnits', indexName), price: listPrices.writeUnit * requestFactor },
    { id: `dynamodb_read${index}`, metric: dynamodbMetric('ConsumedReadCapacityUnits', indexName), price: listPrices.readUnit * requestFactor },
  ]);
  // One expression a function, so that the Lambda line's stays short however many destinations the stack has.
  const functionCosts = sources.functions.map((fn, index) => {
    const own = component(`lambda${index}`, fn.node.path, [
      { id: `lambda_invocations${index}`, metric: fn.metricInvocations({ statistic: 'Sum', period }), price: listPrices.lambdaRequest },
      // Duration is in milliseconds.
      { id: `lambda_duration${index}`, metric: fn.metricDuration({ statistic: 'Sum', period }), price: (listPrices.lambdaGbSecond * memoryMbOf(fn)) / 1024 / 1000 },
    ]);
    return [own.id, new cloudwatch.MathExpression({ expression: own.expression, label: own.label, period, usingMetrics: own.usingMetrics })] as const;
  });
  const components: CostComponent[] = [
    component('dynamodb', 'DynamoDB', tableTerms),
    { id: 'lambda', label: 'Lambda', expression: functionCosts.map(([id]) => id).join('+') || '0', usingMetrics: Object.fromEntries(functionCosts) },
    component('http', 'HTTP API', [{ id: 'http_requests', metric: sources.httpApi.metricCount({ statistic: 'Sum', period }), price: listPrices.httpRequest }]),
    component('eventbridge', 'EventBridge', [{ id: 'eventbridge_events', metric: sources.leadEvents.with({ statistic: 'Sum', period }), price: listPrices.eventBridgeEvent }]),
  ];
  const { buffer } = sources;
  if (buffer !== undefined && 'stream' in buffer) {
    const shardHours = buffer.shards * (period.toSeconds() / 3600);
    const records = component('kinesis', 'Kinesis', [{ id: 'kinesis_records', metric: buffer.stream.metricIncomingRecords({ statistic: 'Sum', period }), price: listPrices.kinesisPutUnit }]);
    components.push({ ...records, expression: `${records.expression}+${decimal(shardHours * listPrices.kinesisShardHour)}` });
  } else if (buffer !== undefined) {
    const perByte = listPrices.firehoseGb / 2 ** 30;
    components.push({
      id: 'firehose',
      label: 'Firehose',
      // Each record is billed as a multiple of 5 KB: at least its bytes, and at least 5 KB.
      expression: `IF(FILL(firehose_bytes,0)>FILL(firehose_records,0)*5120,FILL(firehose_bytes,0),FILL(firehose_records,0)*5120)*${decimal(perByte)}`,
      usingMetrics: {
        firehose_bytes: buffer.deliveryStream.metricIncomingBytes({ statistic: 'Sum', period }),
        firehose_records: buffer.deliveryStream.metricIncomingRecords({ statistic: 'Sum', period }),
      },
    });
  }
  return components;
}

interface Term {
  id: string;
  metric: cloudwatch.IMetric;
  /** Dollars per unit of the metric's sum. */
  price: number;
}

function component(id: string, label: string, terms: readonly Term[]): CostComponent {
  return {
    id,
    label,
    expression: terms.map((term) => `FILL(${term.id},0)*${decimal(term.price)}`).join('+'),
    usingMetrics: Object.fromEntries(terms.map((term) => [term.id, term.metric])),
  };
}

const plainDecimal = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 6, useGrouping: false });
/** A price as metric math reads it: a plain decimal of six significant digits, never an exponent. */
const decimal = (price: number) => plainDecimal.format(price);

/**
 * The function's memory size in MB, as synthesized (Lambda's default of 128 when unset): its GB-seconds are priced by
 * it. A size only known at deploy time cannot be priced at synth, hence the error.
 */
function memoryMbOf(fn: lambda.IFunction): number {
  const resource = fn.node.defaultChild;
  if (!(resource instanceof lambda.CfnFunction)) throw new Error(`Cost widgets: ${fn.node.path} is not a function defined in this app, so its memory size is unknown`);
  const memory = resource.memorySize ?? 128;
  if (Token.isUnresolved(memory)) throw new Error(`Cost widgets: ${fn.node.path} has a memory size known only at deploy time`);
  return memory;
}

/**
 * Two dashboard widgets of `costComponents`, a day at a time over the last `days` days: dollars per million accepted
 * events by component and in all (the unit cost `npm run bench:cost` measures), and dollars a day (where the
 * evaluator's scheduled runs, paid whatever the traffic, show as a floor).
 */
export function costWidgets(sources: CostSources, days = 14): cloudwatch.IWidget[] {
  const period = Duration.days(1);
  const components = costComponents(sources, period);
  const dollars = (label: string, expression: string, usingMetrics: Record<string, cloudwatch.IMetric>) => new cloudwatch.MathExpression({ expression, label, period, usingMetrics });
  const byComponent = Object.fromEntries(components.map((part) => [part.id, dollars(part.label, part.expression, part.usingMetrics)]));
  const total = dollars('total', components.map((part) => part.id).join('+'), byComponent);
  const accepted = sources.acceptedEvents.with({ statistic: 'Sum', period });
  const perMillion = (id: string, label: string, cost: cloudwatch.IMetric) =>
    new cloudwatch.MathExpression({ expression: `1000000*${id}/accepted`, label, period, usingMetrics: { [id]: cost, accepted } });
  const range = { start: `-P${days}D`, period, width: 12, height: 6 };
  return [
    new cloudwatch.GraphWidget({
      title: '$ per million accepted events, a day at a time (us-east-1 list prices; storage apart)',
      left: [perMillion('total', 'total', total), ...components.map((part) => perMillion(part.id, part.label, byComponent[part.id]!))],
      ...range,
    }),
    new cloudwatch.GraphWidget({
      title: '$ a day (us-east-1 list prices; storage apart)',
      left: [total, ...Object.values(byComponent)],
      ...range,
    }),
  ];
}
