import type { BacktestReport, Outcome, SignalReport, ThresholdPoint, TierReport } from './report';
import type { Estimate } from './stats';
import { count, days, decimals, percentFine, score, times, type Format } from './format';
import { noLiftReason, shortLastStep } from './metrics';

/**
 * The backtest's `--report`: one self-contained HTML file that opens without a network (inline CSS, inline SVG
 * charts drawn here, no script, no font, no image to fetch; its Content-Security-Policy forbids them all).
 *
 * Every figure that is also in `--json` carries a machine-readable hook on the element that shows it:
 * `data-metric` names the figure and `data-value` holds the exact JSON number (`null` where the JSON has null), while
 * the text shown may round. A figure's name is its path in the report, array items named by their key and steps
 * joined by `:`:
 *
 *   input:eventsRead, input:entities:user, period:horizonDays, …
 *   tier:<tier>:qualified:rate:low, tier:<tier>:lift:value, tier:<tier>:lift (when lift is null), tier:<tier>:f1, …
 *   signal:<signal>:fired:entities, signal:<signal>:lift:high, signal:<signal>:fireRate, …
 *   threshold:<minScore>:qualified, threshold:<minScore>:precision, …
 *   weekly:<week>:qualified:<tier>
 *
 * A figure may show in several places (a table cell and a chart mark); each carries the same hook.
 */
export function renderReportHtml(report: BacktestReport): string {
  const { rules, period } = report;
  const title = `PQL backtest: ${rules.source}, ${period.from} to ${period.to}`;
  return htmlDocument({
    title,
    csp: "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    head: '<meta name="generator" content="pql-radar backtest">',
    css,
    body: `${header(report)}
${warningsSection(report.warnings)}
${tiersSection(report)}
${thresholdsSection(report.thresholds)}
${weeklySection(report)}
${signalsSection(report.signals)}
${missedSection(report)}
${glossary(report)}`,
  });
}

/**
 * A self-contained page: everything inline and a Content-Security-Policy that lets nothing else load, so a page
 * showing data that came from clients cannot run or fetch anything. The backtest report and the lead pages share it.
 */
