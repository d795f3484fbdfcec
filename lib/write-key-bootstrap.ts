import { ArnFormat, CustomResource, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import type { DestinationRecord } from '../functions/adapters/dynamodb/destination-registry';
import { feedbackSigningKeyPartition, metaPartitionKey, writeKeysPartition } from '../functions/adapters/dynamodb/item-keys';
import { checkWorkspace } from '../functions/core/write-key';
import { ignoreRedundantRoleDependency, LambdaFunction } from './lambda-function';

export interface WriteKeyBootstrapProps {
  /** The table the write keys (their hashes) and the destination records go into. */
  readonly table: dynamodb.ITable;
  /** The workspaces that get a write key; none is fine (the destinations are still recorded). */
  readonly workspaces: readonly string[];
  /**
   * The deployment's destinations (LeadFanout.destinations), recorded in the table on every deploy that changes
   * them, exactly: a destination no longer listed disappears from the table.
   * @default [] (the table then records none)
   */
  readonly destinations?: readonly DestinationRecord[];
  /**
   * The browser origins some workspaces accept events from, set on every deploy (canonical origins, or `*`); a
   * workspace not named keeps what `pql-radar origins set` gave it. @default {}
   */
  readonly allowedOrigins?: Readonly<Record<string, readonly string[]>>;
  /**
   * Secret names are unique per account and region: derived from the stack's, so several stacks can share one.
   * @default `${stackName}/write-key/`
   */
  readonly secretNamePrefix?: string;
  /**
   * How long the logs of the bootstrap function and of the custom resource framework are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * What the deploy writes into the table, through one custom resource (functions/bootstrap/handler.ts) that exists in
 * every stack, with or without write keys:
 *
 * - Write keys: each configured workspace gets one at deploy time, in a Secrets Manager secret
 *   `<stack name>/write-key/<workspace>` that the user reads once:
 *   `aws secretsmanager get-secret-value --secret-id <stack name>/write-key/<workspace> --query SecretString --output text`.
 *   A key is created only for a workspace without a secret, so a redeploy never rotates keys; removing a workspace or
 *   the stack deletes nothing, and a secret's key is registered again in a new table (a deploy after `cdk destroy`). The secrets are created by the function, not declared in the template, so no key value
 *   ever passes through CloudFormation. They are encrypted with the AWS managed key and not rotated automatically: a
 *   write key is rotated by creating a new one and revoking the old with the CLI once the SDKs send the new one, which
 *   no rotation Lambda can coordinate.
 * - Destinations: the records of LeadFanout's destinations (`META`, `DESTINATION#<id>`), replaced on every create
 *   and update, so the CLI's delivery commands find the queues, rules and archive with `--table` alone. Deleting the
 *   stack leaves them (the table is retained, and a replaced resource's delete must not erase its successor's records).
 * - The feedback links' signing key (`FEEDBACK_SIGNING_KEY`), made once per table; in a table made by a version that
 *   kept it in `META`, moved from there (functions/adapters/dynamodb/feedback-store.ts).
 *
 * The class keeps its name, and the resource its id and type, so that existing stacks update it in place.
 */
export class WriteKeyBootstrap extends Construct {
  public readonly handler: lambda.Function;
  public readonly provider: cr.Provider;
  public readonly resource: CustomResource;
  /** Each workspace's secret name. */
  public readonly secretNames: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: WriteKeyBootstrapProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const prefix = props.secretNamePrefix ?? `${stack.stackName}/write-key/`;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const destinations = props.destinations ?? [];
    if (new Set(destinations.map((destination) => destination.id)).size !== destinations.length) throw new Error('WriteKeyBootstrap destination ids must be unique');
    for (const workspace of props.workspaces) checkWorkspace(workspace);
    if (new Set(props.workspaces).size !== props.workspaces.length) throw new Error('WriteKeyBootstrap workspaces must be unique');
    this.secretNames = Object.fromEntries(props.workspaces.map((workspace) => [workspace, `${prefix}${workspace}`]));

    this.handler = new LambdaFunction(this, 'Handler', {
      entry: 'functions/bootstrap/handler.ts',
      description: 'pql-radar deploy bootstrap: a write key per configured workspace (Secrets Manager), the destinations in the table',
      timeout: Duration.minutes(1),
      logRetention,
    }).function;
    // DynamoDbWriteKeyStore.create is a single conditional PutItem; find, of an existing secret's key, a GetItem.
    const setsOrigins = props.allowedOrigins !== undefined && Object.keys(props.allowedOrigins).length > 0;
    this.handler.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', ...(setsOrigins ? ['dynamodb:UpdateItem'] : [])],
        resources: [props.table.tableArn],
        // The keys and the origins item, nothing else of the table.
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [writeKeysPartition] } },
      }),
    );
    // DynamoDbDestinationRegistry.replace: a Query of the recorded destinations, a DeleteItem per one removed, a
    // PutItem per one kept; and makeOrMoveFeedbackSecret's GetItem and DeleteItem of the signing key versions before
    // kept here. A statement of its own, so that DeleteItem never reaches the write keys.
    this.handler.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
        resources: [props.table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [metaPartitionKey] } },
      }),
    );
    // The feedback links' signing key: one conditional PutItem, which makes it or moves it out of META.
    this.handler.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:PutItem'],
        resources: [props.table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [feedbackSigningKeyPartition] } },
      }),
    );
    const secretArn = (name: string) =>
      stack.formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    if (props.workspaces.length > 0) {
      this.handler.addToRolePolicy(
        new iam.PolicyStatement({
          // GetSecretValue: an existing secret's key is registered in a table that does not know it.
          actions: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue', 'secretsmanager:CreateSecret'],
          resources: Object.values(this.secretNames).flatMap((name) => [
            // A secret's ARN is its name, a hyphen and six random characters: `??????` matches exactly those, where
            // `*` would also match a longer name, e.g. another workspace's `<name>-eu`.
            secretArn(`${name}-??????`),
            // A request about a secret that does not exist yet is authorized against its name alone (no suffix), and
            // DescribeSecret answers ResourceNotFoundException only if that is allowed.
            secretArn(name),
          ]),
        }),
      );
    }

    // An own role and log group for the framework function: the default role carries the managed
    // AWSLambdaBasicExecutionRole policy, and the default log group never expires.
    const frameworkLogGroup = new logs.LogGroup(this, 'ProviderLogGroup', { retention: logRetention, removalPolicy: RemovalPolicy.DESTROY });
    const frameworkRole = new iam.Role(this, 'ProviderRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    frameworkLogGroup.grants.write(frameworkRole);
    this.provider = new cr.Provider(this, 'Provider', {
      onEventHandler: this.handler,
      frameworkOnEventRole: frameworkRole,
      logGroup: frameworkLogGroup,
    });
    const framework = this.provider.node.findChild('framework-onEvent') as lambda.Function;
    ignoreRedundantRoleDependency(framework);
    // CDK's framework code is JavaScript, the same on arm64, where every function of the stack runs; Provider has no
    // setting for its function's architecture.
    (framework.node.defaultChild as lambda.CfnFunction).architectures = ['arm64'];

    this.resource = new CustomResource(this, 'WriteKeys', {
      serviceToken: this.provider.serviceToken,
      resourceType: 'Custom::PqlRadarWriteKeys',
      properties: {
        TableName: props.table.tableName,
        SecretNamePrefix: prefix,
        Workspaces: [...props.workspaces],
        ...(setsOrigins ? { AllowedOrigins: props.allowedOrigins } : {}),
        // Left out when empty: the function records no destination then either, and a template without them stays
        // as it was.
        ...(destinations.length > 0 ? { Destinations: destinations.map((destination) => ({ ...destination })) } : {}),
        // Not read by the function: CloudFormation runs the bootstrap again only when these properties change, not when
        // its code does. Each entry names a migration of the table's items that the bootstrap runs, so that the deploy
        // upgrading a stack made before it changes this, and runs it. feedback-signing-key-out-of-meta: the feedback
        // links' signing key moved to its own partition (functions/adapters/dynamodb/feedback-store.ts).
        Migrations: ['feedback-signing-key-out-of-meta'],
      },
    });

    Validations.of(frameworkRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(this.handler.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`,
      reason:
        'The custom resource framework invokes the bootstrap function through Function.grantInvoke, which also ' +
        'allows its versions and aliases (<arn>:*); it is still this one function.',
    });
  }
}
