import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { LoadedRulesFile, PqlRadarConfig } from './config';
import { Evaluator } from './evaluator';
import { EventStore } from './event-store';
import { IngestApi } from './ingest-api';
import { LeadEventSchema } from './lead-event-schema';
import { LeadFanout } from './lead-fanout';
import { Monitoring } from './monitoring';
import { WriteKeyBootstrap } from './write-key-bootstrap';

export interface PqlRadarStackProps extends StackProps {
  /** The validated deployment config (lib/config.ts `loadConfig`). */
  readonly config: PqlRadarConfig;
  /** The rules file the config names, as `loadConfig` read and validated it; bundled into the evaluator. */
  readonly rulesFile: LoadedRulesFile;
}

/**
 * pql-radar in one stack: the event store (stateful, retained), the ingest API, the evaluator on a schedule, the
 * lead bus with its fan-out to the configured destinations, the lead event schema, the write-key bootstrap, and
 * the alarms and dashboard over all of it.
 */
export class PqlRadarStack extends Stack {
  public readonly eventStore: EventStore;
  public readonly ingestApi: IngestApi;
  public readonly leadFanout: LeadFanout;
  public readonly evaluator: Evaluator;
  public readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: PqlRadarStackProps) {
    super(scope, id, props);
    const { config } = props;

    this.eventStore = new EventStore(this, 'EventStore', { deletionProtection: config.deletionProtection });
    const table = this.eventStore.table;
    this.ingestApi = new IngestApi(this, 'IngestApi', {
      table,
      retentionDays: config.retentionDays,
      // Ingest and evaluator must agree on the shards of the dirty index.
      dirtyShards: config.evaluation.shards,
      throttling: config.ingest,
    });
    this.leadFanout = new LeadFanout(this, 'LeadFanout', { routes: config.routes });
    this.evaluator = new Evaluator(this, 'Evaluator', {
      table,
      eventBus: this.leadFanout.eventBus,
      rulesFile: props.rulesFile,
      shards: config.evaluation.shards,
      everyMinutes: config.evaluation.everyMinutes,
      reservedConcurrency: config.evaluation.reservedConcurrency,
      retentionDays: config.retentionDays,
    });
    new LeadEventSchema(this, 'LeadEventSchema');
    const bootstrap =
      config.writeKeys.length > 0
        ? new WriteKeyBootstrap(this, 'WriteKeyBootstrap', {
            table,
            workspaces: config.writeKeys.map((key) => key.workspace),
            allowedOrigins: Object.fromEntries(config.writeKeys.flatMap((key) => (key.allowedOrigins ? [[key.workspace, key.allowedOrigins]] : []))),
          })
        : undefined;
    this.monitoring = new Monitoring(this, 'Monitoring', {
      ingestApi: this.ingestApi,
      evaluator: this.evaluator.handler,
      deadLetterQueues: [this.evaluator.deadLetterQueue, ...this.leadFanout.deadLetterQueues],
      functions: [this.ingestApi.handler, this.evaluator.handler, ...this.leadFanout.notifiers],
      alarmEmails: config.alarmEmails,
      evaluationInterval: Duration.minutes(config.evaluation.everyMinutes),
    });

    new CfnOutput(this, 'IngestUrl', { description: 'Segment-compatible endpoint: point your SDK or backend at it', value: this.ingestApi.url });
    new CfnOutput(this, 'TableName', { description: 'DynamoDB table (for `pql-radar --table ... keys create`)', value: table.tableName });
    new CfnOutput(this, 'EventBusName', { description: 'Lead events: subscribe your own rules to this bus', value: this.leadFanout.eventBus.eventBusName });
    new CfnOutput(this, 'EventBusArn', { value: this.leadFanout.eventBus.eventBusArn });
    new CfnOutput(this, 'DashboardUrl', { description: 'CloudWatch dashboard', value: this.monitoring.dashboardUrl });
    new CfnOutput(this, 'AlarmTopicArn', { description: 'Alarms go here; subscribe more endpoints if you like', value: this.monitoring.alarmTopic.topicArn });
    for (const [route, queue] of Object.entries(this.leadFanout.queues)) {
      new CfnOutput(this, `LeadQueueUrl-${route}`, { description: `Lead events of route ${route}, for your own consumers`, value: queue.queueUrl });
    }
    for (const [workspace, secretName] of Object.entries(bootstrap?.secretNames ?? {})) {
      new CfnOutput(this, `WriteKeySecret-${workspace}`, { description: `Write key of workspace ${workspace}: aws secretsmanager get-secret-value --secret-id ...`, value: secretName });
    }
  }
}
