import { STATUS_CODES } from 'node:http';
import type { LeadSummary, LeadView } from '../core/lead-view';
import type { ScorePoint } from '../core/lead-state';
import { escapeHtml as esc, htmlDocument, metricHook } from './html';
import { feedbackText, type HealthReport } from './live-health';
import { liftText } from './metrics';
import { percentCoarse, periodText } from './format';
import type { Outcome } from './report';
import type { Estimate } from './stats';

/**
 * The lead inspector's pages (served by the local runtime and `pql-radar leads serve`): the list and one page per
 * lead, from the same views `leads list|show --json` print (core/lead-view). Like the backtest report, a page is
 * self-contained: inline CSS and SVG, no script, font or image, and its Content-Security-Policy forbids them. Every
 * value comes from clients (ids, event names, traits) and is escaped.
 *
 * Figures also in the JSON carry `data-metric` (their name) and `data-value` (the exact JSON number):
 *   list:   lead:<type>:<id>:score
 *   lead:   score:total, score:engagement, score:fit, scores:<index>:total|engagement|fit, signal:<name>:points
 */

/** What the pages send as a header too, so the page stays offline even if an escape were missed. */
export const leadPagesCsp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'";

/** The list's filters as the form holds them (the `since` age as typed, e.g. 7d). */
export interface LeadListForm {
  workspace?: string;
  tier?: string;
  route?: string;
  since?: string;
}

export function renderLeadListHtml(rows: readonly LeadSummary[], form: LeadListForm, choices: { tiers: string[]; routes: string[] }): string {
  const select = (name: 'tier' | 'route', values: string[]) =>
    `<label>${name} <select name="${name}"><option value="">any</option>${values
      .map((value) => `<option value="${esc(value)}"${form[name] === value ? ' selected' : ''}>${esc(value)}</option>`)
      .join('')}</select></label>`;
  const body = rows.map(
    (row) => `<tr>
<th scope="row"><a href="${esc(leadPath(row))}">${esc(row.type)} <code>${esc(row.id)}</code></a></th>
<td>${esc(row.workspace)}</td><td>${esc(row.tier)}</td><td>${esc(row.route ?? '—')}</td>
<td class="num">${figure(`lead:${row.type}:${row.id}:score`, row.score)}</td>
<td>${esc(row.since ?? '—')}</td></tr>`,
  );
  return page(
    'Leads',
    `<h1>Leads</h1>
<form method="get" action="/leads" class="filters">
${workspaceField(form.workspace)}
${select('tier', choices.tiers)} ${select('route', choices.routes)}
<label>since <input name="since" value="${esc(form.since ?? '')}" placeholder="7d" size="6"></label>
<button type="submit">Filter</button>
</form>
${rows.length === 0 ? '<p class="empty">No lead in a tier matches.</p>' : table('leads', `${rows.length} lead${rows.length === 1 ? '' : 's'} in a tier, newest first`, ['Lead', 'Workspace', 'Tier', 'Route', 'Score', 'Since'], body)}`,
  );
}

