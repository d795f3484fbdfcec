import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import type { Construct } from 'constructs';
import { EventStore } from './event-store';
import { IngestApi } from './ingest-api';

export interface PqlRadarStackProps extends StackProps {
  /**
   * Days an event is kept before its TTL expires it.
   * @default 400
   */
  readonly retentionDays?: number;
  /**
   * Number of partitions of the sparse `dirty` index.
   * @default 4
   */
  readonly dirtyShards?: number;
  /**
   * Deletion protection of the table.
   * @default true
   */
  readonly deletionProtection?: boolean;
  /**
   * Throttling of the ingest API's default stage.
   * @default - rateLimit 1000 requests per second, burstLimit 2000
   */
  readonly throttling?: apigwv2.ThrottleSettings;
}

/** pql-radar in one stack: the event store and the ingest API (the evaluator and lead fan-out come later). */
export class PqlRadarStack extends Stack {
  public readonly eventStore: EventStore;
  public readonly ingestApi: IngestApi;

  constructor(scope: Construct, id: string, props: PqlRadarStackProps = {}) {
    super(scope, id, props);

    this.eventStore = new EventStore(this, 'EventStore', { deletionProtection: props.deletionProtection });
    this.ingestApi = new IngestApi(this, 'IngestApi', {
      table: this.eventStore.table,
      retentionDays: props.retentionDays,
      dirtyShards: props.dirtyShards,
      throttling: props.throttling,
    });

    new CfnOutput(this, 'IngestUrl', {
      description: 'Segment-compatible endpoint: point your SDK or backend at it',
      value: this.ingestApi.url,
    });
    new CfnOutput(this, 'TableName', {
      description: 'DynamoDB table with events, entity state and write keys',
      value: this.eventStore.table.tableName,
    });
  }
}
