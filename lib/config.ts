import { existsSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { didYouMean } from '../functions/core/did-you-mean';
import { canonicalOrigin, originExamples } from '../functions/core/origins';
import { isPlainObject } from '../functions/core/message-traits';
import { routesOf } from '../functions/core/rules/routing';
import { routeName, type RulesFile, type Tier } from '../functions/core/rules/schema';
import { loadRulesFile, type LoadedRulesFile } from '../functions/local/rules-file';
import { readTextFile, UnreadableFileError } from '../functions/local/readable-file';
import { FileProblemsError, parseYamlFile, type FileProblem } from '../functions/core/yaml-file';
import { workspacePattern } from '../functions/core/write-key';
import { defaultAccountEveryMinutes, defaultDeliveryLogDays, defaultDeliveryRetryHours, defaultDirtyShards, defaultEvaluatorMemoryMb, defaultRetentionDays, defaultUserEveryMinutes, lambdaMemoryMb, maxUserEveryMinutes } from '../functions/shared/settings';
import { defaultBufferBatchingSeconds } from './ingest-buffer';
import { defaultBufferObjectDays, defaultFirehoseBufferSeconds } from './ingest-firehose-buffer';

/**
 * The deployment config: one YAML or JSON file the user keeps in their repo (`pql-radar.config.yaml`), read by
 * bin/app.ts. Strict objects: a misspelt key fails `cdk synth` with its path, not a deploy later.
 */

/** What Secrets Manager allows in a secret's name, and a secret's ARN (a name with the random suffix AWS adds, or not). */
const secretNamePattern = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const secretArnPattern = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$/;
/** How the secrets' values begin: a Slack webhook URL, a Standard Webhooks secret, a HubSpot private-app token, a Slack token. */
const secretValuePrefixes = /^(https?:\/\/|whsec_|pat-|xox[abpe]-)/i;

/**
 * The name or ARN of a Secrets Manager secret. Its value pasted instead (the README's create-secret commands show
 * the values) would deploy the credential into the template, and every delivery would fail at run time: refused here.
 */
const secretName = z
  .string()
  .min(1)
  .superRefine((value, context) => {
    const problem = secretValuePrefixes.test(value)
      ? 'looks like the secret\'s value, not its name: keep the value in Secrets Manager (aws secretsmanager create-secret --name pql-radar/... --secret-string ...) and give the name here'
      : secretNamePattern.test(value) || secretArnPattern.test(value)
        ? undefined
        : 'must be the name of a Secrets Manager secret (letters, digits and /_+=.@-) or its ARN';
    if (problem) context.addIssue({ code: 'custom', message: problem });
  })
  .describe('name or ARN of a Secrets Manager secret');

/** Each entry whose key an earlier entry has, with the index of the first: the key says what makes two entries one. */
function repeats<T>(entries: readonly T[], keyOf: (entry: T) => string | undefined): { index: number; first: number }[] {
  const firstOf = new Map<string, number>();
  return entries.flatMap((entry, index) => {
    const key = keyOf(entry);
    if (key === undefined) return [];
    const first = firstOf.get(key);
    if (first !== undefined) return [{ index, first }];
    firstOf.set(key, index);
    return [];
  });
}

/**
 * The stack output of one route or workspace: CloudFormation output ids are letters and digits only, so the name is
 * written in PascalCase after the prefix, e.g. `LeadQueueUrl` and route `high-touch` give `LeadQueueUrlHighTouch`.
 */
export function outputId(prefix: string, name: string): string {
  return prefix + name.split(/[-_]/).map((part) => part.charAt(0).toUpperCase() + part.slice(1)).join('');
}

/**
 * Each name that would give the stack output an earlier name gives (lib/pql-radar-stack.ts), case aside: the stack
 * cannot have both, and ids that differ only in case are easy to mistake. A name repeated as it is is left to its
 * list's own check.
 */
function sharedOutputs(names: readonly string[], prefix: string): { index: number; first: number; id: string }[] {
  return repeats(names, (name) => outputId(prefix, name).toLowerCase())
    .filter(({ index, first }) => names[index] !== names[first])
    .map(({ index, first }) => ({ index, first, id: outputId(prefix, names[first]!) }));
}

/**
 * What makes two destinations of a route one notifier's destination, with the field that says so: a second notifier
 * would deliver every lead event of the route to it twice. A webhook URL as the WHATWG parser writes it, so that
 * case and a default port do not hide a repeat; one it cannot parse as written, since zod runs this check on entries
 * it refused too. Secrets compare as written: a name and an ARN of one secret are not found out.
 */
const notifierKeyOf = (destination: Destination): { key: string; field: string; what: string } | undefined =>
  destination.type === 'slack'
    ? { key: `slack ${destination.webhookUrlSecret}`, field: 'webhookUrlSecret', what: 'Slack webhook secret' }
    : destination.type === 'webhook'
      ? { key: `webhook ${URL.canParse(destination.url) ? new URL(destination.url).href : destination.url}`, field: 'url', what: 'webhook URL' }
      : undefined;

/**
 * Addresses a deployed notifier cannot reach, or must not: it runs in AWS Lambda, outside any VPC, so the user's
 * machine and networks are not there, and the link-local range holds the instance metadata service, the target of
 * server-side request forgery. The local runtime's --webhook (functions/cli/lead-output.ts) is not checked here: it
 * posts to local receivers.
 */
const unreachableNetworks = (
  [
    { what: 'a loopback address', subnets: [['127.0.0.0', 8, 'ipv4'], ['::1', 128, 'ipv6']] },
    { what: 'a link-local address (169.254.169.254 is the instance metadata service)', subnets: [['169.254.0.0', 16, 'ipv4'], ['fe80::', 10, 'ipv6']] },
    { what: 'a private address', subnets: [['10.0.0.0', 8, 'ipv4'], ['172.16.0.0', 12, 'ipv4'], ['192.168.0.0', 16, 'ipv4'], ['fc00::', 7, 'ipv6']] },
    { what: 'an unspecified address (this host)', subnets: [['0.0.0.0', 8, 'ipv4'], ['::', 128, 'ipv6']] },
  ] as const
).map(({ what, subnets }) => {
  const networks = new BlockList();
  for (const [network, prefix, type] of subnets) networks.addSubnet(network, prefix, type);
  return { what, networks };
});

/**
 * What keeps a webhook URL out of a deployment, if anything. Credentials in it would sit in the template and the
 * notifier's environment in plain text. The host as the URL parser writes it: 2130706433 and 0x7f.1 are 127.0.0.1,
 * [::ffff:127.0.0.1] an IPv4 address too (BlockList matches those against the IPv4 networks).
 */
function webhookUrlProblem(value: string): string | undefined {
  if (!URL.canParse(value)) return undefined;
  const url = new URL(value);
  if (url.username !== '' || url.password !== '') {
    return 'must not hold a user name or password: the URL is written into the CloudFormation template in plain text; receivers verify requests by their Standard Webhooks signature (signingSecret, kept in Secrets Manager) instead';
  }
  const host = url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '');
  const version = isIP(host);
  const what =
    host === 'localhost' || host.endsWith('.localhost')
      ? 'a loopback address'
      : version === 0
        ? undefined
        : unreachableNetworks.find(({ networks }) => networks.check(host, version === 4 ? 'ipv4' : 'ipv6'))?.what;
  return what === undefined
    ? undefined
    : `must be reachable from AWS: ${url.hostname} is ${what}, which the notifier, in AWS Lambda outside any VPC, cannot reach or must not (for a receiver on your machine, run the local runtime: npx pql-radar dev --webhook URL)`;
}

