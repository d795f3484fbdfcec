import { InvalidArgumentError, type Command } from 'commander';
import type { EvaluatorRunSummary } from '../core/evaluate-leads';
import type { LeadPublisher } from '../core/ports';
import { ConsoleLeadSink, FanOutLeadSink, JsonlLeadSink, WebhookLeadSink } from '../local/lead-sinks';
import { collect } from './options';

/** Where `dev` and `evaluate` send lead events, and how they print a run. */

export interface SinkOptions {
  leadsFile?: string;
  webhook: string[];
  webhookSecret?: string;
}

export const sinkOptions = (command: Command) =>
  command
    .option('--leads-file <file>', 'append lead events to this JSONL file (one EventBridge entry per line)')
    .option('--webhook <url>', 'POST lead events to this URL, signed per Standard Webhooks (repeatable)', collect, [])
    .option(
      '--webhook-secret <secret>',
      'Standard Webhooks secret (whsec_..., `pql-radar webhooks secret` makes one; several separated by spaces during a rotation; default: PQL_RADAR_WEBHOOK_SECRET)',
      process.env['PQL_RADAR_WEBHOOK_SECRET'],
    );

/** The local destinations of lead events: always the console, plus a JSONL file and webhooks when asked for. */
export function localSinks(options: SinkOptions, extra: LeadPublisher[] = []): LeadPublisher {
  if (options.webhook.length > 0 && !options.webhookSecret) {
    throw new InvalidArgumentError('--webhook needs --webhook-secret (or PQL_RADAR_WEBHOOK_SECRET): receivers verify the signature with it; `pql-radar webhooks secret` makes one');
  }
  return new FanOutLeadSink([
    new ConsoleLeadSink(),
    ...(options.leadsFile ? [new JsonlLeadSink(options.leadsFile)] : []),
    ...options.webhook.map((url) => new WebhookLeadSink({ url, secret: options.webhookSecret! })),
    ...extra,
  ]);
}

export function printRun(summary: EvaluatorRunSummary) {
  if (summary.transitions.length === 0 && summary.unpublished.length === 0 && summary.incompleteShards.length === 0) return;
  console.log(
    `evaluator: ${summary.evaluated} evaluated, ${summary.transitions.length} transitions, ${summary.published} published` +
      (summary.unpublished.length > 0 ? `, ${summary.unpublished.length} left in the outbox for the next run` : '') +
      (summary.incompleteShards.length > 0 ? `, shards ${summary.incompleteShards.join(', ')} unfinished` : ''),
  );
}