/** With `feedback`, the page offers sales feedback: a form POSTed to the lead's own /feedback path. */
export function renderLeadHtml(view: LeadView, feedback?: { reasons: readonly string[] }): string {
  const { entity } = view;
  const fact = (label: string, value: string) => `<div><dt>${esc(label)}</dt><dd>${value}</dd></div>`;
  const text = (value: string | null) => esc(value ?? '—');
  const tiered = (rows: { id: string; tier: string | null }[], type: 'user' | 'account') =>
    rows.map((row) => `<tr><th scope="row"><a href="${esc(leadPath({ workspace: entity.workspace, type, id: row.id }))}"><code>${esc(row.id)}</code></a></th><td>${text(row.tier)}</td></tr>`);
  const sections = [
    `<h1>${esc(entity.type)} <code>${esc(entity.id)}</code></h1>
<p class="sub">workspace <code>${esc(entity.workspace)}</code> · evaluated ${esc(view.evaluatedAt)} · rules version <code>${esc(view.rulesetVersion)}</code> · <a href="/leads?workspace=${encodeURIComponent(entity.workspace)}">all leads</a></p>
<dl class="facts">
${fact('Tier', text(view.tier))}${fact('Route', text(view.route))}${fact('Since', text(view.since))}
${fact('Score', figure('score:total', view.score.total))}${fact('Engagement', figure('score:engagement', view.score.engagement))}${fact('Fit', figure('score:fit', view.score.fit))}
${fact('First seen', text(view.firstSeen))}${fact('Last seen', text(view.lastSeen))}
${view.mergedInto !== null ? fact('Merged into', `<a href="${esc(leadPath({ workspace: entity.workspace, type: 'user', id: view.mergedInto }))}">user <code>${esc(view.mergedInto)}</code></a>`) : ''}${view.cooldownUntil ? fact('Cooldown until', text(view.cooldownUntil)) : ''}${view.qualification ? fact('Last qualified', `${esc(view.qualification.at)} (${esc(view.qualification.tier)})`) : ''}${view.conversion ? fact('Converted', `${esc(view.conversion.at)}${view.conversion.tier ? ` (${esc(view.conversion.tier)})` : ''}`) : ''}
</dl>`,
    section('scores', 'Score over time', view.scores.length === 0 ? '<p class="empty">The score has stayed 0 (or was last saved before scores were kept).</p>' : `${scoreChart(view.scores, view.evaluatedAt)}
${table('score-table', 'Each change of the score, oldest first', ['At', 'Total', 'Engagement', 'Fit'], view.scores.map((point, index) => `<tr><th scope="row">${esc(point.at)}</th>${(['total', 'engagement', 'fit'] as const).map((part) => `<td class="num">${figure(`scores:${index}:${part}`, point[part])}</td>`).join('')}</tr>`))}`),
    section('signals', 'Matched signals', view.signals.length === 0 ? '<p class="empty">None.</p>' : table('signal-table', 'Signals that matched at the last evaluation', ['Signal', 'Value', 'Points'], view.signals.map((signal) => `<tr><th scope="row">${esc(signal.name)}</th><td><code>${esc(signal.value === null ? '—' : String(signal.value))}</code></td><td class="num">${figure(`signal:${signal.name}:points`, signal.points)}</td></tr>`))),
    section('transitions', 'Transitions', view.transitions.length === 0 ? '<p class="empty">None.</p>' : `<ol class="transitions">${view.transitions.map((entry) => `<li><strong>${text(entry.previousTier ?? 'none')} → ${text(entry.tier ?? 'none')}</strong> <span class="sub">${esc(entry.at)}</span><ul>${entry.reasons.map((reason) => `<li>${esc(reason)}</li>`).join('')}</ul></li>`).join('')}</ol>`),
    section('events', 'Last events', entity.type === 'account' ? '<p class="empty">An account has no events of its own: its members\' pages list theirs.</p>' : view.lastEvents.length === 0 ? '<p class="empty">None stored.</p>' : table('event-table', `The latest ${view.lastEvents.length}, newest first (names and times only)`, ['At', 'Event'], view.lastEvents.map((event) => `<tr><th scope="row">${esc(event.at)}</th><td>${esc(event.name)}</td></tr>`))),
    entity.type === 'account'
      ? section('members', 'Members', view.members.length === 0 ? '<p class="empty">None.</p>' : table('member-table', 'Its users and their tiers', ['User', 'Tier'], tiered(view.members, 'user')))
      : section('accounts', 'Accounts', view.accounts.length === 0 ? '<p class="empty">None.</p>' : table('account-table', 'The accounts it belongs to and their tiers', ['Account', 'Tier'], tiered(view.accounts, 'account'))),
    section('deliveries', 'Deliveries', view.deliveries.length === 0 ? '<p class="empty">None in the delivery log.</p>' : table('delivery-table', 'Attempts in the delivery log, newest first', ['At', 'Destination', 'Event', 'Attempt', 'Outcome', 'HTTP'], view.deliveries.map((entry) => `<tr><th scope="row">${esc(entry.at)}</th><td>${esc(entry.destination)}</td><td>${esc(entry.detailType)}</td><td class="num">${entry.attempt}</td><td>${esc(entry.outcome)}</td><td class="num">${entry.status ?? '—'}</td></tr>`))),
    section('traits', 'Traits', `<pre>${esc(JSON.stringify(view.traits, null, 2))}</pre>`),
    ...(feedback ? [section('feedback', 'Sales feedback', feedbackForm(entity, feedback.reasons))] : []),
  ];
  return page(`${entity.type} ${entity.id}: ${view.tier ?? 'no tier'}`, sections.join('\n'));
}