/** Why a HubSpot destination under a route is refused: it belongs under `crm`. */
export const hubspotUnderRouteMessage = 'hubspot syncs every transition of every lead, whatever the route: move it to crm:';

/**
 * How many requests per second a notifier sends to one destination; it paces itself and keeps the order of the
 * lead events (one batch at a time per destination).
 */
const requestsPerSecond = (fallback: number, max: number) => z.number().int().positive().max(max).default(fallback);

/**
 * The problem of an entry whose `type` is missing or unknown, in place of zod's "Invalid discriminator value": the
 * types `list` takes, and the one meant when the type looks misspelt. `hint` says where another type goes.
 */
const typeProblem =
  (list: string, types: readonly string[], hint = '') =>
  (issue: z.core.$ZodRawIssue): string | undefined => {
    if (issue.code !== 'invalid_union') return undefined;
    const type = (issue.input as { type?: unknown } | undefined)?.type;
    const takes = `${list} takes ${types.join(', ')}${hint}`;
    return type === undefined ? `is required: ${takes}` : `unknown type ${JSON.stringify(type)}: ${takes}${typeof type === 'string' ? didYouMean(type, types) : ''}`;
  };

/** A destination of a route: it receives the lead events of the tiers routing to it. */
export const destinationSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('slack'),
    /** Secret whose value is the Slack incoming-webhook URL; read at run time, so replacing it needs no deploy. */
    webhookUrlSecret: secretName,
    /** Link to the lead in your own tools; `{type}`, `{id}` and `{workspace}` are replaced. */
    entityUrlTemplate: z.string().url().optional(),
    /** Slack accepts about one message per second per incoming webhook. @default 1 */
    requestsPerSecond: requestsPerSecond(1, 10),
  }),
  z.strictObject({
    type: z.literal('webhook'),
    /** Written into the template as it is: no credentials, and a host AWS Lambda reaches (webhookUrlProblem). */
    url: z
      .string()
      // abort: a value that is no URL is told once.
      .url({ error: 'must be an https:// URL', abort: true })
      .refine((url) => url.startsWith('https://'), 'must be an https:// URL')
      .superRefine((url, ctx) => {
        const problem = webhookUrlProblem(url);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
    /**
     * Secret whose value signs the requests per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature
     * headers), as the local runtime's webhooks are signed: a `whsec_...` secret (`npx pql-radar webhooks secret`),
     * or several separated by spaces during a rotation, each of which signs. Read at run time: rotating needs no deploy.
     */
    signingSecret: secretName,
    /** @default 10 */
    requestsPerSecond: requestsPerSecond(10, 100),
  }),
  z.strictObject({
    type: z.literal('email'),
    addresses: z.array(z.string().email()).min(1),
  }),
  z.strictObject({
    type: z.literal('sqs'),
  }),
  z.strictObject({
    type: z.literal('lambda'),
    functionArn: z.string().regex(/^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9_$-]+)?$/, 'must be a Lambda function ARN'),
  }),
  // Refused with a message that says where it goes, rather than zod's list of the types a route takes.
  z.looseObject({ type: z.literal('hubspot') }).transform((_value, ctx) => {
    ctx.addIssue({ code: 'custom', message: hubspotUnderRouteMessage });
    return z.NEVER;
  }),
], { error: typeProblem('a route', ['slack', 'webhook', 'email', 'sqs', 'lambda'], ' (a CRM, hubspot, goes under crm:)') });
export type Destination = z.output<typeof destinationSchema>;

