import { InvalidArgumentError, type Command } from 'commander';
import { createHash } from 'node:crypto';
import { describeError, type EntityFailure, type EvaluatorRunSummary } from '../core/evaluate-leads';
import type { LeadPublisher } from '../core/ports';
import { staticSecret, webhookDestination } from '../adapters/destinations';
import type { LeadDestination } from '../core/delivery';
import { parseWebhookSecrets } from '../core/webhook-signature';
import type { DrainResult, LocalDeliveryWorker } from '../local/delivery-worker';
import { ConsoleLeadSink, FanOutLeadSink, JsonlLeadSink } from '../local/lead-sinks';
import { collect } from './options';
import { counted } from '../analysis/format';

/** Where `dev` and `evaluate` send lead events, and how they print a run. */

export interface SinkOptions {
  leadsFile?: string;
  webhook: string[];
  webhookSecret?: string;
}

/** The environment variable a webhook secret option defaults to. */
export const webhookSecretVariable = 'PQL_RADAR_WEBHOOK_SECRET';

export const sinkOptions = (command: Command) =>
  command
    .option('--leads-file <file>', 'append lead events to this JSONL file (one EventBridge entry per line)')
    .option('--webhook <url>', 'POST lead events to this URL, signed per Standard Webhooks (repeatable)', collect, [])
    .option(
      '--webhook-secret <secret>',
      `Standard Webhooks secret (whsec_..., \`pql-radar webhooks secret\` makes one; several separated by spaces during a rotation; default: ${webhookSecretVariable})`,
      process.env[webhookSecretVariable],
    );

/**
 * The secrets of `command`'s option `flag`, whose default is the environment variable: refused at start, naming
 * where the value came from and why. Taken as it is, a malformed secret dead-lettered every lead event as refused
 * by a destination that was never contacted. The value is not repeated: it is a secret.
 */
export function webhookSecrets(command: Command, flag: string, value: string): string[] {
  try {
    return parseWebhookSecrets(value);
  } catch (error) {
    const option = command.options.find((candidate) => candidate.long === flag)!;
    const from = command.getOptionValueSource(option.attributeName()) === 'cli' ? flag : `${webhookSecretVariable} (the default of ${flag})`;
    throw new InvalidArgumentError(`${from}: ${(error as Error).message}`);
  }
}

/** Where lead events are written at once: always the console, plus a JSONL file when asked for. */
export function localSinks(options: SinkOptions, extra: LeadPublisher[] = []): LeadPublisher {
  return new FanOutLeadSink([new ConsoleLeadSink(), ...(options.leadsFile ? [new JsonlLeadSink(options.leadsFile)] : []), ...extra]);
}

/** The local runtime's webhooks, by their place among its --webhook options: `local-webhook-1`, ... */
export const runtimeWebhookId = (_url: string, index: number) => `local-webhook-${index + 1}`;

/**
 * A webhook of `pql-radar evaluate`, by its URL: what a pass leaves in its queue a later pass given the same URL
 * retries, to that URL. By its place, as the runtime's, it took the runtime's queue: the running `npm start`
 * delivered the pass's retries to its own webhook, and the pass the runtime's queued events to this one.
 */
export const evaluateWebhookId = (url: string) => `evaluate-webhook-${createHash('sha256').update(url).digest('hex').slice(0, 12)}`;

/**
 * The webhooks asked for, as destinations of the local delivery worker (queued, retried, deduplicated, logged), with
 * the ids `idOf` gives each (its URL as parsed, and its place among the --webhook options).
 */
export function localDestinations(command: Command, options: SinkOptions, idOf: (url: string, index: number) => string): LeadDestination[] {
  if (options.webhook.length === 0) return [];
  if (!options.webhookSecret) {
    throw new InvalidArgumentError(`--webhook needs --webhook-secret (or ${webhookSecretVariable}): receivers verify the signature with it; \`pql-radar webhooks secret\` makes one`);
  }
  webhookSecrets(command, '--webhook-secret', options.webhookSecret);
  const ids = new Set<string>();
  return options.webhook.map((url, index) => {
    const parsed = URL.canParse(url) ? new URL(url) : undefined;
    if (parsed?.protocol !== 'http:' && parsed?.protocol !== 'https:') throw new InvalidArgumentError(`--webhook ${url}: must be an http:// or https:// URL`);
    const id = idOf(parsed.href, index);
    // Two workers on one queue would race for its head.
    if (ids.has(id)) throw new InvalidArgumentError(`--webhook ${url}: given twice`);
    ids.add(id);
    return webhookDestination(id, url, staticSecret(options.webhookSecret!));
  });
}