function feedbackForm(entity: { workspace: string; type: string; id: string }, reasons: readonly string[]): string {
  const action = `/leads/${encodeURIComponent(entity.type)}/${encodeURIComponent(entity.id)}/feedback?workspace=${encodeURIComponent(entity.workspace)}`;
  return `<form method="post" action="${esc(action)}">
<label>outcome <select name="outcome"><option value="done">done (we are on it)</option><option value="disqualified">disqualified</option></select></label>
<label>reason <select name="reason"><option value="">none (policy.cooldown)</option>${reasons.map((reason) => `<option value="${esc(reason)}">${esc(reason)}</option>`).join('')}</select></label>
<button type="submit">Give feedback</button>
</form>
<p class="sub">Takes the lead out of its tier for the reason's hold at the evaluator's next run; it is not notified again meanwhile.</p>`;
}

/** A filter form's workspace, which only the page's address carries: without it, submitting the form drops it. */
const workspaceField = (workspace: string | undefined) => (workspace !== undefined ? `<input type="hidden" name="workspace" value="${esc(workspace)}">` : '');

/** A short page after a form was handled: what happened, and the way back. */
export function renderMessageHtml(title: string, message: string, back: string): string {
  return page(title, `<h1>${esc(title)}</h1><p id="message">${esc(message)}</p><p><a href="${esc(back)}">Back</a></p>`);
}

/**
 * Rule health (`pql-radar health`): each tier's row, its figures hooked as on the lead pages, and the warnings; of
 * `workspace` when the page was asked for one, which its form and its link to the list keep.
 */
export function renderHealthHtml(report: HealthReport, workspace: string | undefined): string {
  const rows = report.tiers.map((tier) => {
    const key = `health:${tier.tier}`;
    return `<tr><th scope="row">${esc(tier.tier)}</th><td>${esc(tier.level)}</td>
<td class="num">${outcomeFigures(`${key}:qualified`, tier.qualified)}</td>
<td class="num">${outcomeFigures(`${key}:notQualified`, tier.notQualified)}</td>
<td class="num">${liftFigure(`${key}:lift`, tier.lift)}</td>
<td class="num">${figure(`${key}:alertsPerWeek`, tier.alertsPerWeek, tier.alertsPerWeek.toFixed(1))}</td>
<td class="num">${figure(`${key}:medianDaysToConversion`, tier.medianDaysToConversion, tier.medianDaysToConversion?.toFixed(1))}</td>
<td>${esc(feedbackText(tier.feedback) || '—')}</td>${report.promised ? promisedCells(key, tier.promised && { outcome: tier.promised.qualified, lift: tier.promised.lift }) : ''}</tr>`;
  });
  const signalRows = report.signals.map((signal) => {
    const key = `health:signal:${signal.signal}`;
    return `<tr><th scope="row">${esc(signal.signal)}</th><td>${esc(signal.level)}</td>
<td class="num">${figure(`${key}:fireRate`, signal.fireRate, percentCoarse(signal.fireRate))}</td>
<td class="num">${outcomeFigures(`${key}:fired`, signal.fired)}</td>
<td class="num">${outcomeFigures(`${key}:notFired`, signal.notFired)}</td>
<td class="num">${liftFigure(`${key}:lift`, signal.lift)}</td>${report.promised ? promisedCells(key, signal.promised && { outcome: signal.promised.fired, lift: signal.promised.lift }) : ''}</tr>`;
  });
  const promisedHeaders = report.promised ? ['Backtest: converted', 'Backtest lift'] : [];
  const promised = report.promised
    ? `<p id="promised">Beside the live figures: the backtest of rules version ${esc(report.promised.rules.version)} (${esc(report.promised.period.from)} to ${esc(report.promised.period.to)}, conversions within ${report.promised.period.horizonDays} days of qualifying).</p>`
    : '';
  const warnings = report.warnings.length > 0 ? section('warnings', 'Warnings', `<ul>${report.warnings.map((warning) => `<li>${esc(warning)}</li>`).join('')}</ul>`) : '';
  return page(
    'Rule health',
    `<h1>Rule health</h1>
<p>The last ${periodText(report.period.days)} (${esc(report.period.from.slice(0, 10))} to ${esc(report.period.to.slice(0, 10))}): ${report.entities.user} users and ${report.entities.account} accounts evaluated. Qualified = entered the tier in the period before converting; non-leads = entered no tier; converted = by now; leads given feedback = each lead given sales feedback in the period once, by the latest outcome and reason given.</p>
<form method="get" action="/leads/health" class="filters">${workspaceField(workspace)}<label>since <input name="since" value="${report.period.days}d" size="6"></label> <button type="submit">Show</button></form>
${promised}
${rows.length === 0 ? '<p class="empty">No entity entered a tier in the period.</p>' : table('health', 'Each tier against the non-leads of its level', ['Tier', 'Level', 'Leads converted', 'Non-leads converted', 'Lift (95% CI)', 'Alerts/week', 'Median days to convert', 'Leads given feedback', ...promisedHeaders], rows)}
${signalRows.length === 0 ? '' : table('health-signals', 'Each signal: the entities it fired for against the rest of their level', ['Signal', 'Level', 'Fired for', 'Fired: converted', 'Not fired: converted', 'Lift (95% CI)', ...promisedHeaders], signalRows)}
${warnings}
<p><a href="/leads${workspace !== undefined ? `?workspace=${encodeURIComponent(workspace)}` : ''}">All leads</a></p>`,
  );
}