/** A CRM: it receives every transition of every user and account lead, whatever the route, and keeps the latest. */
export const crmSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('hubspot'),
    /**
     * Secret whose value is a HubSpot private-app token with the crm.objects.contacts.write and
     * crm.objects.companies.write scopes; crm.objects.companies.read is recommended, not required: with it, a
     * company's name is read and only filled in, so a name sales corrected stays; without it, the company trait is
     * written over the name at each transition, with a warning. Read at run time, so rotating it needs no deploy.
     */
    tokenSecret: secretName,
    /** The unique company property holding pql-radar's account id. @default pql_radar_account_id */
    companyIdProperty: z.string().min(1).default('pql_radar_account_id'),
    /**
     * HubSpot allows private apps 100 requests per 10 s (more on some plans, 250 at most): the default leaves room for
     * your other integrations. @default 5
     */
    requestsPerSecond: requestsPerSecond(5, 25),
  }),
], { error: typeProblem('crm', ['hubspot'], ' (notifications, such as slack, go under a route)') });
export type CrmDestination = z.output<typeof crmSchema>;

/** How the notifiers deliver to slack, webhook and CRM destinations. */
export const deliverySchema = z.strictObject({
  /**
   * Hours a lead event is retried at a destination, from when its delivery queue received it, before it goes to the
   * destination's dead-letter queue. At most 14 days, SQS's longest retention (a window that long may let a message
   * expire from its queue before the notifier dead-letters it). @default 24
   */
  retryHours: z.number().int().min(1).max(336).default(defaultDeliveryRetryHours),
  /** Days the delivery log keeps each attempt, and each destination remembers the lead events it took. @default 14 */
  logDays: z.number().int().min(1).max(400).default(defaultDeliveryLogDays),
});
export type DeliveryConfig = z.output<typeof deliverySchema>;