export function htmlDocument(page: { title: string; /** A constant of the code, written as is. */ csp: string; head?: string; css: string; body: string }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${page.csp}">
${page.head ?? ''}
<title>${esc(page.title)}</title>
<style>${page.css}</style>
</head>
<body>
<main>
${page.body}
</main>
</body>
</html>
`;
}

// ---------------------------------------------------------------------------------------------------------------
// Escaping and hooks (the number formats are format.ts's)

/** Escapes text for HTML content and for attribute values (both quote kinds). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
const esc = escapeHtml;

/** The exact JSON number: what JSON.stringify writes for it (null for null and non-finite numbers). */
function rawValue(value: number | null): string {
  return value !== null && Number.isFinite(value) ? String(value) : 'null';
}

/** The attributes that tie an element to a figure of the JSON (the lead pages' too). */
export function metricHook(key: string, value: number | null): string {
  return `data-metric="${esc(key)}" data-value="${rawValue(value)}"`;
}

const dash = '—';

function show(key: string, value: number | null, format: Format, tag = 'span', attrs = ''): string {
  const text = value === null || !Number.isFinite(value) ? dash : format(value);
  return `<${tag} ${metricHook(key, value)}${attrs ? ` ${attrs}` : ''}>${esc(text)}</${tag}>`;
}

/** A figure with its 95% interval; every number its own hooked span. */
function showWithInterval(key: string, estimate: Estimate | null, format: Format): string {
  if (estimate === null) return show(key, null, format);
  return (
    `${show(`${key}:value`, estimate.value, format)}<span class="ci"> (${show(`${key}:low`, estimate.low, format)}` +
    `–${show(`${key}:high`, estimate.high, format)})</span>`
  );
}

type Verdict = { kind: 'up' | 'down' | 'unclear' | 'none'; text: string };

/** What the lift's interval says: above 1, below 1, or no evidence either way; without a lift, why (noLiftReason). */
function verdict(estimate: Estimate | null, noLift: string): Verdict {
  if (estimate === null) return { kind: 'none', text: `no lift (${noLift})` };
  if (estimate.low > 1) return { kind: 'up', text: 'predicts conversion' };
  if (estimate.high < 1) return { kind: 'down', text: 'predicts non-conversion' };
  return { kind: 'unclear', text: 'not shown: interval includes 1' };
}

function verdictBadge(estimate: Estimate | null, noLift: string): string {
  const v = verdict(estimate, noLift);
  return `<span class="verdict ${v.kind}">${esc(v.text)}</span>`;
}

// ---------------------------------------------------------------------------------------------------------------
// Sections

function header(report: BacktestReport): string {
  const { rules, period, input } = report;
  const fact = (label: string, value: string) => `<div><dt>${esc(label)}</dt><dd>${value}</dd></div>`;
  const dayWord = (key: string, n: number) => `${show(key, n, count)} ${n === 1 ? 'day' : 'days'}`;
  const lastStep = shortLastStep(period);
  return `<header>
<h1>PQL backtest of <code>${esc(rules.source)}</code></h1>
<p class="sub">Rules version <code>${esc(rules.version)}</code> · generated ${esc(report.generatedAt)}</p>
<dl class="facts">
${fact('Period', `${esc(period.from)} → ${esc(period.to)}`)}
${fact('Step', `${dayWord('period:stepDays', period.stepDays)}${lastStep === null ? '' : esc(` (the last ${lastStep} ${lastStep === 1 ? 'day' : 'days'})`)}`)}
${fact('Conversion horizon', dayWord('period:horizonDays', period.horizonDays))}
${fact('Events read', show('input:eventsRead', input.eventsRead, count))}
${fact('Lines skipped', show('input:linesSkipped', input.linesSkipped, count))}
${fact('Users', show('input:entities:user', input.entities.user, count))}
${fact('Accounts', show('input:entities:account', input.entities.account, count))}
${fact('Identifiers merged into users', show('input:mergedIdentifiers', input.mergedIdentifiers, count))}
${fact('Anonymous visitors left out', show('input:anonymousLeftOut', input.anonymousLeftOut, count))}
${fact('Received a day or more late', `${show('input:lateEvents', input.lateEvents, count)}${input.lateEvents > 0 ? esc(input.asReceived ? ' (counted from when received)' : ' (counted from their own time)') : ''}`)}
${fact('Conversions', show('input:conversions', input.conversions, count))}
${fact('Conversions from', esc(input.conversionsFrom))}
</dl>
</header>`;
}

function warningsSection(warnings: string[]): string {
  if (warnings.length === 0) {
    return `<section class="warnings none" aria-labelledby="warnings-h"><h2 id="warnings-h">No warnings</h2></section>`;
  }
  const items = warnings.map((w) => `<li>${esc(w)}</li>`).join('\n');
  return `<section class="warnings" role="note" aria-labelledby="warnings-h">
<h2 id="warnings-h"><span aria-hidden="true">⚠</span> ${warnings.length} ${warnings.length === 1 ? 'warning' : 'warnings'}: read these before trusting the figures</h2>
<ul>
${items}
</ul>
</section>`;
}

function outcomeCells(key: string, outcome: Outcome): string {
  return (
    `<td class="num">${show(`${key}:entities`, outcome.entities, count)}</td>` +
    `<td class="num">${show(`${key}:converted`, outcome.converted, count)}</td>` +
    `<td class="num">${showWithInterval(`${key}:rate`, outcome.rate, percentFine)}</td>`
  );
}

/** The header cells over outcomeCells. */
const outcomeHeaders = '<th scope="col">Entities</th><th scope="col">Converted</th><th scope="col">Conversion rate (95% CI)</th>';

/** A tier's or a signal's lift with its verdict, precision and recall; `noLift` says why it has none. */
function liftCells(key: string, figures: Pick<TierReport, 'lift' | 'precision' | 'recall'>, noLift: string): string {
  return (
    `<td class="num">${showWithInterval(`${key}:lift`, figures.lift, times)}<div>${verdictBadge(figures.lift, noLift)}</div></td>\n` +
    `<td class="num">${show(`${key}:precision`, figures.precision, percentFine)}</td>\n` +
    `<td class="num">${show(`${key}:recall`, figures.recall, percentFine)}</td>`
  );
}

function tiersSection(report: BacktestReport): string {
  const { tiers } = report;
  if (tiers.length === 0) return section('tiers', 'Tiers', '<p class="empty">The rules have no tiers.</p>');
  const noLift = (t: TierReport) => noLiftReason('tier', t.qualified, t.notQualified);
  const rows = tiers.map((t) => {
    const k = `tier:${t.tier}`;
    return `<tr>
<th scope="row">${esc(t.tier)}<span class="meta">route ${esc(t.route)} · ${esc(t.level)}</span></th>
${outcomeCells(`${k}:qualified`, t.qualified)}
${outcomeCells(`${k}:notQualified`, t.notQualified)}
${liftCells(k, t, noLift(t))}
<td class="num">${show(`${k}:f1`, t.f1, decimals(3))}</td>
<td class="num">${show(`${k}:alertsPerWeek`, t.alertsPerWeek, decimals(1))}</td>
<td class="num">${show(`${k}:medianDaysToConversion`, t.medianDaysToConversion, days)}</td>
</tr>`;
  });
  const table = dataTable(
    'table-wrap',
    `Per tier: who it qualified and how they converted within the ${esc(String(report.period.horizonDays))}-day horizon, against the non-leads (entities no tier qualified before they converted)`,
    `
<tr><th scope="col" rowspan="2">Tier</th>
<th scope="colgroup" colspan="3">Qualified</th><th scope="colgroup" colspan="3">Non-leads</th>
<th scope="col" rowspan="2">Lift (95% CI)</th>
<th scope="col" rowspan="2">Precision</th><th scope="col" rowspan="2">Recall</th><th scope="col" rowspan="2">F1</th>
<th scope="col" rowspan="2">Alerts / week</th><th scope="col" rowspan="2">Median days to conversion</th></tr>
<tr>${outcomeHeaders}
${outcomeHeaders}</tr>
`,
    rows,
  );
  const chart = liftChart(
    'chart-tier-lift',
    'Lift per tier, with 95% intervals',
    'For each tier, the conversion rate of the entities it qualified divided by that of the non-leads: a dot at the lift, a whisker across its 95% interval, on a log scale, with a dashed reference line at 1 (no better than the non-leads).',
    tiers.map((t) => ({ label: t.tier, key: `tier:${t.tier}:lift`, estimate: t.lift, noLift: noLift(t) })),
  );
  return section('tiers', 'Tiers', `${table}\n<h3>Lift per tier</h3>\n${chart}`);
}

function thresholdsSection(points: ThresholdPoint[]): string {
  if (points.length === 0) return section('thresholds', 'Precision and recall by minimum score', '<p class="empty">No thresholds in this report.</p>');
  const rows = points.map((p) => {
    const k = thresholdKey(p);
    return `<tr><th scope="row">${show(`${k}:minScore`, p.minScore, score)}</th><td class="num">${show(`${k}:qualified`, p.qualified, count)}</td><td class="num">${show(`${k}:precision`, p.precision, percentFine)}</td><td class="num">${show(`${k}:recall`, p.recall, percentFine)}</td></tr>`;
  });
  const table = dataTable(
    'table-wrap narrow',
    "Users qualified, precision and recall if the minimum score were each value (tiers' required signals ignored)",
    '<tr><th scope="col">Minimum score</th><th scope="col">Qualified</th><th scope="col">Precision</th><th scope="col">Recall</th></tr>',
    rows,
  );
  return section('thresholds', 'Precision and recall by minimum score', `<div class="side">${thresholdChart(points)}\n${table}</div>`);
}

function weeklySection(report: BacktestReport): string {
  const { weekly } = report;
  const title = 'Qualified per week';
  if (weekly.length === 0) return section('weekly', title, '<p class="empty">No weeks in this report.</p>');
  const names = tierNames(report);
  const rows = weekly.map(
    (w) =>
      `<tr><th scope="row">${esc(w.week)}</th>${names
        .map((name) => `<td class="num">${name in w.qualified ? show(`weekly:${w.week}:qualified:${name}`, w.qualified[name]!, count) : dash}</td>`)
        .join('')}</tr>`,
  );
  const table = `<details><summary>The figures as a table</summary>${dataTable(
    'table-wrap narrow',
    'Entities entering each tier, per ISO week (starting Monday)',
    `<tr><th scope="col">Week of</th>${names.map((n) => `<th scope="col">${esc(n)}</th>`).join('')}</tr>`,
    rows,
  )}</details>`;
  return section('weekly', title, `${weeklyChart(report, names)}\n${table}`);
}

function signalsSection(signals: SignalReport[]): string {
  if (signals.length === 0) return section('signals', 'Signals', '<p class="empty">The rules have no signals.</p>');
  const noLift = (s: SignalReport) => noLiftReason('signal', s.fired, s.notFired);
  const rows = signals.map((s) => {
    const k = `signal:${s.signal}`;
    return `<tr>
<th scope="row"><code>${esc(s.signal)}</code></th><td>${esc(s.level)}</td>
${outcomeCells(`${k}:fired`, s.fired)}
<td class="num">${show(`${k}:fireRate`, s.fireRate, percentFine)}</td>
${outcomeCells(`${k}:notFired`, s.notFired)}
${liftCells(k, s, noLift(s))}
</tr>`;
  });
  const table = dataTable(
    'table-wrap',
    'Per signal: the entities it fired for at some step, against those it never fired for',
    `
<tr><th scope="col" rowspan="2">Signal</th><th scope="col" rowspan="2">Level</th>
<th scope="colgroup" colspan="4">Fired</th><th scope="colgroup" colspan="3">Never fired</th>
<th scope="col" rowspan="2">Lift (95% CI)</th>
<th scope="col" rowspan="2">Precision</th><th scope="col" rowspan="2">Recall</th></tr>
<tr>${outcomeHeaders}<th scope="col">Fire rate</th>
${outcomeHeaders}</tr>
`,
    rows,
  );
  const chart = liftChart(
    'chart-signal-lift',
    'Lift per signal, with 95% intervals',
    'For each signal, the conversion rate of the entities it fired for divided by that of those it never fired for, with its 95% interval, on a log scale, with a dashed reference line at 1.',
    signals.map((s) => ({ label: s.signal, key: `signal:${s.signal}:lift`, estimate: s.lift, noLift: noLift(s) })),
  );
  return section('signals', 'Signals', `${table}\n<h3>Lift per signal</h3>\n${chart}`);
}

function missedSection(report: BacktestReport): string {
  const missed = report.missedConverters;
  const title = 'Converters the rules missed';
  if (missed.length === 0) return section('missed', title, '<p class="empty">None: every converter was qualified before converting.</p>');
  const rows = missed.map(
    (m) => `<tr><td>${esc(m.type)}</td><td class="id"><code>${esc(m.id)}</code></td><td>${esc(m.convertedAt)}</td></tr>`,
  );
  const all = show('missedConverterCount', report.missedConverterCount, count);
  const note = report.missedConverterCount > missed.length ? `The first ${missed.length} of ${all}.` : `${all} in all.`;
  return section(
    'missed',
    title,
    `<p>Entities that converted without any tier having qualified them first. ${note}</p>
${dataTable(
      'table-wrap narrow',
      'Converters never qualified before they converted',
      '<tr><th scope="col">Type</th><th scope="col">Id</th><th scope="col">Converted at</th></tr>',
      rows,
    )}`,
  );
}

function glossary(report: BacktestReport): string {
  return `<footer>
<h2>How to read this</h2>
<dl>
<dt>Lift</dt><dd>The conversion rate of those a tier qualified divided by that of the non-leads (those no tier qualified before they converted), or of those a signal fired for divided by that of those it never fired for. Above 1 it predicts conversion; when its 95% interval includes 1 the data cannot tell it from chance. There is none when a group is empty or nobody in either converted.</dd>
<dt>Precision</dt><dd>Of those qualified, the share that converted within ${esc(String(report.period.horizonDays))} days.</dd>
<dt>Recall</dt><dd>Of all who converted, the share qualified before they did.</dd>
<dt>95% CI</dt><dd>Wilson intervals for rates; the log-method interval for lift. Samples under 30 are flagged in the warnings.</dd>
</dl>
<p>Each qualification is judged at every ${esc(String(report.period.stepDays))}-day step using only the events before it, with the evaluator's own engine.</p>
</footer>`;
}

/** A table of figures; `caption` and `head` are HTML already. */
function dataTable(wrapClass: 'table-wrap' | 'table-wrap narrow', caption: string, head: string, rows: readonly string[]): string {
  return `<div class="${wrapClass}"><table>
<caption>${caption}</caption>
<thead>${head}</thead>
<tbody>
${rows.join('\n')}
</tbody>
</table></div>`;
}

function section(id: string, title: string, body: string): string {
  return `<section id="${esc(id)}" aria-labelledby="${esc(id)}-h">
<h2 id="${esc(id)}-h">${esc(title)}</h2>
${body}
</section>`;
}

/** Thresholds are named by their minimum score, written as in the JSON. */
function thresholdKey(point: ThresholdPoint): string {
  return `threshold:${rawValue(point.minScore)}`;
}

/** The tiers in the report's order, then any that only the weekly figures name. */
function tierNames(report: BacktestReport): string[] {
  const names = report.tiers.map((t) => t.tier);
  for (const w of report.weekly) for (const name of Object.keys(w.qualified)) if (!names.includes(name)) names.push(name);
  return names;
}

// ---------------------------------------------------------------------------------------------------------------
// Charts: plain SVG, drawn here

/** Okabe–Ito: distinguishable with the common colour-vision deficiencies. */
const palette = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];

/** Coordinates rounded to 0.01 to keep the file small. */
const r = (n: number) => String(Math.round(n * 100) / 100);

function svgOpen(id: string, width: number, height: number, title: string, desc: string): string {
  return `<svg id="${esc(id)}" class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-labelledby="${esc(id)}-title ${esc(id)}-desc" xmlns="http://www.w3.org/2000/svg">
<title id="${esc(id)}-title">${esc(title)}</title>
<desc id="${esc(id)}-desc">${esc(desc)}</desc>`;
}

function figure(svg: string, caption: string): string {
  return `<figure>${svg}<figcaption>${esc(caption)}</figcaption></figure>`;
}

/** Tick values for a linear axis from 0: 1, 2 or 5 times a power of ten, about `count` of them. */
function linearTicks(max: number, count = 5): { top: number; ticks: number[] } {
  if (!(max > 0)) return { top: 1, ticks: [0, 1] };
  const rough = max / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const top = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(Math.round(v / power) * power);
  return { top, ticks };
}

interface LiftRow {
  label: string;
  key: string;
  estimate: Estimate | null;
  /** Why there is no lift, when there is none. */
  noLift: string;
}

/** Dot-and-whisker chart of lifts on a log-2 scale, with the reference line at 1. */
function liftChart(id: string, title: string, desc: string, rows: LiftRow[]): string {
  const width = 860;
  const left = 190;
  const right = 200;
  const top = 34;
  const rowHeight = 34;
  const height = top + rows.length * rowHeight + 54;
  const plotWidth = width - left - right;

  const positives = rows.flatMap((row) => (row.estimate ? [row.estimate.low, row.estimate.value, row.estimate.high] : [])).filter((v) => v > 0 && Number.isFinite(v));
  let lo = Math.floor(Math.log2(Math.min(1, ...positives) / 1.15));
  let hi = Math.ceil(Math.log2(Math.max(1, ...positives) * 1.15));
  if (hi - lo < 2) [lo, hi] = [lo - 1, hi + 1];
  const x = (v: number) => {
    if (!(v > 0)) return left; // a lift of 0 sits at the left edge
    const t = (Math.log2(v) - lo) / (hi - lo);
    return left + Math.min(1, Math.max(0, t)) * plotWidth;
  };
  const plotBottom = top + rows.length * rowHeight;
  const every = hi - lo > 8 ? 2 : 1;
  const ticks: string[] = [];
  for (let k = lo; k <= hi; k++) {
    if (k % every !== 0) continue; // keep 1× a labelled tick
    const v = 2 ** k;
    const label = v >= 1 ? String(v) : k >= -3 ? String(v) : `1/${2 ** -k}`;
    ticks.push(
      `<line class="grid" x1="${r(x(v))}" x2="${r(x(v))}" y1="${top - 6}" y2="${plotBottom}"/>` +
        `<text class="tick" x="${r(x(v))}" y="${plotBottom + 16}" text-anchor="middle">${esc(label)}×</text>`,
    );
  }
  const marks = rows.map((row, i) => {
    const y = top + i * rowHeight + rowHeight / 2;
    const label = `<text class="label" x="${left - 10}" y="${r(y + 4)}" text-anchor="end">${esc(row.label)}</text>`;
    const e = row.estimate;
    if (e === null) {
      return `${label}<text class="na" x="${r(x(1) + 8)}" y="${r(y + 4)}">${show(row.key, null, times, 'tspan')} no lift (${esc(row.noLift)})</text>`;
    }
    const v = verdict(e, row.noLift);
    const tip = `${row.label}: lift ${times(e.value)} (95% CI ${times(e.low)}–${times(e.high)}), ${v.text}`;
    const cap = (key: string, value: number) =>
      `<line class="cap ${v.kind}" x1="${r(x(value))}" x2="${r(x(value))}" y1="${r(y - 7)}" y2="${r(y + 7)}" ${metricHook(key, value)}><title>${esc(tip)}</title></line>`;
    return `<g class="row">${label}
<line class="whisker ${v.kind}" x1="${r(x(e.low))}" x2="${r(x(e.high))}" y1="${r(y)}" y2="${r(y)}"/>
${cap(`${row.key}:low`, e.low)}${cap(`${row.key}:high`, e.high)}
<circle class="dot ${v.kind}" cx="${r(x(e.value))}" cy="${r(y)}" r="6" ${metricHook(`${row.key}:value`, e.value)}><title>${esc(tip)}</title></circle>
<text class="value" x="${width - right + 12}" y="${r(y + 4)}">${show(`${row.key}:value`, e.value, times, 'tspan')}<tspan class="ci"> (${show(`${row.key}:low`, e.low, times, 'tspan')}–${show(`${row.key}:high`, e.high, times, 'tspan')})</tspan></text></g>`;
  });
  const ref = `<line class="ref" x1="${r(x(1))}" x2="${r(x(1))}" y1="${top - 14}" y2="${plotBottom}" data-reference="1"/>` +
    `<text class="ref-label" x="${r(x(1) + 4)}" y="${top - 18}">1× = no better than the comparison group</text>`;
  const axis = `<line class="axis" x1="${left}" x2="${left + plotWidth}" y1="${plotBottom}" y2="${plotBottom}"/>` +
    `<text class="axis-label" x="${left + plotWidth / 2}" y="${height - 10}" text-anchor="middle">Lift (log scale): conversion rate of the group ÷ that of its comparison group</text>`;
  const svg = `${svgOpen(id, width, height, title, desc)}
${ticks.join('\n')}
${ref}
${axis}
${marks.join('\n')}
</svg>`;
  return figure(svg, 'Filled dots: the 95% interval excludes 1. Hollow grey dots: it includes 1, so the data cannot tell the lift from chance.');
}

/** Precision and recall against the minimum score: two lines with markers. */
function thresholdChart(points: ThresholdPoint[]): string {
  const width = 620;
  const height = 360;
  const left = 64;
  const right = 20;
  const top = 56;
  const bottom = 56;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const scores = points.map((p) => p.minScore);
  let min = Math.min(...scores);
  let max = Math.max(...scores);
  if (min === max) [min, max] = [min - 1, max + 1];
  const x = (s: number) => left + ((s - min) / (max - min)) * plotWidth;
  const y = (v: number) => top + (1 - Math.min(1, Math.max(0, v))) * plotHeight;
  const grid = [0, 0.25, 0.5, 0.75, 1]
    .map(
      (v) =>
        `<line class="grid" x1="${left}" x2="${left + plotWidth}" y1="${r(y(v))}" y2="${r(y(v))}"/><text class="tick" x="${left - 8}" y="${r(y(v) + 4)}" text-anchor="end">${v * 100}%</text>`,
    )
    .join('\n');
  const step = Math.max(1, Math.ceil(points.length / 12));
  const xTicks = points
    .filter((_, i) => i % step === 0 || i === points.length - 1)
    .map((p) => `<text class="tick" x="${r(x(p.minScore))}" y="${top + plotHeight + 18}" text-anchor="middle">${esc(score(p.minScore))}</text>`)
    .join('');
  const series = (field: 'precision' | 'recall', colour: string, marker: 'circle' | 'square', dashed: boolean) => {
    const path = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${r(x(p.minScore))},${r(y(p[field]))}`).join(' ');
    const marks = points.map((p) => {
      const key = `${thresholdKey(p)}:${field}`;
      const tip = `<title>${esc(`Minimum score ${score(p.minScore)}: ${field} ${percentFine(p[field])} (${count(p.qualified)} qualified)`)}</title>`;
      const cx = x(p.minScore);
      const cy = y(p[field]);
      return marker === 'circle'
        ? `<circle cx="${r(cx)}" cy="${r(cy)}" r="4.5" fill="${colour}" ${metricHook(key, p[field])}>${tip}</circle>`
        : `<rect x="${r(cx - 4)}" y="${r(cy - 4)}" width="8" height="8" fill="${colour}" ${metricHook(key, p[field])}>${tip}</rect>`;
    });
    return `<g class="series ${field}"><path d="${path}" fill="none" stroke="${colour}" stroke-width="2.5"${dashed ? ' stroke-dasharray="7 4"' : ''}/>${marks.join('')}</g>`;
  };
  const legend = `<g class="legend">
<line x1="${left}" x2="${left + 26}" y1="18" y2="18" stroke="${palette[0]}" stroke-width="2.5"/><circle cx="${left + 13}" cy="18" r="4.5" fill="${palette[0]}"/><text x="${left + 32}" y="22">Precision: share of the qualified who converted</text>
<line x1="${left}" x2="${left + 26}" y1="36" y2="36" stroke="${palette[5]}" stroke-width="2.5" stroke-dasharray="7 4"/><rect x="${left + 9}" y="32" width="8" height="8" fill="${palette[5]}"/><text x="${left + 32}" y="40">Recall: share of all converters it qualified</text>
</g>`;
  const axes = `<line class="axis" x1="${left}" x2="${left}" y1="${top}" y2="${top + plotHeight}"/><line class="axis" x1="${left}" x2="${left + plotWidth}" y1="${top + plotHeight}" y2="${top + plotHeight}"/>
<text class="axis-label" x="${left + plotWidth / 2}" y="${height - 12}" text-anchor="middle">Minimum score</text>
<text class="axis-label" transform="translate(16 ${top + plotHeight / 2}) rotate(-90)" text-anchor="middle">Share of users</text>`;
  const svg = `${svgOpen(
    'chart-thresholds',
    width,
    height,
    'Precision and recall across minimum scores',
    'Two lines against the minimum score on the horizontal axis: precision (solid, circles) usually rises and recall (dashed, squares) falls as the minimum score goes up; the vertical axis is the share, 0 to 100%.',
  )}
${grid}
${xTicks}
${axes}
${legend}
${series('precision', palette[0]!, 'circle', false)}
${series('recall', palette[5]!, 'square', true)}
</svg>`;
  return figure(svg, 'A higher minimum score alerts fewer users: more of them convert (precision) but more converters are missed (recall).');
}

