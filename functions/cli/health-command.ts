import type { Command } from 'commander';
import { dayMs } from '../core/days';
import { buildHealthReport, formatHealth } from '../analysis/live-health';
import { leadReader } from './leads-commands';
import { age } from './options';

/** The period rule health looks back over unless --since says otherwise. */
const defaultHealthDays = 90;

/**
 * `pql-radar health`: how the deployed rules' leads of a recent period converted against the entities they left
 * alone (analysis/live-health.ts), from the lead states of the configured table. Reads only, as `leads list` does.
 */
export function addHealthCommand(program: Command) {
  program
    .command('health')
    .description("rule health after go-live: each tier's leads of the period, their conversion rate against the non-leads', lift, alerts per week, days to convert, sales feedback")
    .option('--since <age>', `the period, back from now, e.g. 30d (default ${defaultHealthDays}d)`, age('--since'))
    .option('--workspace <name>', 'only this workspace (default: every workspace)')
    .option('--json', 'the report as JSON')
    .action(async (options: { since?: number; workspace?: string; json?: boolean }) => {
      const states = await (await leadReader(program)).leadStates();
      const leads = options.workspace === undefined ? states : states.filter((state) => state.ref.workspace === options.workspace);
      const report = buildHealthReport({ leads, now: new Date(), periodDays: (options.since ?? defaultHealthDays * dayMs) / dayMs });
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatHealth(report));
    });
}