/** A recorded backtest's rate and lift beside the live ones; dashes where it has no such tier or signal. */
function promisedCells(key: string, promised: { outcome: Outcome; lift: Estimate | null } | null): string {
  if (!promised) return '<td class="num">—</td><td class="num">—</td>';
  return `<td class="num">${outcomeFigures(`${key}:promised`, promised.outcome)}</td>
<td class="num">${liftFigure(`${key}:promised:lift`, promised.lift)}</td>`;
}

/** A figure of the JSON on the page, hooked by its key; shown as `text` (default: the number), a dash for none. */
function figure(key: string, value: number | null, text = value === null ? undefined : String(value)): string {
  return `<span ${metricHook(key, value)}>${esc(text ?? '—')}</span>`;
}

/** `converted / entities` of a group, each hooked as `<key>:converted` and `<key>:entities`. */
const outcomeFigures = (key: string, outcome: Outcome) => `${figure(`${key}:converted`, outcome.converted)} / ${figure(`${key}:entities`, outcome.entities)}`;

/** A lift with its interval, hooked by its value as `<key>:value`. */
const liftFigure = (key: string, lift: Estimate | null) => figure(`${key}:value`, lift?.value ?? null, lift ? liftText(lift) : undefined);

/** A refusal or failure, titled by its HTTP status (Bad Request, Forbidden, Not Found, ...). */
export function renderErrorHtml(status: number, message: string): string {
  const title = STATUS_CODES[status] ?? `HTTP ${status}`;
  return page(title, `<h1>${esc(title)}</h1><p id="problem">${esc(message)}</p><p><a href="/leads">All leads</a></p>`);
}

/** The path of a lead's page; ids may hold any character. */
export function leadPath(lead: { workspace: string; type: string; id: string }): string {
  return `/leads/${encodeURIComponent(lead.type)}/${encodeURIComponent(lead.id)}?workspace=${encodeURIComponent(lead.workspace)}`;
}

/** Coordinates rounded to 0.01 to keep the page small. */
const r = (n: number) => String(Math.round(n * 100) / 100);

/**
 * The total score as a step line (a score holds until its next change, up to the last evaluation), a dot per change.
 * The table under it holds every figure; the chart is its picture.
 */