/** Entities entering each tier per week: grouped bars, one colour per tier. */
function weeklyChart(report: BacktestReport, names: string[]): string {
  const { weekly } = report;
  const width = 860;
  const height = 340;
  const left = 64;
  const right = 20;
  const top = 44;
  const bottom = 62;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const max = Math.max(0, ...weekly.flatMap((w) => Object.values(w.qualified).filter((v) => Number.isFinite(v))));
  const { top: yTop, ticks } = linearTicks(max);
  const y = (v: number) => top + (1 - v / yTop) * plotHeight;
  const groupWidth = plotWidth / weekly.length;
  const gap = Math.min(16, groupWidth * 0.2);
  const barWidth = (groupWidth - gap) / Math.max(1, names.length);
  const grid = ticks
    .map((t) => `<line class="grid" x1="${left}" x2="${left + plotWidth}" y1="${r(y(t))}" y2="${r(y(t))}"/><text class="tick" x="${left - 8}" y="${r(y(t) + 4)}" text-anchor="end">${esc(count(t))}</text>`)
    .join('\n');
  const labelEvery = Math.max(1, Math.ceil(weekly.length / 12));
  const bars = weekly.map((w, i) => {
    const x0 = left + i * groupWidth + gap / 2;
    const rects = names.flatMap((name, j) => {
      if (!(name in w.qualified)) return [];
      const v = w.qualified[name]!;
      const h = Math.max(0, (Number.isFinite(v) ? v : 0) / yTop) * plotHeight;
      return [
        `<rect x="${r(x0 + j * barWidth)}" y="${r(top + plotHeight - h)}" width="${r(Math.max(1, barWidth - 1))}" height="${r(h)}" fill="${palette[j % palette.length]}" ${metricHook(`weekly:${w.week}:qualified:${name}`, v)}><title>${esc(`Week of ${w.week}: ${count(v)} entered ${name}`)}</title></rect>`,
      ];
    });
    const label = i % labelEvery === 0 ? `<text class="tick" x="${r(x0 + (groupWidth - gap) / 2)}" y="${top + plotHeight + 18}" text-anchor="middle">${esc(w.week)}</text>` : '';
    return `<g class="week">${rects.join('')}${label}</g>`;
  });
  let lx = left;
  const legend = names.map((name, j) => {
    const item = `<rect x="${r(lx)}" y="12" width="12" height="12" fill="${palette[j % palette.length]}"/><text x="${r(lx + 18)}" y="22">${esc(name)}</text>`;
    lx += 36 + name.length * 7.5;
    return item;
  });
  const axes = `<line class="axis" x1="${left}" x2="${left}" y1="${top}" y2="${top + plotHeight}"/><line class="axis" x1="${left}" x2="${left + plotWidth}" y1="${top + plotHeight}" y2="${top + plotHeight}"/>
<text class="axis-label" x="${left + plotWidth / 2}" y="${height - 14}" text-anchor="middle">ISO week (starting Monday)</text>
<text class="axis-label" transform="translate(16 ${top + plotHeight / 2}) rotate(-90)" text-anchor="middle">Entities qualified</text>`;
  const svg = `${svgOpen(
    'chart-weekly',
    width,
    height,
    'Qualified leads per week, by tier',
    `Grouped bars: for each week from ${weekly[0]!.week} to ${weekly[weekly.length - 1]!.week}, the number of entities entering each tier (${names.join(', ')}).`,
  )}
${grid}
${axes}
<g class="legend">${legend.join('')}</g>
${bars.join('\n')}
</svg>`;
  return figure(svg, 'How many alerts each tier would have sent each week: the load on whoever the route reaches.');
}

