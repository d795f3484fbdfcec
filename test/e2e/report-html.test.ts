import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderReportHtml } from '../../functions/analysis/html';
import type { BacktestReport } from '../../functions/analysis/report';
import { chromiumLaunchOptions, ensureChromium } from '../support/chromium';
import { sampleReport, xssId } from '../support/sample-report';

/**
 * The backtest's HTML report, opened in real headless Chromium (Debian's, installed on first use by ensureChromium):
 * it renders, stays offline and silent, escapes what it shows, and every figure on it equals the one in the JSON.
 * Set PQL_RADAR_KEEP_ARTIFACTS=1 to keep the page and its screenshot in the temp dir.
 */

// Installing Chromium on a clean machine takes a minute or two; with it present the whole file takes seconds.
const setupTimeout = 10 * 60_000;

/** The report as `--json` prints it. */
const json = JSON.parse(JSON.stringify(sampleReport)) as BacktestReport;

let browser: Browser;
let dir: string;
let htmlPath: string;
let html: string;

beforeAll(async () => {
  const started = Date.now();
  const executablePath = await ensureChromium();
  const ready = Date.now();
  browser = await chromium.launch(chromiumLaunchOptions(executablePath));
  console.log(`chromium ready in ${ready - started} ms, launched in ${Date.now() - ready} ms`);
  dir = await mkdtemp(join(tmpdir(), 'pql-radar-report-'));
  html = renderReportHtml(json);
  htmlPath = join(dir, 'report.html');
  await writeFile(htmlPath, html);
  await writeFile(join(dir, 'report.json'), JSON.stringify(json, null, 2));
}, setupTimeout);

afterAll(async () => {
  await browser?.close();
  if (dir && !process.env.PQL_RADAR_KEEP_ARTIFACTS) await rm(dir, { recursive: true, force: true });
  else if (dir) console.log(`report artifacts kept in ${dir}`);
});

/** Every number in the JSON, by the name the page gives it (see html.ts); null where the JSON has null. */
function expectedMetrics(report: BacktestReport): Map<string, number | null> {
  const out = new Map<string, number | null>();
  const walk = (key: string, value: unknown) => {
    if (value === null || typeof value === 'number') {
      expect(out.has(key), `two figures named ${key}`).toBe(false);
      out.set(key, value);
    } else if (typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(`${key}:${k}`, v);
    }
  };
  walk('input', report.input);
  walk('period', report.period);
  for (const t of report.tiers) walk(`tier:${t.tier}`, t);
  for (const s of report.signals) walk(`signal:${s.signal}`, s);
  for (const p of report.thresholds) walk(`threshold:${p.minScore}`, p);
  for (const w of report.weekly) walk(`weekly:${w.week}`, { qualified: w.qualified });
  out.set('missedConverterCount', report.missedConverterCount);
  return out;
}

/** How many numbers (and nulls) the whole JSON holds, wherever they are: none may escape the walk above. */
function numbersIn(value: unknown): number {
  if (value === null || typeof value === 'number') return 1;
  if (typeof value === 'object') return Object.values(value).reduce<number>((n, v) => n + numbersIn(v), 0);
  return 0;
}

/** Whether the shown text is the exact value rounded to the digits it shows (percentages scaled by 100). */
function shownMatches(text: string, expected: number | null): boolean {
  if (expected === null) return text === '—';
  const match = /-?[\d,]*\.?\d+/.exec(text);
  if (!match) return false;
  const shown = Number(match[0].replace(/,/g, ''));
  const decimals = match[0].split('.')[1]?.length ?? 0;
  const scaled = text.includes('%') ? expected * 100 : expected;
  return Math.abs(shown - scaled) <= 0.5 * 10 ** -decimals + 1e-9;
}

interface Watch {
  consoleErrors: string[];
  consoleWarnings: string[];
  pageErrors: string[];
  requests: string[];
  dialogs: string[];
}

async function openWatched(): Promise<{ page: Page; watch: Watch }> {
  const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  const watch: Watch = { consoleErrors: [], consoleWarnings: [], pageErrors: [], requests: [], dialogs: [] };
  page.on('console', (message) => {
    if (message.type() === 'error') watch.consoleErrors.push(message.text());
    if (message.type() === 'warning') watch.consoleWarnings.push(message.text());
  });
  page.on('pageerror', (error) => watch.pageErrors.push(String(error)));
  page.on('request', (request) => watch.requests.push(request.url()));
  page.on('dialog', (dialog) => {
    watch.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss();
  });
  return { page, watch };
}

