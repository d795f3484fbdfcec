import { InvalidArgumentError, type Command } from 'commander';
import type { EvaluatorRunSummary } from '../core/evaluate-leads';
import type { LeadPublisher } from '../core/ports';
import { staticSecret, webhookDestination } from '../adapters/destinations';
import type { LeadDestination } from '../core/delivery';
import { parseWebhookSecrets } from '../core/webhook-signature';
import { ConsoleLeadSink, FanOutLeadSink, JsonlLeadSink } from '../local/lead-sinks';
import { collect } from './options';

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

/** The webhooks asked for, as destinations of the local delivery worker (queued, retried, deduplicated, logged). */
export function localDestinations(command: Command, options: SinkOptions): LeadDestination[] {
  if (options.webhook.length === 0) return [];
  if (!options.webhookSecret) {
    throw new InvalidArgumentError(`--webhook needs --webhook-secret (or ${webhookSecretVariable}): receivers verify the signature with it; \`pql-radar webhooks secret\` makes one`);
  }
  webhookSecrets(command, '--webhook-secret', options.webhookSecret);
  return options.webhook.map((url, index) => {
    try {
      const parsed = new URL(url);
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error();
    } catch {
      throw new InvalidArgumentError(`--webhook ${url}: must be an http:// or https:// URL`);
    }
    return webhookDestination(`local-webhook-${index + 1}`, url, staticSecret(options.webhookSecret!));
  });
}

export function printRun(summary: EvaluatorRunSummary) {
  if (summary.transitions.length === 0 && summary.unpublished.length === 0 && summary.incompleteShards.length === 0) return;
  console.log(
    `evaluator: ${summary.evaluated} evaluated, ${summary.transitions.length} transitions, ${summary.published} published` +
      (summary.unpublished.length > 0 ? `, ${summary.unpublished.length} left in the outbox for the next run` : '') +
      (summary.incompleteShards.length > 0 ? `, shards ${summary.incompleteShards.join(', ')} unfinished` : ''),
  );
}
