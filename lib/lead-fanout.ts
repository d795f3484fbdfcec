import { Annotations, Arn, ArnFormat, CfnRule, type CfnRuleAssertion, Duration, Fn, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { DestinationRecord } from '../functions/adapters/dynamodb/destination-registry';
import { leadEventSource, leadEventTypes } from '../functions/core/lead-event';
import { defaultDeliveryLogDays, defaultDeliveryRetryHours } from '../functions/shared/settings';
import type { CrmDestination, Destination } from './config';
import { encryptedQueue, ruleTargetDeadLetterQueue } from './dead-letter-queue';
import { NotifierDestination, type NotifierDestinationProps } from './notifier-destination';

/** An EventBridge input transformer as data: what a target receives instead of the whole event. */
export interface InputTransformer {
  readonly inputPathsMap: Readonly<Record<string, string>>;
  readonly inputTemplate: string;
}

/**
 * The plain-text e-mail. One quoted string per line is EventBridge's form for multi-line text: the target gets the
 * lines without their quotes. The reasons are a list, which a transformer cannot loop over: the summary carries
 * the transition, the score and the signals in one line instead.
 */
export const emailInput: InputTransformer = {
  inputPathsMap: {
    detailType: '$.detail-type',
    workspace: '$.detail.workspace',
    entityType: '$.detail.entity.type',
    entityId: '$.detail.entity.id',
    summary: '$.detail.summary',
    route: '$.detail.route',
    total: '$.detail.score.total',
    engagement: '$.detail.score.engagement',
    fit: '$.detail.score.fit',
    rulesetVersion: '$.detail.rulesetVersion',
    evaluatedAt: '$.detail.evaluatedAt',
    idempotencyKey: '$.detail.idempotencyKey',
  },
  inputTemplate: [
    '"<detailType>: <entityType> <entityId> (workspace <workspace>)"',
    '""',
    '"<summary>"',
    '""',
    '"Route: <route>"',
    '"Score: <total> (engagement <engagement>, fit <fit>)"',
    '"Rules version <rulesetVersion>, evaluated at <evaluatedAt>"',
    '"Idempotency key: <idempotencyKey>"',
  ].join('\n'),
};

/** Hands EventBridge a transformer exactly as written, so what is deployed is what the exported data says. */
class TransformedInput extends events.RuleTargetInput {
  constructor(private readonly transformer: InputTransformer) {
    super();
  }

  override bind(): events.RuleTargetInputProperties {
    return { inputPathsMap: { ...this.transformer.inputPathsMap }, inputTemplate: this.transformer.inputTemplate };
  }
}

/** The destination kinds of a route, as destination ids name them. */
type RouteKind = Destination['type'];

/** How lead events reach a destination: the record the deploy writes to the table (DestinationRecord). */
type DeployedDestination = Omit<DestinationRecord, 'transport'> & { transport: 'sqs' };

export interface LeadFanoutProps {
  /**
   * Routes as the rules file's tiers name them, each with its destinations (lib/config.ts). Destination ids and
   * construct ids follow the route and, per kind, the order of the destinations: reordering two destinations of one
   * kind swaps their ids (and recreates their resources).
   */
  readonly routes: Readonly<Record<string, readonly Destination[]>>;
  /**
   * CRMs that receive every transition of every user and account lead, whatever the route.
   * @default []
   */
  readonly crm?: readonly CrmDestination[];
  /**
   * One-click sales feedback links in Slack messages and webhook payloads (functions/core/lead-feedback.ts): the
   * ingest API's base URL they point at and the rules' reason codes.
   * @default no links
   */
  readonly feedbackLinks?: NotifierDestinationProps['feedbackLinks'];
  /** The table the notifiers keep the delivery log and the delivered keys in. */
  readonly table: dynamodb.ITable;
  /**
   * Bus names are unique per account and region: derived from the stack's, so several stacks can share one.
   * @default `${stackName}-leads`
   */
  readonly eventBusName?: string;
  /**
   * How long the archive keeps lead events for replay.
   * @default Duration.days(90)
   */
  readonly archiveRetention?: Duration;
  /**
   * How long EventBridge keeps retrying to hand a lead event to a target (a notifier's delivery queue, a topic, a
   * queue, a function) before the event goes to that target's dead-letter queue. 24 hours is EventBridge's maximum.
   * @default Duration.hours(24)
   */
  readonly maxEventAge?: Duration;
  /**
   * Attempts EventBridge makes within maxEventAge.
   * @default 185
   */
  readonly retryAttempts?: number;
  /**
   * Hours a notifier retries a lead event at its destination (slack, webhook, CRM), from when its delivery queue
   * received it, before it moves the event to the destination's dead-letter queue.
   * @default 24 (defaultDeliveryRetryHours)
   */
  readonly retryHours?: number;
  /**
   * Days the delivery log keeps each attempt, and a destination remembers the lead events it took.
   * @default 14 (defaultDeliveryLogDays)
   */
  readonly deliveryLogDays?: number;
  /**
   * How long the notifier functions' logs are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The lead event bus and everything that delivers its events to the user's destinations: an archive for replay and
 * one rule per destination, so a replay can target one destination (StartReplay's FilterArns take rule ARNs).
 * Destination ids are `<route>-<kind>-<n>` (n counts per route and kind from 1) and `crm-hubspot-<n>`; the deploy
 * records every destination in the table (`destinations`, written by the bootstrap custom resource), where the CLI
 * finds them.
 *
 * - A route's rule matches `source` pql-radar and `detail.route`. A CRM's rule matches every lead event type of users
 *   and accounts, whatever the route.
 * - slack, webhook, hubspot: a NotifierDestination each (lib/notifier-destination.ts): a FIFO delivery queue, one
 *   message group per destination, drained by a notifier Lambda that paces, retries for `retryHours`, deduplicates,
 *   logs each attempt and dead-letters what it gives up on.
 * - email: one SNS topic per route (KMS key with rotation; EventBridge may use it), a plain-text transformer; the
 *   topic's policy lets EventBridge publish for the route's e-mail rule alone (aws:SourceArn).
 * - sqs: one queue per route for the user's consumers, with a redrive queue; it receives the whole event.
 * - lambda: the user's function, invoked asynchronously with the whole event.
 *
 * Every target has a retry policy (maxEventAge, retryAttempts) and a dead-letter queue of its own destination. Every
 * queue is one of lib/dead-letter-queue.ts' encrypted queues (SQS-managed encryption, TLS only, 14 days).
 */
export class LeadFanout extends Construct {
  public readonly eventBus: events.EventBus;
  public readonly archive: events.Archive;
  /**
   * Every destination as the deploy records it in the table: route by route (its email topic and sqs queue first,
   * then the others in config order), then the CRMs.
   */
  public readonly destinations: DeployedDestination[] = [];
  /**
   * Every dead-letter queue, for alarms, with what an operator does about a message in it: each target's, the
   * notifiers' FIFO ones, and the sqs destinations' redrive queues. Each is recovered its own way.
   */
  public readonly deadLetterQueues: { queue: sqs.Queue; advice: string }[] = [];
  /** The sqs destinations' queues by route, for the stack outputs. */
  public readonly queues: Record<string, sqs.Queue> = {};
  /** The email destinations' topics by route. */
  public readonly topics: Record<string, sns.Topic> = {};
  /** The slack, webhook and CRM destinations. */
  public readonly notifierDestinations: NotifierDestination[] = [];
  /** Their notifier functions, for monitoring. */
  public readonly notifiers: lambda.Function[] = [];

  readonly #props: LeadFanoutProps;
  readonly #maxEventAge: Duration;
  readonly #retryAttempts: number;
  #topicKey: kms.Key | undefined;

  constructor(scope: Construct, id: string, props: LeadFanoutProps) {
    super(scope, id);
    this.#props = props;
    this.#maxEventAge = props.maxEventAge ?? Duration.hours(24);
    this.#retryAttempts = props.retryAttempts ?? 185;

    this.eventBus = new events.EventBus(this, 'Bus', {
      eventBusName: props.eventBusName ?? `${Stack.of(this).stackName}-leads`,
      description: `pql-radar lead events: ${leadEventTypes.join(', ')}`,
    });
    this.archive = this.eventBus.archive('Archive', {
      description: 'pql-radar lead events, for replay to the destinations',
      eventPattern: { source: [leadEventSource] },
      retention: props.archiveRetention ?? Duration.days(90),
    });

    for (const [route, destinations] of Object.entries(props.routes)) this.#addRoute(new Construct(this, route), route, destinations);
    if (props.crm !== undefined && props.crm.length > 0) {
      const scope = new Construct(this, 'Crm');
      props.crm.forEach((crm, index) => this.#addCrm(scope, crm, index + 1));
    }
  }

  #addRoute(scope: Construct, route: string, destinations: readonly Destination[]) {
    const counts = new Map<RouteKind, number>();
    const next = (kind: RouteKind) => {
      const n = (counts.get(kind) ?? 0) + 1;
      counts.set(kind, n);
      return n;
    };
    const pattern: events.EventPattern = { source: [leadEventSource], detail: { route: [route] } };
    const purpose = `lead events of route ${route}`;

    // One topic per route, subscribing the addresses of all its email entries; one queue (the config takes one sqs entry).
    const addresses = [...new Set(destinations.flatMap((destination) => (destination.type === 'email' ? destination.addresses : [])))];
    if (addresses.length > 0) this.#email(new Construct(scope, 'Email'), route, `${route}-email-${next('email')}`, addresses, pattern);
    if (destinations.some((destination) => destination.type === 'sqs')) this.#queue(new Construct(scope, 'Queue'), route, `${route}-sqs-${next('sqs')}`, pattern);

    for (const destination of destinations) {
      switch (destination.type) {
        case 'lambda': {
          const n = next('lambda');
          this.#lambda(new Construct(scope, `Lambda${n}`), route, `${route}-lambda-${n}`, destination, pattern);
          break;
        }
        case 'slack': {
          const n = next('slack');
          this.#notifier(scope, `Slack${n}`, route, {
            destinationId: `${route}-slack-${n}`,
            kind: 'slack',
            purpose,
            secret: destination.webhookUrlSecret,
            entityUrlTemplate: destination.entityUrlTemplate,
            requestsPerSecond: destination.requestsPerSecond,
            eventPattern: pattern,
          });
          break;
        }
        case 'webhook': {
          const n = next('webhook');
          this.#notifier(scope, `Webhook${n}`, route, {
            destinationId: `${route}-webhook-${n}`,
            kind: 'webhook',
            purpose,
            secret: destination.signingSecret,
            webhookUrl: destination.url,
            requestsPerSecond: destination.requestsPerSecond,
            eventPattern: pattern,
          });
          break;
        }
        case 'email':
        case 'sqs':
          break;
      }
    }
  }

  #addCrm(scope: Construct, crm: CrmDestination, n: number) {
    this.#notifier(scope, `Hubspot${n}`, '*', {
      destinationId: `crm-hubspot-${n}`,
      kind: 'hubspot',
      purpose: 'every lead event of users and accounts',
      secret: crm.tokenSecret,
      companyIdProperty: crm.companyIdProperty,
      requestsPerSecond: crm.requestsPerSecond,
      // A CRM keeps each lead's latest state: every transition, whatever the route (a disqualification or a
      // conversion may carry another route than the qualification, or none). Visitors have no CRM record.
      eventPattern: { source: [leadEventSource], detailType: [...leadEventTypes], detail: { entity: { type: ['user', 'account'] } } },
    });
  }

  #notifier(
    scope: Construct,
    id: string,
    route: string,
    props: Pick<
      NotifierDestinationProps,
      'destinationId' | 'kind' | 'purpose' | 'secret' | 'webhookUrl' | 'entityUrlTemplate' | 'companyIdProperty' | 'requestsPerSecond' | 'eventPattern'
    >,
  ) {
    const destination = new NotifierDestination(scope, id, {
      ...props,
      table: this.#props.table,
      eventBus: this.eventBus,
      retryHours: this.#props.retryHours ?? defaultDeliveryRetryHours,
      deliveryLogDays: this.#props.deliveryLogDays ?? defaultDeliveryLogDays,
      maxEventAge: this.#maxEventAge,
      retryAttempts: this.#retryAttempts,
      logRetention: this.#props.logRetention,
      ...(this.#props.feedbackLinks && (props.kind === 'slack' || props.kind === 'webhook') ? { feedbackLinks: this.#props.feedbackLinks } : {}),
    });
    this.notifierDestinations.push(destination);
    this.notifiers.push(destination.function);
    this.deadLetterQueues.push(
      {
        queue: destination.deadLetterQueue,
        advice:
          `Lead events destination ${props.destinationId} gave up on after its retry window. See why with \`pql-radar deliveries list --failed\`, ` +
          `fix the cause, then \`pql-radar dlq redrive ${props.destinationId}\`.`,
      },
      { queue: destination.targetDeadLetterQueue, advice: busAdvice(props.destinationId) },
    );
    this.#record({
      id: props.destinationId,
      kind: props.kind,
      route,
      rule: destination.rule,
      queue: destination.queue,
      deadLetterQueue: destination.deadLetterQueue,
      targetDeadLetterQueue: destination.targetDeadLetterQueue,
    });
  }

  /** The rule of one email, sqs or lambda destination, with its target's retry policy and dead-letter queue. */
  #rule(scope: Construct, id: string, kind: 'email' | 'sqs' | 'lambda', route: string, pattern: events.EventPattern, target: (delivery: targets.TargetBaseProps) => events.IRuleTarget): events.Rule {
    const deadLetterQueue = ruleTargetDeadLetterQueue(scope, 'DeadLetterQueue');
    this.deadLetterQueues.push({ queue: deadLetterQueue, advice: busAdvice(id) });
    const rule = new events.Rule(scope, 'Rule', {
      eventBus: this.eventBus,
      description: `pql-radar: lead events of route ${route} to ${id}`,
      eventPattern: pattern,
      targets: [target({ deadLetterQueue, maxEventAge: this.#maxEventAge, retryAttempts: this.#retryAttempts })],
    });
    this.#record({ id, kind, route, rule, deadLetterQueue });
    return rule;
  }

  #record(destination: { id: string; kind: DestinationRecord['kind']; route: string; rule: events.Rule; queue?: sqs.Queue; deadLetterQueue: sqs.Queue; targetDeadLetterQueue?: sqs.Queue }) {
    this.destinations.push({
      id: destination.id,
      kind: destination.kind,
      route: destination.route,
      transport: 'sqs',
      ruleArn: destination.rule.ruleArn,
      eventBusName: this.eventBus.eventBusName,
      archiveArn: this.archive.archiveArn,
      ...(destination.queue ? { queueUrl: destination.queue.queueUrl, queueArn: destination.queue.queueArn } : {}),
      deadLetterQueueUrl: destination.deadLetterQueue.queueUrl,
      deadLetterQueueArn: destination.deadLetterQueue.queueArn,
      ...(destination.targetDeadLetterQueue ? { targetDeadLetterQueueUrl: destination.targetDeadLetterQueue.queueUrl } : {}),
    });
  }

  #email(scope: Construct, route: string, id: string, addresses: readonly string[], pattern: events.EventPattern) {
    // A customer managed key because EventBridge publishes as events.amazonaws.com, which the AWS managed SNS key's
    // policy does not admit: granted kms:Decrypt and kms:GenerateDataKey* in this key's policy, below.
    this.#topicKey ??= new kms.Key(this, 'TopicKey', {
      description: 'pql-radar: encrypts the lead e-mail topics',
      enableKeyRotation: true,
      // Nothing stays encrypted under it: SNS keeps no messages once delivered.
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    const topic = new sns.Topic(scope, 'Topic', {
      displayName: `pql-radar ${route} leads`,
      masterKey: this.#topicKey,
      enforceSSL: true,
    });
    for (const address of addresses) topic.addSubscription(new subscriptions.EmailSubscription(address));
    this.topics[route] = topic;
    // SnsTopic would let events.amazonaws.com publish on behalf of any rule, of any account (a confused deputy).
    // Given the topic as imported it grants nothing; the statement below admits this rule alone (aws:SourceArn).
    const imported = sns.Topic.fromTopicArn(scope, 'TopicTarget', topic.topicArn);
    const rule = this.#rule(scope, id, 'email', route, pattern, (delivery) => new targets.SnsTopic(imported, { message: new TransformedInput(emailInput), ...delivery }));
    // An account and region read from a token ARN are tokens, which a stack of fixed account and region cannot
    // compare with its own; the topic is this stack's.
    Annotations.of(rule).acknowledgeWarning('@aws-cdk/aws-events:ruleUnresolvedEnvironment', "the target is the stack's own topic, imported by its ARN only so that SnsTopic grants nothing");
    const eventBridge = new iam.ServicePrincipal('events.amazonaws.com');
    topic.addToResourcePolicy(
      new iam.PolicyStatement({ principals: [eventBridge], actions: ['sns:Publish'], resources: [topic.topicArn], conditions: { ArnEquals: { 'aws:SourceArn': rule.ruleArn } } }),
    );
    // As SnsTopic granted it, without the condition: that KMS's request context carries the rule's ARN when SNS
    // encrypts for EventBridge is not documented, and a condition it lacked would refuse every e-mail.
    this.#topicKey.grant(eventBridge, 'kms:Decrypt', 'kms:GenerateDataKey*');
  }

  #queue(scope: Construct, route: string, id: string, pattern: events.EventPattern) {
    const consumerDeadLetterQueue = encryptedQueue(scope, 'ConsumerDeadLetterQueue');
    this.deadLetterQueues.push({
      queue: consumerDeadLetterQueue,
      advice:
        `Your consumer of route ${route}'s queue (the stack output LeadQueueUrl...) failed lead events 5 times (destination ${id}). ` +
        'Fix the consumer, then move them back to its queue: aws sqs start-message-move-task --source-arn <this queue\'s ARN>.',
    });
    const queue = encryptedQueue(scope, 'Queue', {
      deadLetterQueue: { queue: consumerDeadLetterQueue, maxReceiveCount: 5 },
    });
    this.queues[route] = queue;
    this.#rule(scope, id, 'sqs', route, pattern, (delivery) => new targets.SqsQueue(queue, delivery));
  }

  #lambda(scope: Construct, route: string, id: string, destination: Extract<Destination, { type: 'lambda' }>, pattern: events.EventPattern) {
    // fromFunctionArn would skip the invoke permission whenever the stack's account is not known at synth time
    // (an environment-agnostic stack); a rule target must be in the stack's account and region anyway.
    const handler = lambda.Function.fromFunctionAttributes(scope, 'Function', {
      functionArn: destination.functionArn,
      sameEnvironment: true,
    });
    requireSameEnvironment(scope, route, destination.functionArn);
    const rule = this.#rule(scope, id, 'lambda', route, pattern, (delivery) => new targets.LambdaFunction(handler, delivery));
    Annotations.of(rule).acknowledgeWarning(
      '@aws-cdk/aws-events:ruleUnresolvedEnvironment',
      "The function's ARN names its account and region, the environment-agnostic stack's are known at deploy only; the " +
        'config asks for a function in the stack\'s own account and region (EventBridge invokes no other), checked by requireSameEnvironment.',
    );
  }
}

