import { ArnFormat, CustomResource, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { writeKeysPartition } from '../functions/adapters/dynamodb/item-keys';
import { workspacePattern } from '../functions/core/write-key';
import { ignoreRedundantRoleDependency, LambdaFunction } from './lambda-function';

export interface WriteKeyBootstrapProps {
  /** The table the write keys (their hashes) go into. */
  readonly table: dynamodb.ITable;
  /** The workspaces that get a write key; at least one. */
  readonly workspaces: readonly string[];
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
 * Gives each configured workspace a write key at deploy time, in a Secrets Manager secret
 * `<stack name>/write-key/<workspace>` that the user reads once:
 * `aws secretsmanager get-secret-value --secret-id <stack name>/write-key/<workspace> --query SecretString --output text`.
 *
 * A custom resource (functions/bootstrap/handler.ts) creates a key only for a workspace without a secret, so a
 * redeploy never rotates keys; removing a workspace or the stack deletes nothing. The secrets are created by the
 * function, not declared in the template, so no key value ever passes through CloudFormation. They are encrypted
 * with the AWS managed key and not rotated automatically: a write key is rotated by creating a new one and
 * revoking the old with the CLI once the SDKs send the new one, which no rotation Lambda can coordinate.
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
    if (props.workspaces.length === 0) throw new Error('WriteKeyBootstrap needs at least one workspace');
    for (const workspace of props.workspaces) {
      if (!workspacePattern.test(workspace)) throw new Error(`workspace "${workspace}" is not valid: use 1-63 lowercase letters, digits, "-" or "_"`);
    }
    if (new Set(props.workspaces).size !== props.workspaces.length) throw new Error('WriteKeyBootstrap workspaces must be unique');
    this.secretNames = Object.fromEntries(props.workspaces.map((workspace) => [workspace, `${prefix}${workspace}`]));

    this.handler = new LambdaFunction(this, 'Handler', {
      entry: 'functions/bootstrap/handler.ts',
      description: 'pql-radar write-key bootstrap: one key per configured workspace, kept in Secrets Manager',
      timeout: Duration.minutes(1),
      logRetention,
    }).function;
    // DynamoDbWriteKeyStore.create is a single conditional PutItem.
    const setsOrigins = props.allowedOrigins !== undefined && Object.keys(props.allowedOrigins).length > 0;
    this.handler.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:PutItem', ...(setsOrigins ? ['dynamodb:UpdateItem'] : [])],
        resources: [props.table.tableArn],
        // The keys and the origins item, nothing else of the table.
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [writeKeysPartition] } },
      }),
    );
    const secretArn = (name: string) =>
      stack.formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    this.handler.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['secretsmanager:DescribeSecret', 'secretsmanager:CreateSecret'],
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
    ignoreRedundantRoleDependency(this.provider.node.findChild('framework-onEvent') as lambda.Function);

    this.resource = new CustomResource(this, 'WriteKeys', {
      serviceToken: this.provider.serviceToken,
      resourceType: 'Custom::PqlRadarWriteKeys',
      properties: {
        TableName: props.table.tableName,
        SecretNamePrefix: prefix,
        Workspaces: [...props.workspaces],
        ...(setsOrigins ? { AllowedOrigins: props.allowedOrigins } : {}),
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
