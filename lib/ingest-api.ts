import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { feedbackSigningKeyPartition, workspacePartitionsPattern, writeKeysPartition } from '../functions/adapters/dynamodb/item-keys';
import { feedbackPath } from '../functions/core/lead-feedback';
import {
  defaultQuarantineRetentionDays,
  defaultRetentionDays,
  environmentNames,
} from '../functions/shared/settings';
import { LambdaFunction } from './lambda-function';

/**
 * One route per method for every call: the function knows the paths (the Segment HTTP API's and the browser SDKs'
 * one-letter ones) and answers 404 for the rest. OPTIONS is the browsers' CORS preflight, which the function answers
 * from the workspaces' allowed origins (API Gateway's own CORS settings are one static list for the whole API).
 */
export const ingestRoute = '/v1/{call}';
export const ingestMethods = [apigwv2.HttpMethod.POST, apigwv2.HttpMethod.OPTIONS];
/**
 * Sales feedback links (functions/ingest/feedback-http.ts): GET answers a confirmation page and changes nothing (link
 * previews and scanners fetch it), POST from that page applies the feedback. The signed token is the authorization.
 */
export const feedbackMethods = [apigwv2.HttpMethod.GET, apigwv2.HttpMethod.POST];
/**
 * The HTTP API's access log line, one per request, as HTTP API variables. No headers, so write keys never reach the
 * logs; the caller's IP address and user agent (personal data, and a third of a browser request's line) only with
 * `requestLogs`.
 */
export function accessLogFormat(requestLogs: boolean): Record<string, string> {
  return {
    requestId: '$context.requestId',
    ...(requestLogs ? { ip: '$context.identity.sourceIp', userAgent: '$context.identity.userAgent' } : {}),
    requestTime: '$context.requestTime',
    httpMethod: '$context.httpMethod',
    routeKey: '$context.routeKey',
    protocol: '$context.protocol',
    status: '$context.status',
    responseLength: '$context.responseLength',
    responseLatency: '$context.responseLatency',
    integrationStatus: '$context.integrationStatus',
    integrationLatency: '$context.integrationLatency',
    integrationErrorMessage: '$context.integrationErrorMessage',
    errorMessage: '$context.error.message',
  };
}

/**
 * What the ingest Lambda may do with the table, by partition (functions/adapters/dynamodb/item-keys.ts): read write
 * keys and the origins item (`KEYS`), workspace data, and the feedback links' signing key (`FEEDBACK_SIGNING_KEY`, not
 * `META`); write (events, profiles, members, receipts, the quarantine) only workspace data, since keys and origins are
 * written by the CLI and the bootstrap. By key, one at a time or in batches: it never queries, scans, deletes (expiry
 * is the TTL's job) or touches the index.
 */
export const ingestTableAccess = {
  read: { actions: ['dynamodb:GetItem', 'dynamodb:BatchGetItem'], partitions: [writeKeysPartition, workspacePartitionsPattern, feedbackSigningKeyPartition] },
  write: { actions: ['dynamodb:BatchWriteItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], partitions: [workspacePartitionsPattern] },
};

/**
 * What storing accepted messages takes (functions/adapters/dynamodb/event-store.ts), which is all the ingest buffer's
 * consumer (lib/ingest-buffer.ts) does: `ingestTableAccess` narrowed to workspace data, since only the HTTP side reads
 * the write keys and the feedback links' key.
 */
export const storingTableAccess = {
  read: { actions: ingestTableAccess.read.actions, partitions: ingestTableAccess.write.partitions },
  write: ingestTableAccess.write,
};

/**
 * Allows `fn` each of `access`'s actions on the table, by key (`dynamodb:LeadingKeys`) in its partitions only.
 * Explicit rather than grantReadWriteData, which would add Query, Scan, DeleteItem and the index ARNs.
 */
export function grantTableAccess(fn: lambda.IFunction, table: dynamodb.ITable, access: typeof ingestTableAccess): void {
  for (const { actions, partitions } of [access.read, access.write]) {
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions,
        resources: [table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': partitions } },
      }),
    );
  }
}