/**
 * Refuses a lambda destination outside the stack's account or region, which EventBridge cannot invoke: CloudFormation
 * would find out only when it creates the rule's target, deep in the deploy. A dimension the stack knows at synth is
 * compared now; one it knows at deploy only (the environment-agnostic app of bin/app.ts) by a template rule, which
 * CloudFormation checks before it creates or changes any resource. The config's ARN pattern makes the ARN's own
 * account and region literals.
 */
function requireSameEnvironment(scope: Construct, route: string, functionArn: string): void {
  const { region, account } = Arn.split(functionArn, ArnFormat.COLON_RESOURCE_NAME);
  const stack = Stack.of(scope);
  const assertions: CfnRuleAssertion[] = [];
  for (const [dimension, given, own] of [['region', region, stack.region], ['account', account, stack.account]] as const) {
    const problem = (stackIn: string) =>
      `routes.${route}: the lambda destination ${functionArn} is in ${dimension} ${given}, the stack in ${stackIn}: EventBridge invokes functions of its own account and region`;
    if (Token.isUnresolved(own)) {
      assertions.push({ assert: Fn.conditionEquals(own, given), assertDescription: problem(`another ${dimension}`) });
    } else if (given !== own) {
      throw new Error(problem(own));
    }
  }
  if (assertions.length > 0) new CfnRule(scope, 'SameEnvironment', { assertions });
}

/**
 * What to do about an event EventBridge could not hand to a destination's target in 24 hours: it never reached the
 * target, so `dlq redrive` has nothing to move; the archive sends it again.
 */
function busAdvice(destinationId: string): string {
  return (
    `The event bus could not deliver lead events to destination ${destinationId} for 24 hours. Why is in each message's ERROR_CODE and ` +
    `ERROR_MESSAGE attributes (aws sqs receive-message --message-attribute-names All). Fix the cause, send them again with ` +
    `\`pql-radar destinations replay ${destinationId} --from <the oldest message's time>\`, then purge this queue.`
  );
}
