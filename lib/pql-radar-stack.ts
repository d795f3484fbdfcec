import { Annotations, CfnOutput, type CfnOutputProps, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';
import { type LoadedRulesFile, outputId, type PqlRadarConfig } from './config';
import { ChangeCapture } from './change-capture';
import { Evaluator } from './evaluator';
import { EventStore } from './event-store';
import { IngestApi } from './ingest-api';
import { IngestBuffer } from './ingest-buffer';
import { IngestFirehoseBuffer } from './ingest-firehose-buffer';
import { feedbackReasons } from '../functions/core/lead-feedback';
import { LeadStatusApi } from './lead-status-api';
import { LeadEventSchema } from './lead-event-schema';
import { LeadFanout } from './lead-fanout';
import { Monitoring } from './monitoring';
import { RuleHealth } from './rule-health';
import { WriteKeyBootstrap } from './write-key-bootstrap';

export interface PqlRadarStackProps extends StackProps {
  /** The validated deployment config (lib/config.ts `loadConfig`). */
  readonly config: PqlRadarConfig;
  /** The rules file the config names, as `loadConfig` read and validated it; bundled into the evaluator. */
  readonly rulesFile: LoadedRulesFile;
}

/**
 * pql-radar in one stack: the event store (stateful, retained), the ingest API (and the ingest buffer behind it,
 * Firehose unless the config says otherwise), the evaluator on a schedule, the lead bus with its fan-out to the configured destinations (routes and CRMs), the daily rule-health job, the lead event schema, the deploy
 * bootstrap (write keys, and the destinations recorded in the table), and the alarms and dashboard over all of it.
 */
export class PqlRadarStack extends Stack {
  public readonly eventStore: EventStore;
  public readonly ingestApi: IngestApi;
  /** The Kinesis ingest buffer, when the config's `ingestBuffer` asks for it (service kinesis). */
  public readonly ingestBuffer?: IngestBuffer;
  /** The Firehose ingest buffer: the default, unless the config's `ingestBuffer` is false or asks for kinesis. */
  public readonly ingestFirehoseBuffer?: IngestFirehoseBuffer;
  public readonly leadStatusApi: LeadStatusApi;
  public readonly changeCapture: ChangeCapture;
  public readonly leadFanout: LeadFanout;
  public readonly evaluator: Evaluator;
  public readonly monitoring: Monitoring;
  public readonly ruleHealth: RuleHealth;

  constructor(scope: Construct, id: string, props: PqlRadarStackProps) {
    super(scope, id, props);
    const { config } = props;

    this.eventStore = new EventStore(this, 'EventStore', {
      deletionProtection: config.deletionProtection,
      ...(config.tableClass === 'standard-infrequent-access' ? { tableClass: dynamodb.TableClass.STANDARD_INFREQUENT_ACCESS } : {}),
    });
    const table = this.eventStore.table;
    const storage = { table, retentionDays: config.retentionDays, timeZone: props.rulesFile.ruleset.calendar.timeZone };
    const buffer = config.ingestBuffer;
    if (buffer?.service === 'kinesis') {
      this.ingestBuffer = new IngestBuffer(this, 'IngestBuffer', {
        ...storage,
        shards: buffer.shards,
        batchingWindow: Duration.seconds(buffer.batchingWindowSeconds),
        retention: Duration.hours(buffer.retentionHours),
      });
    } else if (buffer?.service === 'firehose') {
      this.ingestFirehoseBuffer = new IngestFirehoseBuffer(this, 'IngestFirehoseBuffer', {
        ...storage,
        bufferingInterval: Duration.seconds(buffer.batchingWindowSeconds),
        retention: Duration.days(buffer.retentionDays),
      });
    }
    const { rateLimit, burstLimit, functionUrl, requestLogs } = config.ingest;
    this.ingestApi = new IngestApi(this, 'IngestApi', {
      ...storage,
      throttling: { rateLimit, burstLimit },
      requestLogs,
      ...(functionUrl ? { functionUrl } : {}),
      // A draining buffer still stores what it holds, but takes no more requests.
      buffer: buffer?.draining ? undefined : (this.ingestBuffer ?? this.ingestFirehoseBuffer)?.requests,
    });
    this.leadStatusApi = new LeadStatusApi(this, 'LeadStatusApi', { table, httpApi: this.ingestApi.httpApi });
    this.leadFanout = new LeadFanout(this, 'LeadFanout', {
      routes: config.routes,
      crm: config.crm,
      table,
      retryHours: config.delivery.retryHours,
      deliveryLogDays: config.delivery.logDays,
      feedbackLinks: { baseUrl: this.ingestApi.url, reasons: Object.keys(feedbackReasons(props.rulesFile.ruleset)) },
    });
    this.evaluator = new Evaluator(this, 'Evaluator', {
      table,
      eventBus: this.leadFanout.eventBus,
      rulesFile: props.rulesFile,
      shards: config.evaluation.shards,
      everyMinutes: config.evaluation.everyMinutes,
      accountEveryMinutes: config.evaluation.accountEveryMinutes,
      userEveryMinutes: config.evaluation.userEveryMinutes,
      reservedConcurrency: config.evaluation.reservedConcurrency,
      memoryMb: config.evaluation.memoryMb,
      retentionDays: config.retentionDays,
    });
    this.changeCapture = new ChangeCapture(this, 'ChangeCapture', { table, evaluator: this.evaluator.handler });
    new LeadEventSchema(this, 'LeadEventSchema');
    // Always there, with or without write keys: it also records the destinations in the table for the CLI.
    const bootstrap = new WriteKeyBootstrap(this, 'WriteKeyBootstrap', {
      table,
      workspaces: config.writeKeys.map((key) => key.workspace),
      allowedOrigins: Object.fromEntries(config.writeKeys.flatMap((key) => (key.allowedOrigins ? [[key.workspace, key.allowedOrigins]] : []))),
      destinations: this.leadFanout.destinations,
    });
    // The functions that sign or check feedback links read the signing key where this bootstrap puts it, and only
    // there: their new code waits for it, so that on the upgrade from a version that kept the key in META, it has
    // moved the key before they read it (functions/adapters/dynamodb/feedback-store.ts). HubSpot's notifier waits too,
    // harmlessly.
    for (const signer of [this.ingestApi.handler, ...this.leadFanout.notifiers]) signer.node.addDependency(bootstrap.resource);
    this.ruleHealth = new RuleHealth(this, 'RuleHealth', {
      table,
      tierOrder: props.rulesFile.ruleset.file.tiers.map((tier) => tier.name),
      shards: config.evaluation.shards,
      everyHours: config.health.everyHours,
      liftAlarmBelow: config.health.liftAlarmBelow,
    });
    this.monitoring = new Monitoring(this, 'Monitoring', {
      ingestApi: this.ingestApi,
      evaluator: this.evaluator.handler,
      // Every dead-letter queue of the fan-out: the targets', the notifiers' FIFO ones and the sqs redrive queues.
      deadLetterQueues: this.leadFanout.deadLetterQueues,
      scheduleDeadLetterQueues: [this.evaluator.deadLetterQueue, this.ruleHealth.deadLetterQueue],
      notifiers: this.leadFanout.notifierDestinations,
      routeQueues: Object.values(this.leadFanout.queues),
      otherAlarms: [this.ruleHealth.alarm, this.ruleHealth.failureAlarm],
      changeCapture: this.changeCapture,
      ingestBuffer: this.ingestBuffer ?? this.ingestFirehoseBuffer,
      functions: [
        this.ingestApi.handler,
        ...(this.ingestBuffer ? [this.ingestBuffer.consumer] : []),
        ...(this.ingestFirehoseBuffer ? [this.ingestFirehoseBuffer.loader] : []),
        this.leadStatusApi.handler,
        this.evaluator.handler,
        ...this.leadFanout.notifiers,
        this.ruleHealth.handler,
      ],
      table: this.eventStore,
      alarmEmails: config.alarmEmails,
      evaluationInterval: Duration.minutes(config.evaluation.everyMinutes),
      changeWait: Duration.minutes(config.evaluation.userEveryMinutes),
    });
    // A warning, not an error: the topic may well be subscribed outside the config (a pager, AWS Chatbot), and a
    // first `cdk deploy` of the default config should go through.
    if (config.alarmEmails.length === 0) {
      Annotations.of(this.monitoring.alarmTopic).addWarningV2(
        'pql-radar:noAlarmEmails',
        'No alarmEmails in the config: alarms go only to the SNS topic of the AlarmTopicArn output, which nothing subscribes to yet. Add alarmEmails or subscribe an endpoint to that topic.',
      );
    }

    new CfnOutput(this, 'IngestUrl', { description: 'Segment-compatible endpoint: point your SDK or backend at it', value: this.ingestApi.url });
    if (this.ingestApi.functionUrl) {
      new CfnOutput(this, 'IngestFunctionUrl', { description: 'The same endpoint as a Lambda function URL, without the HTTP API\'s charge per request (ingest.functionUrl)', value: this.ingestApi.functionUrl.url });
      if (functionUrl?.reservedConcurrency === undefined) {
        Annotations.of(this.ingestApi.functionUrl).addWarningV2(
          'pql-radar:ingestFunctionUrlUncapped',
          'ingest.functionUrl has no reservedConcurrency: the function URL has no throttling, so a flood of requests can take the whole account\'s Lambda concurrency (the evaluator\'s too). Set ingest.functionUrl.reservedConcurrency to cap it.',
        );
      }
    }
    new CfnOutput(this, 'TableName', { description: 'DynamoDB table (for `pql-radar --table ... keys create`)', value: table.tableName });
    new CfnOutput(this, 'EventBusName', { description: 'Lead events: subscribe your own rules to this bus', value: this.leadFanout.eventBus.eventBusName });
    new CfnOutput(this, 'EventBusArn', { value: this.leadFanout.eventBus.eventBusArn });
    new CfnOutput(this, 'DashboardUrl', { description: 'CloudWatch dashboard', value: this.monitoring.dashboardUrl });
    new CfnOutput(this, 'AlarmTopicArn', { description: 'Alarms go here; subscribe more endpoints if you like', value: this.monitoring.alarmTopic.topicArn });
    this.#outputsByName('LeadQueueUrl', this.leadFanout.queues, (route, queue) => ({
      description: `Lead events of route ${route}, for your own consumers`,
      value: queue.queueUrl,
    }));
    this.#outputsByName('WriteKeySecret', bootstrap.secretNames, (workspace, secretName) => ({
      description: `Write key of workspace ${workspace}: aws secretsmanager get-secret-value --secret-id ...`,
      value: secretName,
    }));
  }

  /** One output per route or workspace, named `outputId(prefix, name)`: the config refuses two names that would share one. */
  #outputsByName<T>(prefix: string, byName: Readonly<Record<string, T>>, props: (name: string, value: T) => CfnOutputProps) {
    for (const [name, value] of Object.entries(byName)) new CfnOutput(this, outputId(prefix, name), props(name, value));
  }
}