/** Where and how what ingest accepted is stored: the settings ingest and the ingest buffer's consumer share. */
export interface IngestStorageProps {
  /** The table events, entity state, write keys and quarantined messages live in. */
  readonly table: dynamodb.ITable;
  /**
   * Days an event is kept before its TTL expires it.
   * @default 400
   */
  readonly retentionDays?: number;
  /**
   * Days a rejected message stays in the quarantine for an operator to inspect.
   * @default 14
   */
  readonly quarantineRetentionDays?: number;
  /**
   * The rules file's time zone: events are stored by their day in it, the days the evaluator recomputes.
   * @default UTC
   */
  readonly timeZone?: string;
}

/** The environment of a function that stores what ingest accepted (functions/ingest/config.ts reads it). */
export function ingestStorageEnvironment(props: IngestStorageProps): Record<string, string> {
  return {
    [environmentNames.tableName]: props.table.tableName,
    [environmentNames.retentionDays]: String(props.retentionDays ?? defaultRetentionDays),
    [environmentNames.quarantineRetentionDays]: String(props.quarantineRetentionDays ?? defaultQuarantineRetentionDays),
    [environmentNames.timeZone]: props.timeZone ?? 'UTC',
  };
}

/**
 * The ingest function's entries, by the ingest buffer it puts requests on (functions/ingest/lambda-handler.ts): each
 * carries that buffer's SDK client only, with the variable naming the buffer to it.
 */
export const ingestEntries = {
  direct: { entry: 'functions/ingest/handler.ts' },
  kinesis: { entry: 'functions/ingest/kinesis-handler.ts', variable: environmentNames.ingestStream },
  firehose: { entry: 'functions/ingest/firehose-handler.ts', variable: environmentNames.ingestDeliveryStream },
} as const;

/** An ingest buffer as ingest sees it: ingest may do `action` on `resource` (putting one record), nothing else, and is told `name`. */
export interface IngestRequestBuffer {
  readonly service: 'kinesis' | 'firehose';
  readonly action: string;
  readonly resource: string;
  readonly name: string;
}

export interface IngestApiProps extends IngestStorageProps {
  /**
   * The ingest buffer ingest puts each request of one message on, instead of writing the table: the `requests` of
   * lib/ingest-buffer.ts or lib/ingest-firehose-buffer.ts. Left out while a buffer drains, the first of the two deploys
   * that turn it off: ingest writes the table again while the buffer's function still stores what the buffer holds
   * (deleting the buffer before that is done would lose accepted events).
   * @default - none: ingest writes the table
   */
  readonly buffer?: IngestRequestBuffer;
  /**
   * Default-stage throttling; over it clients get 429, which Segment SDKs retry.
   * @default - rateLimit 1000 requests per second, burstLimit 2000
   */
  readonly throttling?: apigwv2.ThrottleSettings;
  /**
   * How long the function logs and the API access logs are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * A Lambda function URL beside the HTTP API: the same function answers the same calls there, without the HTTP
   * API's charge per request (most of what browser traffic costs, one request per event). A function URL has no
   * stage throttling and no access logs: `reservedConcurrency` caps the function's concurrent executions, on both
   * endpoints (over it, the function URL answers 429 and the HTTP API a 5xx, both of which Segment SDKs retry).
   * @default - no function URL
   */
  readonly functionUrl?: { readonly reservedConcurrency?: number };
  /**
   * Whether the function logs every request at INFO (its status and counts) along with Lambda's START and REPORT
   * records, and the access logs the caller's IP address and user agent: about 1.1 KB a request more in CloudWatch
   * Logs, which at one request per browser event costs more than the request's DynamoDB write. Without them the
   * function logs warnings and errors; the access logs still have every request (its id, route, status and
   * latencies), and the metrics every count.
   * @default false
   */
  readonly requestLogs?: boolean;
}