function scoreChart(points: readonly ScorePoint[], until: string): string {
  const width = 760;
  const height = 260;
  const left = 48;
  const right = 16;
  const top = 16;
  const bottom = 40;
  const times = points.map((point) => Date.parse(point.at));
  const start = times[0]!;
  const end = Math.max(Date.parse(until), times.at(-1)!, start + 1);
  const low = Math.min(0, ...points.map((point) => point.total));
  const high = Math.max(1, ...points.map((point) => point.total));
  const x = (time: number) => left + ((time - start) / (end - start)) * (width - left - right);
  const y = (value: number) => top + ((high - value) / (high - low)) * (height - top - bottom);
  let path = '';
  points.forEach((point, index) => {
    const next = index + 1 < points.length ? times[index + 1]! : end;
    path += `${index === 0 ? 'M' : 'L'}${r(x(times[index]!))} ${r(y(point.total))} L${r(x(next))} ${r(y(point.total))} `;
  });
  const dots = points.map(
    (point, index) =>
      `<circle cx="${r(x(times[index]!))}" cy="${r(y(point.total))}" r="4" data-metric="scores:${index}:total" data-value="${point.total}"><title>${esc(`${point.at}: ${point.total} (engagement ${point.engagement}, fit ${point.fit})`)}</title></circle>`,
  );
  const axis = [high, low === 0 ? 0 : low, ...(low < 0 ? [0] : [])].map(
    (value) => `<line class="grid" x1="${left}" x2="${width - right}" y1="${r(y(value))}" y2="${r(y(value))}"/><text class="tick" x="${left - 6}" y="${r(y(value) + 4)}" text-anchor="end">${value}</text>`,
  );
  return `<figure><svg id="chart-score" class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-labelledby="chart-score-title" xmlns="http://www.w3.org/2000/svg">
<title id="chart-score-title">Total score from ${esc(points[0]!.at)} to ${esc(until)}</title>
${axis.join('\n')}
<path class="score" d="${path.trim()}"/>
${dots.join('\n')}
<text class="tick" x="${left}" y="${height - 14}">${esc(points[0]!.at.slice(0, 10))}</text>
<text class="tick" x="${width - right}" y="${height - 14}" text-anchor="end">${esc(until.slice(0, 10))}</text>
</svg><figcaption>Total score at each change, held until the next; the table below has every figure.</figcaption></figure>`;
}

function table(id: string, caption: string, headers: string[], rows: readonly string[]): string {
  return `<div class="table-wrap"><table id="${esc(id)}"><caption>${esc(caption)}</caption><thead><tr>${headers.map((header) => `<th scope="col">${esc(header)}</th>`).join('')}</tr></thead><tbody>${rows.join('\n')}</tbody></table></div>`;
}

function section(id: string, title: string, body: string): string {
  return `<section id="${esc(id)}"><h2>${esc(title)}</h2>${body}</section>`;
}

function page(title: string, body: string): string {
  return htmlDocument({ title, csp: leadPagesCsp, head: '<link rel="icon" href="data:,">', css, body });
}

const css = `
:root { --ink: #1d2330; --muted: #5b6475; --line: #d9dee7; --panel: #f5f7fa; --accent: #0072B2; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
a { color: var(--accent); }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.92em; }
pre { background: var(--panel); padding: 10px; border-radius: 6px; overflow-x: auto; }
.sub { color: var(--muted); }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: 8px; margin: 12px 0 0; }
.facts div { background: var(--panel); border-radius: 6px; padding: 8px 10px; }
.facts dt { color: var(--muted); font-size: 12px; }
.facts dd { margin: 2px 0 0; font-weight: 600; word-break: break-all; }
.filters { display: flex; gap: 12px; align-items: center; margin: 12px 0; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
caption { text-align: left; color: var(--muted); padding: 0 0 6px; }
th, td { padding: 5px 7px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { background: var(--panel); font-size: 12.5px; }
tbody th { font-weight: 400; }
td.num { text-align: right; }
.transitions li { margin: 6px 0; }
figure { margin: 8px 0; max-width: 100%; }
figcaption { color: var(--muted); font-size: 12.5px; }
svg.chart { max-width: 100%; height: auto; }
svg.chart .grid { stroke: #e6e9ef; }
svg.chart .tick { fill: var(--muted); font-size: 11px; }
svg.chart .score { fill: none; stroke: var(--accent); stroke-width: 2; }
svg.chart circle { fill: var(--accent); }
.empty { color: var(--muted); font-style: italic; }
`;