/** Lambda's longest batching window for a Kinesis event source. */
const maxKinesisBatchingSeconds = 300;

/** Why a field of one ingest buffer service is refused with the other, by field. */
const ingestBufferFieldsOf = {
  shards: { service: 'kinesis', reason: 'provisioned shards are a Kinesis stream\'s; Firehose scales by itself' },
  retentionHours: { service: 'kinesis', reason: 'how long a Kinesis stream keeps a record; a firehose buffer keeps its objects retentionDays' },
  retentionDays: { service: 'firehose', reason: 'how long the bucket keeps an object the loader failed on; a Kinesis stream keeps records retentionHours' },
} as const;

/**
 * `ingestBuffer`: which service buffers, and that service's settings. One object for both rather than a union by
 * `service`, so that a field of the other service is refused with its reason, not as an unknown key.
 */
const ingestBufferSchema = z
  .strictObject({
    /**
     * `kinesis` (lib/ingest-buffer.ts): a provisioned stream, a fixed monthly cost per shard. `firehose`
     * (lib/ingest-firehose-buffer.ts): a delivery stream writing an S3 object per batching window, which a loader
     * stores, paid per use. Changing it deletes the buffer holding accepted requests: drain first (`draining: true`,
     * deploy, wait until its function has stored all, README "Ingest buffer"), then change it. Required once
     * `ingestBuffer` is written: before the Firehose buffer was the default, a config without it meant kinesis.
     */
    service: z.enum(['kinesis', 'firehose'], {
      error: (issue) => (issue.input === undefined ? 'required: firehose (the default buffer) or kinesis (a stream; what ingestBuffer without a service meant before firehose became the default)' : undefined),
    }),
    /** Kinesis: provisioned shards of the stream, each a fixed monthly cost. @default 1 */
    shards: z.number().int().min(1).max(64).optional(),
    /**
     * Seconds requests gather before a batch is stored: Lambda's batching window for kinesis (at most 300), Firehose's
     * buffering interval for firehose (at most 900). @default 300
     */
    batchingWindowSeconds: z.number().int().min(0).max(900).optional(),
    /**
     * Kinesis: hours the stream keeps a record its consumer has not stored (while the table cannot be written, say):
     * over 24 costs more per shard hour. @default 24
     */
    retentionHours: z.number().int().min(24).max(8760).optional(),
    /**
     * Firehose: days the bucket keeps an object the loader has not stored (its notification waits in the dead-letter
     * queue, which SQS keeps 14 days at most). @default 14
     */
    retentionDays: z.number().int().min(1).max(defaultBufferObjectDays).optional(),
    /**
     * The first of the two deploys that turn the buffer off: ingest writes the table again, and the buffer's function
     * stores what the buffer still holds; once it has (README, "Ingest buffer"), set `ingestBuffer: false`. @default false
     */
    draining: z.boolean().default(false),
  }, { error: (issue) => (issue.code === 'invalid_type' ? 'false (no buffer) or the buffer\'s settings, e.g. { service: firehose }' : undefined) })
  .superRefine((buffer, ctx) => {
    for (const [field, { service, reason }] of Object.entries(ingestBufferFieldsOf)) {
      if (buffer[field as keyof typeof ingestBufferFieldsOf] !== undefined && buffer.service !== service) {
        ctx.addIssue({ code: 'custom', path: [field], message: `only with service: ${service} (${reason})` });
      }
    }
    if (buffer.service === 'kinesis' && (buffer.batchingWindowSeconds ?? 0) > maxKinesisBatchingSeconds) {
      ctx.addIssue({
        code: 'custom',
        path: ['batchingWindowSeconds'],
        message: `must be at most ${maxKinesisBatchingSeconds} with service: kinesis (Lambda's longest batching window); service: firehose takes up to 900`,
      });
    }
  })
  .transform(({ service, shards, batchingWindowSeconds, retentionHours, retentionDays, draining }) =>
    service === 'kinesis'
      ? {
          service,
          shards: shards ?? 1,
          batchingWindowSeconds: batchingWindowSeconds ?? defaultBufferBatchingSeconds,
          retentionHours: retentionHours ?? 24,
          draining,
        }
      : { service, batchingWindowSeconds: batchingWindowSeconds ?? defaultFirehoseBufferSeconds, retentionDays: retentionDays ?? defaultBufferObjectDays, draining },
  );

