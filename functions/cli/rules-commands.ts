import type { Command } from 'commander';
import { rulesJsonSchema } from '../core/rules/json-schema';
import { daySizeWarnings } from '../core/rules/day-size';
import { routesOf } from '../core/rules/routing';
import { tierWarnings } from '../core/rules/tier-warnings';
import { readRules } from './options';

/** `pql-radar rules check|schema`. */
export function addRulesCommands(program: Command) {
  const rules = program.command('rules').description('check PQL rules files and print their JSON Schema');
  rules
    .command('check')
    .description('validate rules files; prints every problem with its path and line, exits non-zero on any')
    .argument('<files...>', 'rules files (YAML or JSON)')
    .action(async (files: string[]) => {
      for (const file of files) {
        try {
          const ruleset = readRules(file);
          const routes = new Set(ruleset.file.tiers.flatMap((tier) => routesOf(tier.route)));
          console.log(`${file}: ok, ${Object.keys(ruleset.file.signals).length} signals, ${ruleset.file.tiers.length} tiers, version ${ruleset.version}; routes: ${[...routes].join(', ')}`);
          for (const warning of [...tierWarnings(ruleset.file), ...daySizeWarnings(ruleset)]) console.log(`  warning: ${warning}`);
        } catch (error) {
          console.error(error instanceof Error ? error.message : String(error));
          process.exitCode = 1;
        }
      }
    });
  rules
    .command('schema')
    .description('print the JSON Schema of the rules file, for editors (e.g. yaml-language-server)')
    .action(() => console.log(JSON.stringify(rulesJsonSchema(), null, 2)));
}
