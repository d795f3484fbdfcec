import { leadEventType, type LeadEventDetail } from './lead-event';
import { feedbackLinkLabel } from './lead-feedback';

/** What the notifier sends to Slack, as a pure function of a lead event: a Block Kit message. */

interface PlainText {
  type: 'plain_text';
  text: string;
}

interface Markdown {
  type: 'mrkdwn';
  text: string;
  verbatim: true;
}

/**
 * Lead data's text, as Slack shows it without preprocessing it (verbatim): by default Slack turns bare URLs into links
 * and parses some mentions in mrkdwn, so a trait such as `@channel` or a URL could notify a channel or become a link.
 * The mentions and links written here (`<@U…>`, `<url|label>`) are kept.
 */
const markdown = (text: string): Markdown => ({ type: 'mrkdwn', text, verbatim: true });

export type SlackBlock =
  | { type: 'header'; text: PlainText }
  | { type: 'section'; text: Markdown }
  | { type: 'section'; fields: Markdown[] }
  | { type: 'context'; elements: Markdown[] }
  | { type: 'actions'; elements: { type: 'button'; text: PlainText; url: string }[] };

export interface SlackMessage {
  /** Shown in notifications and where blocks cannot be. */
  text: string;
  blocks: SlackBlock[];
}

// Slack's limits: header text 150 characters, section text 3000, a field 2000, a button URL 3000.
const maxHeader = 150;
const maxSectionText = 3000;
const maxField = 2000;
const maxUrl = 3000;
/** Members are listed by id, a long list a salesperson would not read. */
const maxMembersListed = 10;

/** Slack reads &, < and > as markup (links, mentions such as <!channel>): lead data must never become markup. */
function escape(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Bulleted lines under a bold title: at most `maxLines` of them, and as many as fit in one section. */
function list(title: string, lines: readonly string[], maxLines = Number.POSITIVE_INFINITY): string {
  const more = (count: number) => (count > 0 ? `\n… and ${count} more` : '');
  let text = `*${title}*`;
  let shown = 0;
  for (const line of lines.slice(0, maxLines)) {
    const next = `${text}\n• ${line}`;
    if (next.length + more(lines.length - shown - 1).length > maxSectionText) break;
    text = next;
    shown++;
  }
  return truncate(text + more(lines.length - shown), maxSectionText);
}

/** A Slack member id (U..., or W... on Enterprise Grid): the one form of owner Slack can mention. */
const slackMemberId = /^[UW][A-Z0-9]{2,}$/;

/** The owner as a mention when it is a Slack member id, so they get notified; anything else (an e-mail) as text. */
function ownerText(owner: string): string {
  return slackMemberId.test(owner) ? `<@${owner}>` : escape(owner);
}

function signalValue(value: LeadEventDetail['signals'][number]['value']): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** The entity's page in the user's own tools: {type}, {id} and {workspace} replaced, each URL-encoded. */
export function entityUrl(template: string, detail: Pick<LeadEventDetail, 'entity' | 'workspace'>): string {
  return template
    .replaceAll('{type}', encodeURIComponent(detail.entity.type))
    .replaceAll('{id}', encodeURIComponent(detail.entity.id))
    .replaceAll('{workspace}', encodeURIComponent(detail.workspace));
}

export function slackMessage(detail: LeadEventDetail, entityUrlTemplate?: string): SlackMessage {
  const transition = `${detail.previousTier ?? 'none'} → ${detail.tier ?? 'none'}`;
  const { total, engagement, fit } = detail.score;
  const { traits, members, topEvents } = detail.context;

  const blocks: SlackBlock[] = [
    {
      type: 'header',
      text: { type: 'plain_text', text: truncate(`${detail.feedback ? 'Lead Feedback' : leadEventType(detail.previousTier, detail.tier, detail.conversion !== undefined)}: ${transition}`, maxHeader) },
    },
    {
      type: 'section',
      fields: [
        `*Entity*\n${escape(`${detail.entity.type} ${detail.entity.id}`)}\nworkspace ${escape(detail.workspace)}`,
        `*Tier*\n${escape(transition)}`,
        `*Score*\n${total} (engagement ${engagement}, fit ${fit})`,
        `*Route*\n${escape(detail.route ?? 'none')}`,
        ...(typeof detail.owner === 'string' ? [`*Owner*\n${ownerText(detail.owner)}`] : []),
      ].map((text) => markdown(truncate(text, maxField))),
    },
  ];

  const who = [traits.name, traits.email, traits.company, traits.plan === undefined ? undefined : `plan ${traits.plan}`].filter(
    (part): part is string => part !== undefined,
  );
  if (who.length > 0) blocks.push({ type: 'context', elements: [markdown(truncate(escape(who.join(' · ')), maxField))] });

  const signals = detail.signals.map(
    (signal) => escape(`${signal.name}: ${signalValue(signal.value)} (${signal.points > 0 ? '+' : ''}${signal.points})`),
  );
  blocks.push({ type: 'section', text: markdown(signals.length > 0 ? list('Signals', signals) : '*Signals*\nnone') });
  if (detail.reasons.length > 0) blocks.push({ type: 'section', text: markdown(list('Why', detail.reasons.map(escape))) });
  if (members !== undefined && members.length > 0) {
    const memberLines = members.map((member) => escape(member.tier === null ? member.id : `${member.id} (${member.tier})`));
    blocks.push({ type: 'section', text: markdown(list(`Members (${members.length})`, memberLines, maxMembersListed)) });
  }
  if (topEvents.length > 0) {
    const events = topEvents.map((event) => `${event.name} ×${event.count}`).join(', ');
    blocks.push({ type: 'context', elements: [markdown(truncate(escape(`Top events: ${events}`), maxField))] });
  }

  // Plain links, not buttons: each opens a confirmation page whose button applies it, so Slack's unfurling or a
  // scanner fetching the URL changes nothing.
  const links = (detail.feedbackLinks ?? []).filter((link) => link.url.length <= maxUrl);
  if (links.length > 0) {
    const text = `*Feedback* (one click, no login): ${links.map((link) => `<${link.url}|${escape(feedbackLinkLabel(link))}>`).join(' · ')}`;
    if (text.length <= maxSectionText) blocks.push({ type: 'section', text: markdown(text) });
  }
  if (entityUrlTemplate !== undefined) {
    const url = entityUrl(entityUrlTemplate, detail);
    // Slack refuses the whole message over a button URL that is too long: better no button than no message.
    if (url.length <= maxUrl) {
      blocks.push({
        type: 'actions',
        elements: [{ type: 'button', text: { type: 'plain_text', text: `Open ${detail.entity.type}` }, url }],
      });
    }
  }
  blocks.push({ type: 'context', elements: [markdown(escape(`rules ${detail.rulesetVersion} · evaluated ${detail.evaluatedAt} · key ${detail.idempotencyKey}`))] });

  return { text: escape(detail.summary), blocks };
}
