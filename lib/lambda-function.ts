import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CfnResource, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { type ICommandHooks, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, type IConstruct } from 'constructs';
import { environmentNames, metricNamespace, serviceName } from '../functions/shared/settings';
import { lambdaBundling } from './lambda-bundling';

/**
 * CDK context key: when `true`, functions get a tiny inline placeholder instead of an esbuild bundle,
 * so a synth takes well under a second. For tests and quick template checks; never deploy such a template
 * (the placeholder throws on every invocation).
 */
export const SKIP_BUNDLING_CONTEXT = 'pql-radar:skipBundling';

/** Resolved from this file, not from process.cwd(), so synth works from any directory. */
const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface LambdaFunctionProps {
  /** Path of the handler module relative to the project root, e.g. `functions/ingest/handler.ts`. */
  readonly entry: string;
  /**
   * Name of the function exported by `entry`.
   * @default 'handler'
   */
  readonly handler?: string;
  /**
   * @default - no description
   */
  readonly description?: string;
  /**
   * @default 256
   */
  readonly memorySize?: number;
  /**
   * @default Duration.seconds(10)
   */
  readonly timeout?: Duration;
  /**
   * Function-specific environment variables, merged over the Powertools and Node.js defaults.
   * @default - none
   */
  readonly environment?: Record<string, string>;
  /**
   * How long the function's logs are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * The least level that reaches the log group, of the function's own lines and of Lambda's platform records (START
   * and REPORT are INFO): WARN keeps the warnings and errors of a function invoked for every request, whose INFO
   * lines would cost CloudWatch Logs' ingestion per request. The function's lines are filtered by its logger
   * (Powertools' level), not by Lambda's application log level: Lambda takes a line without a level, as the metrics'
   * EMF lines are, for INFO, and would drop the custom metrics with them.
   * @default 'INFO'
   */
  readonly logLevel?: 'INFO' | 'WARN';
  /**
   * Concurrent executions set aside for this function, which also caps it.
   * @default - none: the function draws on the account's unreserved concurrency
   */
  readonly reservedConcurrentExecutions?: number;
  /**
   * Files copied into the bundle after esbuild ran, e.g. a configuration file the handler reads at cold start.
   * `from` is an absolute path, `to` a file name in the bundle's root (the function's working directory).
   * Copied with `cp` by the local bundling, so synthesizing needs a POSIX shell. Nothing is copied when bundling
   * is skipped by context: the placeholder code reads no files.
   * @default - none
   */
  readonly copyFiles?: readonly { readonly from: string; readonly to: string }[];
}

/**
 * The one way pql-radar builds a Lambda function: Node.js 24 on arm64, a minified ESM bundle that includes
 * the AWS SDK (pinned version, faster cold start than the runtime's copy), source maps, JSON logs into its
 * own log group with a retention, and a role that can write only to that log group.
 *
 * No X-Ray tracing: the handlers use no Powertools Tracer, so active tracing would record little more than each
 * invocation's duration (already a metric), and its permissions support no resource-level restriction.
 */
export class LambdaFunction extends Construct {
  public readonly function: lambda.Function;
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: LambdaFunctionProps) {
    super(scope, id);

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      // The log group lives and dies with its function; a retained orphan would only cost storage.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // An own role instead of AWSLambdaBasicExecutionRole, which may create any log group and write to all of them.
    const role = new iam.Role(this, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    this.logGroup.grants.write(role);

    const common = {
      description: props.description,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout ?? Duration.seconds(10),
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      ...(props.logLevel === 'WARN' ? { systemLogLevelV2: lambda.SystemLogLevel.WARN } : {}),
      environment: {
        [environmentNames.serviceName]: serviceName,
        [environmentNames.metricNamespace]: metricNamespace,
        NODE_OPTIONS: '--enable-source-maps',
        ...(props.logLevel === 'WARN' ? { [environmentNames.logLevel]: 'WARN' } : {}),
        ...props.environment,
      },
    };

    const skipBundling = [true, 'true'].includes(this.node.tryGetContext(SKIP_BUNDLING_CONTEXT));
    this.function = skipBundling
      ? new lambda.Function(this, 'Function', {
          ...common,
          code: lambda.Code.fromInline(
            `exports.handler = async () => { throw new Error('synthesized with ${SKIP_BUNDLING_CONTEXT}'); };`,
          ),
          handler: 'index.handler',
        })
      : new NodejsFunction(this, 'Function', {
          ...common,
          entry: resolve(projectRoot, props.entry),
          handler: props.handler ?? 'handler',
          projectRoot,
          depsLockFilePath: resolve(projectRoot, 'package-lock.json'),
          // lib/lambda-bundling.ts in NodejsFunction's terms; test/infra/bundling.test.ts checks nothing is lost.
          bundling: {
            target: lambdaBundling.target,
            format: OutputFormat.ESM,
            mainFields: [...lambdaBundling.mainFields],
            banner: lambdaBundling.banner.js,
            minify: lambdaBundling.minify,
            sourceMap: lambdaBundling.sourcemap,
            sourcesContent: lambdaBundling.sourcesContent,
            // Nothing external: the AWS SDK goes into the bundle too.
            externalModules: [],
            esbuildArgs: { '--alias': Object.entries(lambdaBundling.alias).map(([name, replacement]) => `${name}=${replacement}`) },
            ...(props.copyFiles?.length ? { commandHooks: copyHooks(props.copyFiles) } : {}),
          },
        });
    ignoreRedundantRoleDependency(this.function);
  }
}

/**
 * A CDK Function depends on its role both through `Role` (a GetAtt) and an explicit DependsOn, which cfn-lint
 * reports as W3005 (redundant dependency); harmless, and not ours to remove. Ignored on that function only.
 */
export function ignoreRedundantRoleDependency(fn: IConstruct): void {
  (fn.node.defaultChild as CfnResource).addMetadata('cfn-lint', { config: { ignore_checks: ['W3005'] } });
}

/** POSIX single quotes, so that a path with spaces or quotes stays one argument. */
const shellQuote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

function copyHooks(files: readonly { readonly from: string; readonly to: string }[]): ICommandHooks {
  return {
    beforeBundling: () => [],
    beforeInstall: () => [],
    afterBundling: (_inputDir, outputDir) => files.map(({ from, to }) => `cp ${shellQuote(from)} ${shellQuote(join(outputDir, to))}`),
  };
}
