import type { Command } from 'commander';
import { generateWebhookSecret } from '../core/webhook-signature';

/** `pql-radar webhooks secret`: a Standard Webhooks secret for a receiver and for `--webhook-secret` or a deployment. */
export function addWebhooksCommand(program: Command) {
  program
    .command('webhooks')
    .description('webhook signatures (Standard Webhooks)')
    .command('secret')
    .description('print a new signing secret (whsec_...): give it to the receiver and to --webhook-secret, or store it as the destination\'s signingSecret')
    .action(() => console.log(generateWebhookSecret()));
}