export const configSchema = z.strictObject({
  /** The rules file, relative to the config file. */
  rules: z.string().min(1),
  evaluation: z
    .strictObject({
      /** Minutes between evaluator runs. @default 1 */
      everyMinutes: z.number().int().min(1).max(60).default(1),
      /** Shards of the dirty index: one schedule and one evaluator invocation per shard. @default 4 */
      shards: z.number().int().min(1).max(64).default(defaultDirtyShards),
      /**
       * Minutes an account its members move waits after its last evaluation (lib/evaluator.ts): the moves made
       * meanwhile are judged at once. 0 judges accounts at every move. @default 10
       */
      accountEveryMinutes: z.number().int().min(0).max(1440).default(defaultAccountEveryMinutes),
      /**
       * Minutes a user with new events waits after its last evaluation (lib/evaluator.ts): its changes meanwhile are
       * judged at once. At most 5, so that a lead is never long in coming (the wait counts as evaluator lag). 0 judges
       * users at every change. @default 5
       */
      userEveryMinutes: z.number().int().min(0).max(maxUserEveryMinutes).default(defaultUserEveryMinutes),
      /**
       * Reserve one concurrent execution per shard for the evaluator, so ingest can never take its concurrency.
       * Lambda keeps 100 executions of the account unreserved: an account whose limit is lower (new accounts get 10)
       * fails to deploy with this on until it is raised. @default false
       */
      reservedConcurrency: z.boolean().default(false),
      /**
       * The evaluator's memory in MB, and with it its CPU (lib/evaluator.ts memoryMb): raise it for more entities a
       * second per shard (up to 1,769 MB, a whole vCPU) or for users with more events than a run holds at once
       * (TooManyEventsError: about 340,000 browser events at 1,024 MB). @default 1024
       */
      memoryMb: z.number().int().min(lambdaMemoryMb.min).max(lambdaMemoryMb.max).default(defaultEvaluatorMemoryMb),
    })
    .default({ everyMinutes: 1, shards: defaultDirtyShards, accountEveryMinutes: defaultAccountEveryMinutes, userEveryMinutes: defaultUserEveryMinutes, reservedConcurrency: false, memoryMb: defaultEvaluatorMemoryMb }),
  /** Days events are kept. @default 400 */
  retentionDays: z.number().int().min(1).max(3650).default(defaultRetentionDays),
  /** Deletion protection of the table (lib/event-store.ts); `cdk destroy` keeps the table either way. @default true */
  deletionProtection: z.boolean().default(true),
  /**
   * The table's class (lib/event-store.ts): `standard-infrequent-access` stores for 60% less and reads and writes for
   * 25% more, which pays when events are kept for months (the cost section of the README). @default standard
   */
  tableClass: z.enum(['standard', 'standard-infrequent-access']).default('standard'),
  /** Workspaces that get a write key at deploy time, stored in Secrets Manager (<stack name>/write-key/<workspace>). */
  writeKeys: z
    .array(
      z.strictObject({
        workspace: z.string().regex(workspacePattern, 'must be lower-case letters, digits, _ and -, beginning with a letter or digit, at most 63 characters'),
        /** Browser origins the workspace accepts events from (a page using analytics.js), or `*`; set on every deploy. */
        allowedOrigins: z
          .array(
            z.string().transform((value, ctx) => {
              const read = canonicalOrigin(value);
              if ('origin' in read) return read.origin;
              ctx.addIssue({ code: 'custom', message: `is not an origin: it ${read.problem}; give ${originExamples}` });
              return z.NEVER;
            }),
          )
          .optional(),
      }),
    )
    .superRefine((keys, context) => {
      for (const { index, first } of repeats(keys, (key) => key.workspace)) {
        context.addIssue({ code: 'custom', path: [index, 'workspace'], message: `"${keys[index]!.workspace}" is listed already (writeKeys[${first}]): a workspace gets one write key; give its allowedOrigins there` });
      }
      const workspaces = keys.map((key) => key.workspace);
      for (const { index, first, id } of sharedOutputs(workspaces, 'WriteKeySecret')) {
        context.addIssue({ code: 'custom', path: [index, 'workspace'], message: `"${workspaces[index]}" and "${workspaces[first]}" (writeKeys[${first}]) would both be the stack output ${id} (case aside): rename one of them` });
      }
    })
    .default([]),
  ingest: z
    .strictObject({
      /** The HTTP API's stage throttling, requests per second. @default 1000 */
      rateLimit: z.number().int().positive().default(1000),
      /** @default 2000 */
      burstLimit: z.number().int().positive().default(2000),
      /**
       * A Lambda function URL for ingest beside the HTTP API (lib/ingest-api.ts): the same function and calls, without
       * the HTTP API's $1.00 per million requests. Absent: the HTTP API only.
       */
      functionUrl: z
        .strictObject({
          /**
           * Concurrent executions reserved for the ingest function, which caps them: a function URL has no stage
           * throttling, so this is what bounds ingest's share of the account's concurrency (over it, clients get 429
           * from the URL, a 5xx from the API, and retry). Lambda keeps 100 executions of the account unreserved: an
           * account whose limit is lower (new accounts get 10) fails to deploy with this until it is raised.
           * @default none: no cap (a synth warning)
           */
          reservedConcurrency: z.number().int().min(1).optional(),
        })
        .optional(),
      /**
       * Whether the ingest function logs every request at INFO, with Lambda's START and REPORT records, and the access
       * logs the caller's IP address and user agent (lib/ingest-api.ts): about 1.1 KB a request more in CloudWatch Logs,
       * some $0.52 per million requests. Off: the function's warnings and errors only, and the access logs keep every
       * request without the caller's details. @default false
       */
      requestLogs: z.boolean().default(false),
    })
    .prefault({}),
  /**
   * The ingest buffer: ingest puts each request of one message (analytics.js sends one per event) on a buffer, which a
   * function stores in the table in batches, a visitor's events of a batching window sharing one item; a request of
   * several messages is written at once. `false`: no buffer, ingest writes every request to the table itself (leads
   * seen at once, browser traffic's writes a unit per event). @default { service: firehose }
   */
  ingestBuffer: z.preprocess((value) => (value === false ? null : value), ingestBufferSchema.nullable()).prefault({ service: 'firehose' }),
  /** Who gets the alarms (SNS e-mail subscriptions). */
  alarmEmails: z.array(z.string().email()).default([]),
  /** Routes as the rules file's tiers name them, each with its destinations: every route a tier names needs one. */
  routes: z
    .record(
      routeName,
      z
        .array(destinationSchema)
        .min(1, 'a route needs at least one destination, e.g. - type: sqs')
        .superRefine((destinations, ctx) => {
          // A route has one queue (lib/lead-fanout.ts): a second entry would silently be the same queue.
          for (const { index } of repeats(destinations, (destination) => (destination.type === 'sqs' ? 'sqs' : undefined))) {
            ctx.addIssue({ code: 'custom', path: [index], message: 'a route has one queue, which its first sqs entry makes: remove this one (consumers share that queue, or subscribe queues of their own to the bus)' });
          }
        }),
    )
    .superRefine((routes, ctx) => {
      for (const [route, destinations] of Object.entries(routes)) {
        const keys = destinations.map(notifierKeyOf);
        for (const { index, first } of repeats(keys, (key) => key?.key)) {
          const { field, what } = keys[index]!;
          ctx.addIssue({ code: 'custom', path: [route, index, field], message: `the same ${what} as routes.${route}[${first}]: two notifiers would post every lead event of the route to it twice; remove one` });
        }
      }
      // A route's sqs queue is a stack output (LeadQueueUrl<Route>).
      const queued = Object.keys(routes).filter((route) => routes[route]!.some((destination) => destination.type === 'sqs'));
      for (const { index, first, id } of sharedOutputs(queued, 'LeadQueueUrl')) {
        ctx.addIssue({ code: 'custom', path: [queued[index]!], message: `the sqs queues of routes "${queued[index]}" and "${queued[first]}" would both be the stack output ${id} (case aside): rename one of the routes` });
      }
    })
    .default({}),
  /** CRMs that every lead transition of users and accounts goes to, whatever the route. */
  crm: z
    .array(crmSchema)
    .superRefine((crms, ctx) => {
      for (const { index, first } of repeats(crms, (crm) => crm.tokenSecret)) {
        ctx.addIssue({ code: 'custom', path: [index, 'tokenSecret'], message: `the same token secret as crm[${first}]: two notifiers would sync every lead transition to that HubSpot account twice; remove one` });
      }
    })
    .default([]),
  /**
   * The daily rule-health job (lib/rule-health.ts): the top tier's lift of each workspace over the last 90 days, as
   * `pql-radar health` reports it, and an alarm to alarmEmails when its 95% lower bound falls below `liftAlarmBelow`.
   */
  health: z
    .strictObject({
      /** The alarm fires when a workspace's top tier's lift, at its 95% lower bound, is below this. @default 1.0 */
      liftAlarmBelow: z.number().positive().default(1),
      /** Hours between runs, and the alarm's period; at most 24. @default 24 */
      everyHours: z.number().int().min(1).max(24).default(24),
    })
    .default({ liftAlarmBelow: 1, everyHours: 24 }),
  /** Retries and log of the slack, webhook and CRM deliveries. */
  delivery: deliverySchema.default({ retryHours: defaultDeliveryRetryHours, logDays: defaultDeliveryLogDays }),
});

