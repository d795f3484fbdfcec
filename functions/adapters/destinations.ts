import { z } from 'zod';
import type { AttemptResult, LeadDestination } from '../core/delivery';
import type { LeadEvent } from '../core/lead-event';
import { parseWebhookSecrets } from '../core/webhook-signature';
import { slackMessage } from '../core/slack-message';
import { feedbackLinks, type FeedbackLinkSigner } from '../core/lead-feedback';
import { syncLeadToHubspot, type HubspotSyncOptions } from './hubspot/client';
import { httpAttempt, signedLeadEventRequest, type HttpAttemptOptions } from './webhook/delivery';

/**
 * The destinations pql-radar delivers to itself, as core/delivery's LeadDestination: a signed webhook, Slack, and
 * (adapters/hubspot) HubSpot. The same objects serve the notifier Lambda and the local runtime's worker.
 */

/**
 * A Slack or webhook destination whose lead events of a lead in a tier (qualified, tier changed) carry one-click
 * feedback links (core/lead-feedback.ts), signed at delivery: the links reach the people who act on the lead,
 * and neither the bus, its 90-day archive nor the other subscribers hold them.
 */
export function withFeedbackLinks(destination: LeadDestination, signer: () => Promise<FeedbackLinkSigner | undefined>, reasons: readonly string[], now: () => Date = () => new Date()): LeadDestination {
  return {
    ...destination,
    send: async (event) => {
      const { detail, detailType } = event;
      const signing = detail.test || (detailType !== 'Lead Qualified' && detailType !== 'Lead Tier Changed') ? undefined : await signer();
      // No key yet (a table the deploy's bootstrap has not run on): the event goes without links rather than not at all.
      if (!signing) return destination.send(event);
      const links = feedbackLinks(signing, { workspace: detail.workspace, type: detail.entity.type, id: detail.entity.id }, reasons, now());
      return destination.send({ detailType, detail: { ...detail, feedbackLinks: links } });
    },
  };
}

/** A credential read when needed: cached for a while, and read again at once after the destination refused it. */
export interface SecretSource {
  value(): Promise<string>;
  /** Called after a 401 or 403, so a rotated secret is picked up on the next attempt, with no deploy. */
  invalidate(): void;
}

export const staticSecret = (value: string): SecretSource => ({ value: async () => value, invalidate: () => {} });

/** Reads through `read` at most every `ttlMs`; a failed read is not cached. */
export function cachedSecret(read: () => Promise<string>, ttlMs = 5 * 60_000, now: () => number = Date.now): SecretSource {
  let cached: { value: Promise<string>; at: number } | undefined;
  return {
    value() {
      if (cached === undefined || now() - cached.at > ttlMs) {
        const value = read();
        cached = { value, at: now() };
        // Only this read's entry: a newer read (after invalidate() or the TTL) stays cached when an older one fails.
        value.catch(() => {
          if (cached?.value === value) cached = undefined;
        });
      }
      return cached.value;
    },
    invalidate: () => (cached = undefined),
  };
}

const httpsUrl = z.string().url().refine((url) => url.startsWith('https://'), 'must be an https:// URL');

/** The attempt, with the credential dropped from the cache when the destination refused it. */
async function attemptWith(secret: SecretSource, attempt: (value: string) => Promise<AttemptResult>): Promise<AttemptResult> {
  let value: string;
  try {
    value = await secret.value();
  } catch (error) {
    // Retryable: a secret that cannot be read now (throttled, not created yet) may be readable later.
    return { outcome: 'retryable', error: `the destination's secret could not be read: ${(error as Error).message}`, latencyMs: 0 };
  }
  const result = await attempt(value);
  if (result.status === 401 || result.status === 403) secret.invalidate();
  return result;
}

/** POSTs the lead event envelope to `url`, signed per Standard Webhooks with the secret's `whsec_` secrets. */
export function webhookDestination(id: string, url: string, secret: SecretSource, options: HttpAttemptOptions = {}): LeadDestination {
  return {
    id,
    kind: 'webhook',
    skipsSuperseded: false,
    send: (event: LeadEvent) =>
      attemptWith(secret, async (value) => {
        let secrets: string[];
        try {
          secrets = parseWebhookSecrets(value);
        } catch (error) {
          // Like a Slack secret that is not a URL: logged and dead-lettered, not thrown (the message names the problem, never the value).
          return { outcome: 'permanent', error: `the webhook secret is not usable: ${(error as Error).message}`, latencyMs: 0 };
        }
        const request = signedLeadEventRequest(event, secrets, (options.now ?? Date.now)());
        return httpAttempt(url, { method: 'POST', ...request }, options);
      }),
  };
}

/** POSTs a Block Kit message to Slack's incoming webhook, whose URL is the secret. */
export function slackDestination(id: string, webhookUrl: SecretSource, entityUrlTemplate: string | undefined, options: HttpAttemptOptions = {}): LeadDestination {
  return {
    id,
    kind: 'slack',
    skipsSuperseded: true,
    send: (event: LeadEvent) =>
      attemptWith(webhookUrl, async (value) => {
        const url = httpsUrl.safeParse(value.trim());
        // The URL is the secret: the error names the problem, never the value.
        if (!url.success) return { outcome: 'permanent', error: 'the Slack secret is not an https:// incoming-webhook URL', latencyMs: 0 };
        const body = JSON.stringify(slackMessage(event.detail, entityUrlTemplate));
        return httpAttempt(url.data, { method: 'POST', headers: { 'content-type': 'application/json' }, body }, options);
      }),
  };
}

/**
 * Keeps HubSpot's contact (users, by e-mail) or company (accounts, by `companyIdProperty`) in the lead's latest
 * state: a CRM, so a transition older than one it already applied is not sent (core/delivery). `warn` hears only the
 * first warning an attempt brings back (a token without the companies read scope), since every account delivery
 * would repeat it: the notifier builds its destination once per container. Each attempt's delivery log entry keeps it.
 */
export function hubspotDestination(
  id: string,
  token: SecretSource,
  companyIdProperty: string,
  options: Omit<HubspotSyncOptions, 'token' | 'companyIdProperty'> & { warn?: (warning: string) => void } = {},
): LeadDestination {
  const { warn, ...syncOptions } = options;
  let warned = false;
  return {
    id,
    kind: 'hubspot',
    skipsSuperseded: true,
    send: async (event: LeadEvent) => {
      const result = await attemptWith(token, (value) => syncLeadToHubspot(event, { token: value, companyIdProperty, ...syncOptions }));
      if (result.warning !== undefined && !warned) {
        warned = true;
        warn?.(result.warning);
      }
      return result;
    },
  };
}