describe('the backtest HTML report', () => {
  it('is one self-contained file: nothing to fetch, no script', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|<object|@import|url\(|\bsrc=|\bhref=/i);
    // The only URL is the SVG namespace, which is a name, not a fetch.
    expect(html.match(/https?:\/\/[^"'\s<]*/g)?.filter((url) => url !== 'http://www.w3.org/2000/svg') ?? []).toEqual([]);
    expect(html).toContain("default-src 'none'");
    expect(html).not.toContain(xssId);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  it('is shown a report a backtest could write: the tiers of a level compared with one group, its non-leads', () => {
    for (const level of ['user', 'account'] as const) {
      const tiers = json.tiers.filter((tier) => tier.level === level);
      expect(new Set(tiers.map((tier) => JSON.stringify(tier.notQualified))).size, level).toBe(1);
      const leads = tiers.reduce((sum, tier) => sum + tier.qualified.entities, 0);
      expect(tiers[0]!.notQualified.entities + leads, level).toBe(json.input.entities[level]);
    }
  });

  it('renders in headless Chromium, offline and silent, with every JSON figure on the page', async () => {
    const { page, watch } = await openWatched();
    const url = pathToFileURL(htmlPath).href;
    try {
      await page.goto(url, { waitUntil: 'load' });

      // It renders: title, header, warnings, tables with headers, charts with marks.
      expect(await page.title()).toBe(`PQL backtest: ${json.rules.source}, ${json.period.from} to ${json.period.to}`);
      await expect(page.locator('h1').textContent()).resolves.toContain(json.rules.source);
      const warnings = page.locator('section.warnings li');
      expect(await warnings.allTextContents()).toEqual(json.warnings);
      expect(await page.locator('section.warnings').isVisible()).toBe(true);

      const tables = await page.$$eval('table', (all) =>
        all.map((t) => ({ caption: t.caption?.textContent ?? '', headers: t.querySelectorAll('th[scope]').length, rows: t.tBodies[0]?.rows.length ?? 0 })),
      );
      expect(tables.length).toBeGreaterThanOrEqual(5);
      for (const table of tables) {
        expect(table.caption).not.toBe('');
        expect(table.headers).toBeGreaterThan(0);
        expect(table.rows).toBeGreaterThan(0);
      }
      const tierRows = await page.locator('#tiers tbody th[scope="row"]').allTextContents();
      expect(tierRows).toEqual(json.tiers.map((t) => `${t.tier}route ${t.route} · ${t.level}`));
      const signalRows = await page.locator('#signals tbody th[scope="row"]').allTextContents();
      expect(signalRows).toEqual(json.signals.map((s) => s.signal));

      const charts = await page.$$eval('svg', (all) =>
        all.map((svg) => {
          const box = svg.getBoundingClientRect();
          return {
            id: svg.id,
            title: svg.querySelector(':scope > title')?.textContent ?? '',
            labelledBy: svg.getAttribute('aria-labelledby') ?? '',
            marks: svg.querySelectorAll('circle, rect[data-metric], path').length,
            width: box.width,
            height: box.height,
          };
        }),
      );
      const drawn = charts.filter((c) => c.marks > 0 && c.width > 100 && c.height > 100);
      expect(drawn.length).toBeGreaterThanOrEqual(3);
      for (const chart of charts) {
        expect(chart.title, `${chart.id} has a title`).not.toBe('');
        expect(chart.labelledBy).toContain(`${chart.id}-title`);
      }
      expect(charts.map((c) => c.id)).toEqual(expect.arrayContaining(['chart-tier-lift', 'chart-thresholds', 'chart-weekly']));
      // The lift chart has its reference line at 1, and a dot per tier with a lift.
      expect(await page.locator('#chart-tier-lift line.ref[data-reference="1"]').count()).toBe(1);
      expect(await page.locator('#chart-tier-lift circle[data-metric]').count()).toBe(json.tiers.filter((t) => t.lift).length);
      // Two series on the threshold chart, one mark per threshold each; one bar per week and tier.
      expect(await page.locator('#chart-thresholds [data-metric$=":precision"]').count()).toBe(json.thresholds.length);
      expect(await page.locator('#chart-thresholds [data-metric$=":recall"]').count()).toBe(json.thresholds.length);
      expect(await page.locator('#chart-weekly rect[data-metric]').count()).toBe(
        json.weekly.reduce((n, w) => n + Object.keys(w.qualified).length, 0),
      );

      // Every figure on the page equals the JSON's, exactly, and its text is that figure rounded.
      const expected = expectedMetrics(json);
      expect(expected.size).toBe(numbersIn(json));
      const onPage = await page.$$eval('[data-metric]', (all) =>
        all.map((e) => ({
          key: e.getAttribute('data-metric')!,
          value: e.getAttribute('data-value')!,
          // What the element shows: a chart mark's <title> is its tooltip, not its text.
          text: (Array.from(e.childNodes) as { nodeName: string; textContent: string | null }[])
            .filter((n) => n.nodeName !== 'title')
            .map((n) => n.textContent ?? '')
            .join('')
            .trim(),
        })),
      );
      const seen = new Set<string>();
      const shown = new Set<string>();
      const wrong: string[] = [];
      for (const { key, value, text } of onPage) {
        seen.add(key);
        if (text !== '') shown.add(key);
        if (!expected.has(key)) {
          wrong.push(`${key}: on the page but not in the JSON`);
          continue;
        }
        const want = expected.get(key)!;
        if (JSON.parse(value) !== want) wrong.push(`${key}: data-value ${value}, JSON ${want}`);
        if (text !== '' && !shownMatches(text, want)) wrong.push(`${key}: shows "${text}" for ${want}`);
      }
      for (const key of expected.keys()) {
        if (!seen.has(key)) wrong.push(`${key}: in the JSON but not on the page`);
        else if (!shown.has(key)) wrong.push(`${key}: only on a chart mark, never shown as text`);
      }
      expect(wrong).toEqual([]);

      // The <script> id is text, and nothing ran.
      const idCell = page.locator('#missed td.id code', { hasText: xssId });
      expect(await idCell.count()).toBe(1);
      expect(await idCell.textContent()).toBe(xssId);
      expect(await page.locator('script').count()).toBe(0);
      expect(await page.locator('#missed td.id code').allTextContents()).toEqual(json.missedConverters.map((m) => m.id));
      // The list is the first of them; the page says how many there are in all.
      expect(await page.locator('#missed p').first().textContent()).toContain(`The first ${json.missedConverters.length} of ${json.missedConverterCount}.`);

      // A screenshot a person can look at.
      const shot = join(dir, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      const png = await readFile(shot);
      expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
      expect((await stat(shot)).size).toBeGreaterThan(20_000);

      expect(watch.dialogs).toEqual([]);
      expect(watch.pageErrors).toEqual([]);
      expect(watch.consoleErrors).toEqual([]);
      expect(watch.requests).toEqual([url]);
      if (watch.consoleWarnings.length > 0) console.log('console warnings:', watch.consoleWarnings);
    } finally {
      await page.close();
    }
  });

  it('escapes names in text and in the data-metric hooks', async () => {
    const tier = `Sales "A" & <b>team</b>`;
    const signal = `it's <i>pricing</i>`;
    const report = structuredClone(json);
    report.tiers[0]!.tier = tier;
    report.signals[0]!.signal = signal;
    for (const w of report.weekly) {
      w.qualified[tier] = w.qualified['PQL-A']!;
      delete w.qualified['PQL-A'];
    }
    const path = join(dir, 'names.html');
    await writeFile(path, renderReportHtml(report));
    const { page, watch } = await openWatched();
    try {
      await page.goto(pathToFileURL(path).href, { waitUntil: 'load' });
      expect(await page.locator('b, i').count()).toBe(0);
      const first = report.tiers[0]!;
      expect(await page.locator('#tiers tbody th[scope="row"]').first().textContent()).toBe(`${tier}route ${first.route} · ${first.level}`);
      expect(await page.locator('#signals tbody th[scope="row"]').first().textContent()).toBe(signal);
      const keys = new Set(await page.$$eval('[data-metric]', (all) => all.map((e) => e.getAttribute('data-metric'))));
      for (const key of [`tier:${tier}:lift:value`, `signal:${signal}:fireRate`, `weekly:${report.weekly[0]!.week}:qualified:${tier}`]) {
        expect(keys.has(key), key).toBe(true);
      }
      expect([...watch.consoleErrors, ...watch.pageErrors, ...watch.dialogs]).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('shows exactly the figures of a real backtest\'s --json, for the example a newcomer runs', async () => {
    const root = join(import.meta.dirname, '../..');
    const reportPath = join(dir, 'example.html');
    const stdout = execFileSync(
      process.execPath,
      [join(root, 'bin/pql-radar.js'), 'backtest', '--rules', 'examples/activation.rules.yaml', '--events', 'examples/backtest/events.jsonl.gz',
        '--conversions', 'examples/backtest/conversions.csv', '--json', '--report', reportPath],
      { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    const report = JSON.parse(stdout) as BacktestReport;
    const expected = expectedMetrics(report);
    const { page, watch } = await openWatched();
    try {
      await page.goto(pathToFileURL(reportPath).href, { waitUntil: 'load' });
      const onPage = await page.$$eval('[data-metric]', (all) => all.map((e) => [e.getAttribute('data-metric')!, e.getAttribute('data-value')!] as const));
      const wrong = onPage.filter(([key, value]) => !expected.has(key) || JSON.parse(value) !== expected.get(key)).map(([key, value]) => `${key}=${value}`);
      const missing = [...expected.keys()].filter((key) => !onPage.some(([shown]) => shown === key));
      expect(wrong).toEqual([]);
      expect(missing).toEqual([]);
      expect(report.tiers.length).toBeGreaterThan(0);
      expect(watch.pageErrors).toEqual([]);
      expect(watch.consoleErrors).toEqual([]);
      expect(watch.requests).toEqual([pathToFileURL(reportPath).href]);
    } finally {
      await page.close();
    }
  }, 120_000);
});