export type PqlRadarConfig = z.output<typeof configSchema>;

export class ConfigError extends FileProblemsError {
  override name = 'ConfigError';

  /** `rulesFileError`: what is wrong with the rules file the config names, found in the same run, said after the config's problems. */
  constructor(source: string, problems: FileProblem[], readonly rulesFileError?: FileProblemsError | UnreadableFileError) {
    super(source, problems);
    if (rulesFileError) this.message += `\n${rulesFileError.message}`;
  }
}

export { loadRulesFile, type LoadedRulesFile };

/**
 * Reads and validates the config file, and the rules file it names (relative to the config file), so a wrong
 * config or rules file fails `cdk synth` with every problem, its path and line, before anything is deployed.
 */
export function loadConfig(configPath: string): { config: PqlRadarConfig; rulesFile: LoadedRulesFile } {
  const parsed = parseYamlFile(readTextFile(configPath), configSchema);
  if (!parsed.ok) throw new ConfigError(configPath, parsed.problems, rulesFileErrorOf(configPath, parsed.refused?.data));
  const config = parsed.data;
  const rulesPath = resolve(dirname(configPath), config.rules);
  if (!existsSync(rulesPath)) throw new ConfigError(configPath, [parsed.problemAt(['rules'], `no rules file at ${rulesPath}`)]);
  const rulesFile = loadRulesFile(rulesPath);
  const problems = [...routeProblems(config, rulesFile.ruleset.file.tiers), ...retentionProblems(config, rulesFile.ruleset.file.signals)].map(({ path, message }) => parsed.problemAt(path, message));
  if (problems.length > 0) throw new ConfigError(configPath, problems);
  return { config, rulesFile };
}