// ---------------------------------------------------------------------------------------------------------------

const css = `
:root { --ink: #1d2330; --muted: #5b6475; --line: #d9dee7; --bg: #ffffff; --panel: #f5f7fa; --up: #0072B2; --down: #D55E00; --unclear: #8a93a3; --warn-bg: #fff4d6; --warn-line: #e0a100; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1320px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 22px 0 6px; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.92em; }
.sub { color: var(--muted); margin: 0 0 14px; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 8px; margin: 0; }
.facts div { background: var(--panel); border-radius: 6px; padding: 8px 10px; }
.facts dt { color: var(--muted); font-size: 12px; }
.facts dd { margin: 2px 0 0; font-weight: 600; font-variant-numeric: tabular-nums; }
.warnings { margin: 22px 0 0; background: var(--warn-bg); border: 1px solid var(--warn-line); border-left: 8px solid var(--warn-line); border-radius: 6px; padding: 4px 18px 10px; }
.warnings h2 { border: 0; margin: 10px 0 4px; font-size: 17px; }
.warnings li { margin: 3px 0; }
.warnings.none { background: #e8f6ee; border-color: #2f9e5b; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
.narrow table { width: auto; }
caption { text-align: left; color: var(--muted); padding: 0 0 6px; }
th, td { padding: 5px 7px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { background: var(--panel); font-weight: 600; font-size: 12.5px; vertical-align: bottom; }
th[scope="colgroup"] { text-align: center; border-bottom: 2px solid var(--line); }
tbody tr:nth-child(even) { background: #fafbfc; }
td.num { text-align: right; white-space: nowrap; }
.ci { color: var(--muted); font-size: 0.9em; }
th .meta { display: block; font-weight: 400; color: var(--muted); font-size: 12px; white-space: nowrap; }
td .verdict { margin-top: 3px; }
td.num .ci { display: block; }
td.id code { word-break: break-all; }
.verdict { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px; white-space: nowrap; }
.verdict.up { background: #dcecf7; color: #004f7c; }
.verdict.down { background: #fbe3d6; color: #8f3a00; }
.verdict.unclear, .verdict.none { background: #eceef2; color: #4a5263; }
.side { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
figure { margin: 8px 0; max-width: 100%; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 4px; }
svg.chart { max-width: 100%; height: auto; font-family: inherit; }
svg.chart text { fill: var(--ink); font-size: 12px; }
svg.chart .tick, svg.chart .ci { fill: var(--muted); font-size: 11px; }
svg.chart .axis-label { font-size: 12.5px; font-weight: 600; }
svg.chart .grid { stroke: #e6e9ef; stroke-width: 1; }
svg.chart .axis { stroke: #6b7385; stroke-width: 1; }
svg.chart .ref { stroke: #1d2330; stroke-width: 1.5; stroke-dasharray: 5 4; }
svg.chart .ref-label { font-size: 11px; fill: var(--muted); }
svg.chart .whisker, svg.chart .cap { stroke-width: 2; }
svg.chart .up { stroke: var(--up); fill: var(--up); }
svg.chart .down { stroke: var(--down); fill: var(--down); }
svg.chart .unclear { stroke: var(--unclear); }
svg.chart circle.unclear { fill: #fff; stroke-width: 2; }
svg.chart .na { fill: var(--muted); font-style: italic; }
details { margin: 6px 0; }
summary { cursor: pointer; color: var(--muted); }
footer { margin-top: 36px; color: var(--muted); }
footer dt { font-weight: 600; color: var(--ink); }
footer dd { margin: 0 0 8px 0; }
.empty { color: var(--muted); font-style: italic; }
@media print { main { max-width: none; padding: 0; } .warnings { break-inside: avoid; } figure { break-inside: avoid; } }
`;
