import type { Command } from 'commander';
import { dayMs } from '../core/days';
import { formatHealth } from '../analysis/live-health';
import { inspectHealth } from '../local/lead-inspector';
import { defaultHealthPeriodDays } from '../shared/settings';
import { leadReader } from './leads-commands';
import { age } from './options';

/**
 * `pql-radar health`: how the deployed rules' leads of a recent period converted against the entities they left
 * alone (analysis/live-health.ts), from the lead states of the configured table. Reads only, as `leads list` does.
 */
export function addHealthCommand(program: Command) {
  program
    .command('health')
    .description("rule health after go-live: each tier's leads of the period, their conversion rate against the non-leads', lift, alerts per week, days to convert, sales feedback")
    .option('--since <age>', `the period, back from now, e.g. 30d (default ${defaultHealthPeriodDays}d)`, age('--since'))
    .option('--workspace <name>', 'only this workspace (default: every workspace)')
    .option('--json', 'the report as JSON')
    .action(async (options: { since?: number; workspace?: string; json?: boolean }) => {
      const report = await inspectHealth(await leadReader(program), { workspace: options.workspace, periodDays: (options.since ?? defaultHealthPeriodDays * dayMs) / dayMs, now: new Date() });
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatHealth(report));
    });
}