/**
 * What is wrong with the rules file a refused config names, if it names one that is there: so that one synth tells the
 * problems of both files, rather than those of the rules file only once the config is right.
 */
function rulesFileErrorOf(configPath: string, refused: unknown): FileProblemsError | UnreadableFileError | undefined {
  const rules = isPlainObject(refused) ? refused['rules'] : undefined;
  if (typeof rules !== 'string' || rules === '') return undefined;
  const rulesPath = resolve(dirname(configPath), rules);
  if (!existsSync(rulesPath)) return undefined;
  try {
    loadRulesFile(rulesPath);
    return undefined;
  } catch (error) {
    // Anything else is said as it is once the config is right.
    return error instanceof FileProblemsError || error instanceof UnreadableFileError ? error : undefined;
  }
}

/**
 * The signals' windows and since-signup spans against the days events are kept: the day rollups a window reads expire
 * with the events, so a window longer than retentionDays would count only what is left of it, never saying so.
 */
export function retentionProblems(config: Pick<PqlRadarConfig, 'rules' | 'retentionDays'>, signals: RulesFile['signals']): { path: string[]; message: string }[] {
  return Object.entries(signals).flatMap(([name, signal]) =>
    (['window', 'since_signup'] as const).flatMap((key) => {
      const days = (signal as Partial<Record<typeof key, number>>)[key];
      return days !== undefined && days > config.retentionDays
        ? [{ path: ['retentionDays'], message: `signal "${name}" of ${config.rules} reads ${key} ${days}d of events, but they are kept ${config.retentionDays} days: give retentionDays: ${days} or more, or a shorter ${key}` }]
        : [];
    }),
  );
}