/**
 * The Segment-compatible HTTPS endpoint: an HTTP API (payload format 2.0) whose routes all go to one ingest
 * Lambda, with stage throttling and JSON access logs.
 *
 * Reserved concurrency is not set on the ingest Lambda unless a function URL asks for it: it is taken from the
 * account-wide concurrency limit, so a default would risk starving other workloads or failing to deploy in accounts
 * with a low limit. The stage throttling is what bounds the load through the API.
 */
export class IngestApi extends Construct {
  public readonly handler: lambda.Function;
  public readonly httpApi: apigwv2.HttpApi;
  /** Base URL of the default stage, e.g. `https://abc123.execute-api.eu-west-1.amazonaws.com/`. */
  public readonly url: string;
  /** The function URL, when `functionUrl` is set: `url` is its base, e.g. `https://abc123.lambda-url.eu-west-1.on.aws/`. */
  public readonly functionUrl?: lambda.FunctionUrl;

  constructor(scope: Construct, id: string, props: IngestApiProps) {
    super(scope, id);
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;

    this.handler = new LambdaFunction(this, 'Handler', {
      entry: ingestEntries[props.buffer?.service ?? 'direct'].entry,
      description: 'pql-radar ingest: Segment HTTP Tracking API to DynamoDB',
      memorySize: 512,
      timeout: Duration.seconds(10),
      logRetention,
      logLevel: props.requestLogs ? 'INFO' : 'WARN',
      environment: ingestStorageEnvironment(props),
      reservedConcurrentExecutions: props.functionUrl?.reservedConcurrency,
    }).function;
    // Never the evaluator's outbox or its rules progress.
    grantTableAccess(this.handler, props.table, ingestTableAccess);
    if (props.buffer) {
      this.handler.addToRolePolicy(new iam.PolicyStatement({ actions: [props.buffer.action], resources: [props.buffer.resource] }));
      this.handler.addEnvironment(ingestEntries[props.buffer.service].variable, props.buffer.name);
    }
    if (props.functionUrl) {
      // No IAM auth: Segment clients authenticate with a write key, which the function checks (answering 401); no CORS
      // settings, so that the function answers the browsers' preflights from the workspaces' origins, as behind the API.
      this.functionUrl = this.handler.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
    }

    this.httpApi = new apigwv2.HttpApi(this, 'HttpApi', {
      // Named after the stack, so the APIs of several stacks in one account tell apart in the console.
      apiName: `${Stack.of(this).stackName}-ingest`,
      description: 'pql-radar ingest (Segment HTTP Tracking API)',
      // The default stage HttpApi would create takes neither throttling nor access logs.
      createDefaultStage: false,
    });

    const accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const stage = new apigwv2.HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      autoDeploy: true,
      throttle: {
        rateLimit: props.throttling?.rateLimit ?? 1000,
        burstLimit: props.throttling?.burstLimit ?? 2000,
      },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(JSON.stringify(accessLogFormat(props.requestLogs ?? false))),
      },
    });
    this.url = stage.url;

    const integration = new HttpLambdaIntegration('Ingest', this.handler, {
      payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
    });
    for (const route of this.httpApi.addRoutes({ path: ingestRoute, methods: ingestMethods, integration })) {
      Validations.of(route).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          'Segment clients authenticate with a write key (Basic auth or `writeKey` in the body) that the ingest ' +
          'Lambda checks, answering 401; an API Gateway authorizer cannot read a key from the body, and a CORS ' +
          'preflight carries no credentials by definition.',
      });
    }
    for (const route of this.httpApi.addRoutes({ path: feedbackPath, methods: feedbackMethods, integration })) {
      Validations.of(route).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason: 'Feedback links are one click with no login: the HMAC-signed, expiring, single-use token in the link is what the Lambda checks.',
      });
    }
  }
}