/**
 * Prints each run that did something, and the entities left because a pass at a later time saved them (an earlier
 * `evaluate --at` ahead of this clock; against AWS, the deployed evaluator): told of when their count changes, not at
 * every pass that leaves them again.
 */
export function runPrinter(): (summary: EvaluatorRunSummary) => void {
  let newerStatesTold = 0;
  let failuresTold = '';
  return (summary) => {
    if (summary.newerStates !== newerStatesTold && summary.newerStates > 0) console.log(newerStatesLine(summary.newerStates));
    newerStatesTold = summary.newerStates;
    const failures = failureLines(summary.failed).join('\n');
    if (failures !== failuresTold && failures !== '') console.error(failures);
    failuresTold = failures;
    if (summary.transitions.length === 0 && summary.unpublished.length === 0 && summary.incompleteShards.length === 0) return;
    console.log(
      `evaluator: ${summary.evaluated} evaluated, ${counted(summary.transitions.length, 'transition')}, ${summary.published} published` +
        (summary.unpublished.length > 0
          ? `, ${summary.unpublished.length} left in the outbox for the next run` + (summary.unpublishedReasons.length > 0 ? ` (${summary.unpublishedReasons.join('; ')})` : '')
          : '') +
        (summary.incompleteShards.length > 0 ? `, shards ${summary.incompleteShards.join(', ')} unfinished` : ''),
    );
  };
}

/** The entities whose evaluation threw, one line each: which, and what it threw. */
export const failureLines = (failed: readonly EntityFailure[]): string[] =>
  failed.map(({ ref, error }) => `evaluator: ${ref.type} ${ref.id} (${ref.workspace}) not evaluated: ${describeError(error)}; it is left for the next pass to try again`);

/** Why some entities were not evaluated: their lead events would have been dated before those published already. */
export const newerStatesLine = (count: number) =>
  `evaluator: ${count} ${count === 1 ? 'entity waits' : 'entities wait'}: a pass at a later time (an earlier evaluate --at; against AWS, the deployed evaluator meanwhile) saved ${count === 1 ? 'it' : 'them'}, and ${count === 1 ? 'its' : 'their'} changes are judged from that time on, so that lead events stay in time order`;

/**
 * What the drains of the `--webhook` queues left undelivered, in lines for stderr: what waits in a queue, why, and
 * who retries it (`retrier`, given the webhook's URL), what was dead-lettered and how to send it again. A lead event
 * waiting for its retry is told of once, however many drains find it still waiting: saying so at each would bury the
 * next failure.
 */
export class UndeliveredReport {
  /** Per webhook, the lead event last told of as waiting. */
  readonly #told = new Map<string, string | undefined>();

  constructor(
    private readonly deliveries: LocalDeliveryWorker,
    private readonly destinations: readonly LeadDestination[],
    private readonly urls: readonly string[],
    private readonly retrier: (url: string) => string,
  ) {}

  async lines(results: readonly DrainResult[]): Promise<string[]> {
    const lines: string[] = [];
    for (const result of results) {
      const url = this.urls[this.destinations.findIndex((destination) => destination.id === result.destination)];
      const untold = result.waiting !== undefined && result.waiting !== this.#told.get(result.destination);
      this.#told.set(result.destination, result.waiting);
      if (untold) {
        const queued = await this.deliveries.queue.size(result.destination);
        lines.push(
          `${queued} lead event(s) not delivered to --webhook ${url} (${result.destination}) ${result.lastFailure ? `(${result.lastFailure})` : '(waiting for a retry after an earlier failure)'}, queued for retry: ` +
            `${this.retrier(url!)}; \`pql-radar deliveries list --failed\` shows the attempts`,
        );
      }
      if (result.deadLettered.length > 0) {
        lines.push(
          `${result.deadLettered.length} lead event(s) dead-lettered for --webhook ${url} (${result.destination}): ${[...new Set(result.deadLettered)].join('; ')}; ` +
            `\`pql-radar dlq redrive ${result.destination}\` queues them again`,
        );
      }
    }
    return lines;
  }
}
