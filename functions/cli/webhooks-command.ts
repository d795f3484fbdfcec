import type { Command } from 'commander';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { leadEventDetailSchema, type LeadEvent } from '../core/lead-event';
import { generateWebhookSecret, signWebhook, webhookHeaders } from '../core/webhook-signature';
import { formatLeadEvent } from '../local/lead-sinks';
import { readBody } from '../local/request-body';
import { ensurePortFree } from '../local/ports';
import { port } from './integer-option';
import { webhookSecrets, webhookSecretVariable } from './lead-output';

/** How far a delivery's timestamp may be from this clock, as Standard Webhooks' libraries allow. */
const toleranceSeconds = 5 * 60;

/**
 * `pql-radar webhooks secret`: a Standard Webhooks secret for a receiver and for `--webhook-secret` or a deployment.
 * `pql-radar webhooks listen`: a receiver on this machine for `npm start --webhook`, printing each lead it is sent with
 * its one-click feedback links, so the whole path (delivered payload, link, lead held out) can be tried locally.
 */
export function addWebhooksCommand(program: Command) {
  const webhooks = program.command('webhooks').description('webhook signatures (Standard Webhooks), and a local receiver');
  webhooks
    .command('secret')
    .description('print a new signing secret (whsec_...): give it to the receiver and to --webhook-secret, or store it as the destination\'s signingSecret')
    .action(() => console.log(generateWebhookSecret()));
  const listen = webhooks
    .command('listen')
    .description('receive lead events on 127.0.0.1 (npm start --webhook http://127.0.0.1:9000/ --webhook-secret S): verify each signature and print the lead with its feedback links')
    .requiredOption('--secret <secret>', 'the secret the sender signs with (its --webhook-secret)', process.env[webhookSecretVariable])
    .option('--port <port>', 'port on 127.0.0.1', port('--port'), 9000)
    .action(async (options: { secret: string; port: number }) => {
      const secrets = webhookSecrets(listen, '--secret', options.secret);
      const seen = new Set<string>();
      const server = createServer(async (request, response) => {
        const answer = (status: number, problem?: string) => {
          if (problem) console.error(`refused a delivery (${status}): ${problem}`);
          response.writeHead(status, { 'content-type': 'text/plain' }).end(problem ?? 'ok');
        };
        // Bounded before the signature is checked: anything on this machine, a web page too, can post here.
        const bytes = await readBody(request);
        if (bytes === undefined) return answer(413, 'the body is larger than a lead event can be');
        const body = bytes.toString('utf8');
        const problem = signatureProblem(request.headers, body, secrets, Math.floor(Date.now() / 1000));
        if (problem) return answer(401, problem);
        const id = String(request.headers[webhookHeaders.id]);
        // A retried delivery carries the same webhook-id: a receiver acts once, as this one prints once.
        if (seen.has(id)) return answer(200);
        let event: LeadEvent;
        try {
          const envelope = JSON.parse(body) as { DetailType: LeadEvent['detailType']; Detail: unknown };
          event = { detailType: envelope.DetailType, detail: leadEventDetailSchema.parse(envelope.Detail) };
        } catch {
          return answer(400, 'the body is not a pql-radar lead event (Source, DetailType, Detail)');
        }
        seen.add(id);
        console.log(formatLeadEvent(event));
        for (const link of event.detail.feedbackLinks ?? []) console.log(`  ${link.outcome}${link.reason ? ` (${link.reason})` : ''}: ${link.url}`);
        answer(200);
      });
      await ensurePortFree(options.port, '127.0.0.1', 'the webhook receiver (--port chooses another)', 'pql-radar webhooks listen');
      await new Promise<void>((listening) => server.listen(options.port, '127.0.0.1', listening));
      const { port } = server.address() as AddressInfo;
      console.log(`listening on http://127.0.0.1:${port}/ for signed lead events; Ctrl-C stops`);
    });
}

/** Why a delivery's Standard Webhooks signature does not hold, or undefined when one of its signatures does. */
function signatureProblem(headers: Record<string, string | string[] | undefined>, body: string, secrets: readonly string[], nowSeconds: number): string | undefined {
  const id = headers[webhookHeaders.id];
  const timestamp = Number(headers[webhookHeaders.timestamp]);
  const signatures = String(headers[webhookHeaders.signature] ?? '').split(' ');
  if (typeof id !== 'string' || !Number.isSafeInteger(timestamp)) return `${webhookHeaders.id} and ${webhookHeaders.timestamp} are required`;
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) return `${webhookHeaders.timestamp} is more than ${toleranceSeconds} s from this clock`;
  const expected = signWebhook({ id, timestampSeconds: timestamp, body, secrets })[webhookHeaders.signature]!.split(' ');
  const matches = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
  return signatures.some((given) => expected.some((wanted) => matches(given, wanted))) ? undefined : `no ${webhookHeaders.signature} matches the secret`;
}
