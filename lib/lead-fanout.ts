import { Duration, RemovalPolicy, SecretValue, Stack, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { leadEventSource, leadEventTypes, type LeadEventType } from '../functions/core/lead-event';
import type { Destination } from './config';
import { LambdaFunction } from './lambda-function';

/** An EventBridge input transformer as data: what a target receives instead of the whole event. */
export interface InputTransformer {
  readonly inputPathsMap: Readonly<Record<string, string>>;
  readonly inputTemplate: string;
}

/**
 * The bodies of the HubSpot PATCH requests (`/crm/v3/objects/{contacts|companies}/{id}`). Every placeholder stands
 * outside quotes, so EventBridge inserts the value as JSON: strings quoted and escaped, the score a number.
 * Create the properties pql_tier, pql_score, pql_signals, pql_qualified_at (date-time), pql_converted_at (date-time) and pql_route in HubSpot first.
 */
export const hubspotInput = {
  /** Qualified or tier changed. */
  lead: {
    inputPathsMap: {
      tier: '$.detail.tier',
      score: '$.detail.score.total',
      summary: '$.detail.summary',
      evaluatedAt: '$.detail.evaluatedAt',
      route: '$.detail.route',
    },
    inputTemplate:
      '{"properties":{"pql_tier":<tier>,"pql_score":<score>,"pql_signals":<summary>,"pql_qualified_at":<evaluatedAt>,"pql_route":<route>}}',
  },
  /**
   * Disqualified: the event's tier is null, but HubSpot clears a property with "" (null is not a property value).
   * pql_qualified_at is left alone, so the record still tells when the lead last qualified.
   */
  disqualified: {
    inputPathsMap: { score: '$.detail.score.total', summary: '$.detail.summary', route: '$.detail.route' },
    inputTemplate: '{"properties":{"pql_tier":"","pql_score":<score>,"pql_signals":<summary>,"pql_route":<route>}}',
  },
  /**
   * Converted: pql_tier is left alone, so the record keeps the tier the lead converted from (the event's tier may be
   * null once the customer leaves the tiers), and pql_converted_at says when.
   */
  converted: {
    inputPathsMap: { convertedAt: '$.detail.conversion.convertedAt', score: '$.detail.score.total', summary: '$.detail.summary', route: '$.detail.route' },
    inputTemplate: '{"properties":{"pql_converted_at":<convertedAt>,"pql_score":<score>,"pql_signals":<summary>,"pql_route":<route>}}',
  },
} as const satisfies Record<string, InputTransformer>;

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

const leadDetailTypes: LeadEventType[] = ['Lead Qualified', 'Lead Tier Changed'];
const disqualifiedDetailTypes: LeadEventType[] = ['Lead Disqualified'];
const convertedDetailTypes: LeadEventType[] = ['Lead Converted'];

/** EventBridge refuses a sixth target on a rule. */
const maxTargetsPerRule = 5;

/** Lambda keeps an asynchronous event for at most six hours. */
const maxLambdaEventAge = Duration.hours(6);

export interface LeadFanoutProps {
  /**
   * Routes as the rules file's tiers name them, each with its destinations (lib/config.ts). Construct ids follow
   * the route and, per type, the order of the destinations: reordering two destinations of one type recreates them.
   */
  readonly routes: Readonly<Record<string, readonly Destination[]>>;
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
   * How long EventBridge (and Lambda, for the notifiers, at most six hours) keeps retrying a delivery before the
   * event goes to the destination's dead-letter queue.
   * @default Duration.hours(24)
   */
  readonly maxEventAge?: Duration;
  /**
   * Delivery attempts EventBridge retries within maxEventAge.
   * @default 185
   */
  readonly retryAttempts?: number;
  /**
   * How long the notifier functions' logs are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The lead event bus and everything that delivers its events to the user's destinations: an archive for replay,
 * one rule per route (pattern on `detail.route`; a route of more than five targets, EventBridge's limit, gets a
 * second rule) with one target per destination, and, for HubSpot, rules of its own that also match the entity type
 * and the transition. Every target has a retry policy and a dead-letter queue of its own
 * destination.
 *
 * - email: an SNS topic per route (KMS key with rotation; EventBridge may use it), a plain-text transformer.
 * - sqs: a queue per route for the user's consumers, with a redrive queue; it receives the whole event.
 * - lambda: the user's function, invoked asynchronously with the whole event.
 * - slack, webhook: a notifier Lambda per destination. Slack's webhook URL is itself the secret (an API
 *   destination would write it into the template), its message loops over the signals (a transformer cannot),
 *   and a webhook signature is an HMAC of the body (an API destination adds static headers only). The notifier
 *   throws on a non-2xx answer; Lambda retries twice, then sends the invocation record to the same dead-letter
 *   queue that holds what EventBridge could not hand to Lambda.
 * - hubspot: an API destination through a Connection that keeps the token, rate-limited; PATCHes the contact
 *   (users with an email) or the company (accounts) with the pql_* properties.
 */
export class LeadFanout extends Construct {
  public readonly eventBus: events.EventBus;
  public readonly archive: events.Archive;
  /** Every dead-letter queue: one per destination, and the sqs destinations' redrive queues. For alarms. */
  public readonly deadLetterQueues: sqs.Queue[] = [];
  /** The sqs destinations' queues by route, for the stack outputs. */
  public readonly queues: Record<string, sqs.Queue> = {};
  /** The email destinations' topics by route. */
  public readonly topics: Record<string, sns.Topic> = {};
  /** The notifier functions of the slack and webhook destinations. */
  public readonly notifiers: lambda.Function[] = [];

  readonly #maxEventAge: Duration;
  readonly #retryAttempts: number;
  readonly #logRetention: logs.RetentionDays | undefined;
  #topicKey: kms.Key | undefined;

  constructor(scope: Construct, id: string, props: LeadFanoutProps) {
    super(scope, id);
    this.#maxEventAge = props.maxEventAge ?? Duration.hours(24);
    this.#retryAttempts = props.retryAttempts ?? 185;
    this.#logRetention = props.logRetention;

    this.eventBus = new events.EventBus(this, 'Bus', {
      eventBusName: props.eventBusName ?? `${Stack.of(this).stackName}-leads`,
      description: `pql-radar lead events: ${leadEventTypes.join(', ')}`,
    });
    this.archive = this.eventBus.archive('Archive', {
      description: 'pql-radar lead events, for replay to the destinations',
      eventPattern: { source: [leadEventSource] },
      retention: props.archiveRetention ?? Duration.days(90),
    });

    for (const [route, destinations] of Object.entries(props.routes)) {
      this.#addRoute(new Construct(this, route), route, destinations);
    }
  }

  #addRoute(scope: Construct, route: string, destinations: readonly Destination[]) {
    const routeTargets: events.IRuleTarget[] = [];
    const ordinals = new Map<string, number>();
    const destinationScope = (kind: string) => {
      const ordinal = (ordinals.get(kind) ?? 0) + 1;
      ordinals.set(kind, ordinal);
      return new Construct(scope, `${kind}${ordinal}`);
    };

    // One topic and one queue per route, whatever the number of entries that ask for them.
    const addresses = [...new Set(destinations.flatMap((destination) => (destination.type === 'email' ? destination.addresses : [])))];
    if (addresses.length > 0) routeTargets.push(this.#email(new Construct(scope, 'Email'), route, addresses));
    if (destinations.some((destination) => destination.type === 'sqs')) routeTargets.push(this.#queue(new Construct(scope, 'Queue'), route));

    for (const destination of destinations) {
      switch (destination.type) {
        case 'lambda':
          routeTargets.push(this.#lambda(destinationScope('Lambda'), destination));
          break;
        case 'slack':
          routeTargets.push(this.#notifier(destinationScope('Slack'), route, destination));
          break;
        case 'webhook':
          routeTargets.push(this.#notifier(destinationScope('Webhook'), route, destination));
          break;
        case 'hubspot':
          this.#hubspot(destinationScope('Hubspot'), route, destination);
          break;
      }
    }

    for (let first = 0; first < routeTargets.length; first += maxTargetsPerRule) {
      const part = first / maxTargetsPerRule;
      new events.Rule(scope, part === 0 ? 'Rule' : `Rule${part + 1}`, {
        eventBus: this.eventBus,
        description: `pql-radar: lead events of route ${route} to its destinations`,
        eventPattern: { source: [leadEventSource], detail: { route: [route] } },
        targets: routeTargets.slice(first, first + maxTargetsPerRule),
      });
    }
  }

  /** Retry policy and dead-letter queue of one destination's targets. */
  #delivery(scope: Construct): targets.TargetBaseProps & { deadLetterQueue: sqs.Queue } {
    const deadLetterQueue = this.#newQueue(scope, 'DeadLetterQueue');
    Validations.of(deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is the dead-letter queue of EventBridge targets (the rule target DeadLetterConfig, which the ' +
        'check does not recognise); a dead-letter queue of its own would only move the same messages once more.',
    });
    this.deadLetterQueues.push(deadLetterQueue);
    return { deadLetterQueue, maxEventAge: this.#maxEventAge, retryAttempts: this.#retryAttempts };
  }

  #newQueue(scope: Construct, id: string, props: sqs.QueueProps = {}): sqs.Queue {
    // SQS-managed encryption rather than KMS: EventBridge and Lambda can send to it without key policies.
    return new sqs.Queue(scope, id, {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      ...props,
    });
  }

  #email(scope: Construct, route: string, addresses: readonly string[]): events.IRuleTarget {
    // A customer managed key because EventBridge publishes as events.amazonaws.com, which the AWS managed SNS key's
    // policy does not admit; SnsTopic grants it kms:Decrypt and kms:GenerateDataKey* in this key's policy.
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
    return new targets.SnsTopic(topic, { message: new TransformedInput(emailInput), ...this.#delivery(scope) });
  }

  #queue(scope: Construct, route: string): events.IRuleTarget {
    const consumerDeadLetterQueue = this.#newQueue(scope, 'ConsumerDeadLetterQueue');
    this.deadLetterQueues.push(consumerDeadLetterQueue);
    const queue = this.#newQueue(scope, 'Queue', {
      deadLetterQueue: { queue: consumerDeadLetterQueue, maxReceiveCount: 5 },
    });
    this.queues[route] = queue;
    return new targets.SqsQueue(queue, this.#delivery(scope));
  }

  #lambda(scope: Construct, destination: Extract<Destination, { type: 'lambda' }>): events.IRuleTarget {
    // fromFunctionArn would skip the invoke permission whenever the stack's account is not known at synth time
    // (an environment-agnostic stack); a rule target must be in the stack's account and region anyway.
    const handler = lambda.Function.fromFunctionAttributes(scope, 'Function', {
      functionArn: destination.functionArn,
      sameEnvironment: true,
    });
    return new targets.LambdaFunction(handler, this.#delivery(scope));
  }

  #notifier(scope: Construct, route: string, destination: Extract<Destination, { type: 'slack' | 'webhook' }>): events.IRuleTarget {
    const secretId = destination.type === 'slack' ? destination.webhookUrlSecret : destination.signingSecret;
    const secret = secretId.startsWith('arn:')
      ? secretsmanager.Secret.fromSecretCompleteArn(scope, 'Secret', secretId)
      : secretsmanager.Secret.fromSecretNameV2(scope, 'Secret', secretId);
    const environment: Record<string, string> = { DESTINATION_TYPE: destination.type, SECRET_ARN: secret.secretArn };
    if (destination.type === 'webhook') environment['WEBHOOK_URL'] = destination.url;
    if (destination.type === 'slack' && destination.entityUrlTemplate !== undefined) {
      environment['ENTITY_URL_TEMPLATE'] = destination.entityUrlTemplate;
    }

    const notifier = new LambdaFunction(scope, 'Notifier', {
      entry: 'functions/notifier/handler.ts',
      description: `pql-radar: delivers lead events of route ${route} to a ${destination.type} destination`,
      timeout: Duration.seconds(10),
      logRetention: this.#logRetention,
      environment,
    }).function;
    notifier.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['secretsmanager:GetSecretValue'],
        // A secret known by name has an ARN ending in "-" and six random characters.
        resources: [secret.secretFullArn ?? `${secret.secretArn}-??????`],
      }),
    );
    this.notifiers.push(notifier);

    const delivery = this.#delivery(scope);
    notifier.configureAsyncInvoke({
      retryAttempts: 2,
      maxEventAge: Duration.seconds(Math.min(this.#maxEventAge.toSeconds(), maxLambdaEventAge.toSeconds())),
      onFailure: new SqsDestination(delivery.deadLetterQueue),
    });
    return new targets.LambdaFunction(notifier, delivery);
  }

  #hubspot(scope: Construct, route: string, destination: Extract<Destination, { type: 'hubspot' }>) {
    const connection = new events.Connection(scope, 'Connection', {
      description: `pql-radar ${route}: HubSpot private-app token`,
      // The template holds "Bearer " and a dynamic reference, never the token: CloudFormation resolves it into
      // the Connection, which keeps it in a secret of its own.
      authorization: events.Authorization.apiKey(
        'Authorization',
        SecretValue.unsafePlainText(`Bearer ${SecretValue.secretsManager(destination.tokenSecret).unsafeUnwrap()}`),
      ),
    });
    // One API destination for contacts and companies, so the rate limit is the private app's, not twice it.
    const apiDestination = new events.ApiDestination(scope, 'ApiDestination', {
      description: `pql-radar ${route}: HubSpot CRM objects`,
      connection,
      endpoint: 'https://api.hubapi.com/crm/v3/objects/*/*',
      httpMethod: events.HttpMethod.PATCH,
      rateLimitPerSecond: destination.requestsPerSecond,
    });
    const delivery = this.#delivery(scope);

    const objects = [
      {
        id: 'Contact',
        // A contact is found by its email; users without one cannot be matched and are left out.
        detail: { entity: { type: ['user'] }, context: { traits: { email: [{ exists: true }] } } },
        pathParameterValues: ['contacts', '$.detail.context.traits.email'],
        idProperty: 'email',
      },
      {
        id: 'Company',
        detail: { entity: { type: ['account'] } },
        pathParameterValues: ['companies', '$.detail.entity.id'],
        idProperty: destination.companyIdProperty,
      },
    ];
    const transitions = [
      { id: 'Lead', detailTypes: leadDetailTypes, input: hubspotInput.lead },
      { id: 'Disqualified', detailTypes: disqualifiedDetailTypes, input: hubspotInput.disqualified },
      { id: 'Converted', detailTypes: convertedDetailTypes, input: hubspotInput.converted },
    ];
    for (const object of objects) {
      for (const transition of transitions) {
        new events.Rule(scope, `${object.id}${transition.id}Rule`, {
          eventBus: this.eventBus,
          description: `pql-radar: lead events of route ${route} to HubSpot ${object.pathParameterValues[0]}`,
          eventPattern: {
            source: [leadEventSource],
            detailType: transition.detailTypes,
            detail: { route: [route], ...object.detail },
          },
          targets: [
            new targets.ApiDestination(apiDestination, {
              event: new TransformedInput(transition.input),
              pathParameterValues: object.pathParameterValues,
              queryStringParameters: { idProperty: object.idProperty },
              ...delivery,
            }),
          ],
        });
      }
    }
  }
}
