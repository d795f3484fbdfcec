import { Duration, Validations } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { entityPartitionPrefix, writeKeysPartition } from '../functions/adapters/dynamodb/item-keys';
import { environmentNames } from '../functions/shared/settings';
import { LambdaFunction } from './lambda-function';

/** The product's read of one user's or account's lead status (functions/core/lead-status.ts checks type and id). */
export const leadStatusRoute = '/v1/leads/{type}/{id}';
/** A GetItem and a little JSON: the smallest memory Lambda has to spare, which bench:status prices. */
export const leadStatusMemoryMb = 256;
/** How long a warm function, and then the product's backend, keeps a status (Cache-Control max-age). */
export const leadStatusCacheSeconds = 30;

/**
 * What the lead status Lambda may do with the table: GetItem, and only of write and read keys (`KEYS`) and of the
 * partitions of users and accounts, whose STATE item it reads. Not the quarantine (rejected messages), receipts, the
 * outbox or the delivery log; no Query, Scan, batch or write of any kind, and not the index.
 */
export const leadStatusTableAccess = {
  actions: ['dynamodb:GetItem'],
  partitions: [writeKeysPartition, `${entityPartitionPrefix('*', 'user')}*`, `${entityPartitionPrefix('*', 'account')}*`],
};

export interface LeadStatusApiProps {
  readonly table: dynamodb.ITable;
  /** The ingest HTTP API: the product's backend reads beside where it sends. */
  readonly httpApi: apigwv2.IHttpApi;
  /**
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * `GET /v1/leads/{type}/{id}` on the ingest API, served by its own small function rather than the ingest one, so that
 * the code and the role that read lead state share nothing with those that write events: this role reads by key
 * only, and ingest's keeps no read of lead state it does not need.
 */
export class LeadStatusApi extends Construct {
  public readonly handler: lambda.Function;
  public readonly route: apigwv2.HttpRoute;

  constructor(scope: Construct, id: string, props: LeadStatusApiProps) {
    super(scope, id);
    this.handler = new LambdaFunction(this, 'Handler', {
      entry: 'functions/lead-status/handler.ts',
      description: "pql-radar lead status: the product's read of a user's or account's tier",
      memorySize: leadStatusMemoryMb,
      // One GetItem: a page load waiting longer is better served by no prompt at all.
      timeout: Duration.seconds(5),
      ...(props.logRetention ? { logRetention: props.logRetention } : {}),
      environment: {
        [environmentNames.tableName]: props.table.tableName,
        LEAD_CACHE_SECONDS: String(leadStatusCacheSeconds),
      },
    }).function;
    this.handler.addToRolePolicy(
      new iam.PolicyStatement({
        actions: leadStatusTableAccess.actions,
        resources: [props.table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': leadStatusTableAccess.partitions } },
      }),
    );

    this.route = new apigwv2.HttpRoute(this, 'Route', {
      httpApi: props.httpApi,
      routeKey: apigwv2.HttpRouteKey.with(leadStatusRoute, apigwv2.HttpMethod.GET),
      integration: new HttpLambdaIntegration('LeadStatus', this.handler, { payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0 }),
    });
    Validations.of(this.route).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        "The product's backend authenticates with a read key (Authorization: Bearer or Basic) that the function checks " +
        'in constant time against its stored hash, answering 401 or, for a write key, 403; an API Gateway authorizer ' +
        'would cost a second invocation per page load for the same check.',
    });
  }
}
