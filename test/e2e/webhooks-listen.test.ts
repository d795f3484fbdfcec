import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { staticSecret, webhookDestination } from '../../functions/adapters/destinations';
import { generateWebhookSecret, signWebhook } from '../../functions/core/webhook-signature';
import { sampleLeadEvent } from '../support/lead-events';

/** `pql-radar webhooks listen`: the local receiver a newcomer points `npm start --webhook` at. */

const secret = generateWebhookSecret();
let listener: ChildProcess;
let url: string;
let stdout = '';
let stderr = '';

beforeAll(async () => {
  listener = spawn(process.execPath, [join(import.meta.dirname, '../../bin/pql-radar.js'), 'webhooks', 'listen', '--secret', secret, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  listener.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  listener.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  url = await until(() => /listening on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stdout)?.[1]);
}, 60_000);

afterAll(() => {
  listener?.kill();
});

async function until<T>(found: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  for (const started = Date.now(); Date.now() - started < timeoutMs; await new Promise((done) => setTimeout(done, 50))) {
    const value = found();
    if (value !== undefined) return value;
  }
  throw new Error(`not within ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`);
}

describe('webhooks listen', () => {
  it("verifies a delivery, prints the lead with its feedback links, and a redelivery (same webhook-id) once", async () => {
    const links = [
      { outcome: 'done' as const, reason: null, url: 'http://127.0.0.1:3000/v1/feedback?t=done-token' },
      { outcome: 'disqualified' as const, reason: 'not_a_fit', url: 'http://127.0.0.1:3000/v1/feedback?t=not-a-fit-token' },
    ];
    const event = sampleLeadEvent({ feedbackLinks: links });
    const hook = webhookDestination('listen', url, staticSecret(secret));
    expect(await hook.send(event)).toMatchObject({ outcome: 'delivered' });
    expect(await hook.send(event)).toMatchObject({ outcome: 'delivered' });
    await until(() => (stdout.includes('not-a-fit-token') ? true : undefined));
    expect(stdout).toContain(`LEAD QUALIFIED  user ${event.detail.entity.id} (${event.detail.workspace})  tier PQL-A`);
    expect(stdout).toContain('  disqualified (not_a_fit): http://127.0.0.1:3000/v1/feedback?t=not-a-fit-token');
    expect(stdout).toContain('  done: http://127.0.0.1:3000/v1/feedback?t=done-token');
    expect(stdout.match(/LEAD QUALIFIED/g)).toHaveLength(1);
  });

  it('refuses a forged signature, an old timestamp and a body that is not a lead event, saying why', async () => {
    const body = JSON.stringify({ Source: 'pql-radar', DetailType: 'Lead Qualified', Detail: sampleLeadEvent().detail });
    const now = Math.floor(Date.now() / 1000);
    const post = (headers: Record<string, string>, payload = body) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: payload });
    const forged = await post(signWebhook({ id: 'forged', timestampSeconds: now, body, secrets: [generateWebhookSecret()] }));
    expect(forged.status).toBe(401);
    const old = await post(signWebhook({ id: 'old', timestampSeconds: now - 3600, body, secrets: [secret] }));
    expect(old.status).toBe(401);
    const notALead = await post(signWebhook({ id: 'odd', timestampSeconds: now, body: '{"hello":1}', secrets: [secret] }), '{"hello":1}');
    expect(notALead.status).toBe(400);
    await until(() => (stderr.includes('not a pql-radar lead event') ? true : undefined));
    expect(stderr).toContain('no webhook-signature matches the secret');
    expect(stderr).toContain('webhook-timestamp is more than 300 s from this clock');
  });

  it('refuses a body larger than any lead event before checking its signature, without holding it', async () => {
    const huge = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(11 * 1024 * 1024) });
    expect(huge.status).toBe(413);
    await until(() => (stderr.includes('refused a delivery (413)') ? true : undefined));
  });

  it('a second receiver on the same port says the port is taken, not a stack trace', async () => {
    const port = new URL(url).port;
    const second = spawn(process.execPath, [join(import.meta.dirname, '../../bin/pql-radar.js'), 'webhooks', 'listen', '--secret', secret, '--port', port], { stdio: ['ignore', 'pipe', 'pipe'] });
    let errors = '';
    second.stderr!.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    const code = await new Promise((exited) => second.on('close', exited));
    expect(code).toBe(1);
    expect(errors.trim()).toBe(`pql-radar: port ${port} is in use (is pql-radar webhooks listen running already?); it was wanted for the webhook receiver (--port chooses another)`);
  });
});