/**
 * The config's routes against the routes the tiers can give (a tier routing by a trait gives every route of its map
 * and its default): a tier route without destinations would qualify leads that reach no one but the bus, and a
 * configured route no tier gives would never receive a lead, almost certainly a typo on one side or the other.
 */
export function routeProblems(config: Pick<PqlRadarConfig, 'rules' | 'routes'>, tiers: readonly Tier[]): { path: string[]; message: string }[] {
  // Each route with the first tier that can give it, for the message.
  const tierOf = new Map<string, string>();
  for (const tier of tiers) for (const route of routesOf(tier.route)) if (!tierOf.has(route)) tierOf.set(route, tier.name);
  const configured = Object.keys(config.routes);
  const unused = configured.filter((route) => !tierOf.has(route));
  const undelivered = [...tierOf].filter(([route]) => !Object.hasOwn(config.routes, route));
  return [
    ...unused.map((route) => ({
      path: ['routes', route],
      message: `no tier of ${config.rules} routes to "${route}"${didYouMean(route, tierOf.keys())} (its tiers route to: ${[...tierOf.keys()].join(', ')})`,
    })),
    ...undelivered.map(([route, tier]) => ({
      path: ['routes'],
      message: `route "${route}" (of tier ${tier} in ${config.rules}) has no destination: add one under routes.${route}, e.g. - type: sqs${didYouMean(route, unused)}`,
    })),
  ];
}
