import { InvalidArgumentError, type Command } from 'commander';
import { DynamoDbLeadReader } from '../adapters/dynamodb/lead-reader';
import type { LeadSummary, LeadView } from '../core/lead-view';
import type { EntityRef } from '../core/ports';
import { entityTypes, inspectLead, inspectLeads, leadPages, unknownLead } from '../local/lead-inspector';
import { serveHttpApi } from '../local/http-server';
import { ensurePortFree } from '../local/ports';
import { defaultDeliveryLogDays } from '../shared/settings';
import { shardCountOf } from './evaluate-command';
import { age, defaultRulesFile, readRules, storage } from './options';
import { port } from './integer-option';
import { DynamoDbFeedbackStore } from '../adapters/dynamodb/feedback-store';
import { feedbackOutcomes } from '../core/lead-feedback';
import { feedbackConfirmation, giveFeedback } from '../core/give-feedback';

/**
 * `pql-radar leads list|show|serve`: the lead inspector against the configured table (DynamoDB Local with --endpoint,
 * else AWS with the operator's own credentials). Reads only.
 */
export function addLeadsCommands(program: Command) {
  const reader = () => leadReader(program);
  const leads = program.command('leads').description('the lead inspector: leads in a tier, and why each is where it is');

  leads
    .command('list')
    .description('leads currently in a tier, newest first (by when they entered it)')
    .option('--tier <name>', 'only this tier')
    .option('--route <name>', 'only this route')
    .option('--since <age>', 'only leads that entered their tier within this age, e.g. 7d, 12h or 30m', age('--since'))
    .option('--workspace <name>', 'only this workspace (default: every workspace)')
    .option('--json', 'one JSON object per line')
    .action(async (options: { tier?: string; route?: string; since?: number; workspace?: string; json?: boolean }) => {
      const { rows, tiers, routes } = await inspectLeads(await reader(), {
        ...(options.workspace !== undefined ? { workspace: options.workspace } : {}),
        ...(options.tier !== undefined ? { tier: options.tier } : {}),
        ...(options.route !== undefined ? { route: options.route } : {}),
        ...(options.since !== undefined ? { since: new Date(Date.now() - options.since) } : {}),
      });
      for (const row of rows) console.log(options.json ? JSON.stringify(row) : summaryLine(row));
      if (rows.length === 0 && !options.json) {
        const absent = [
          ...(options.tier !== undefined && !tiers.includes(options.tier) ? [absentText(`in tier ${JSON.stringify(options.tier)}`, 'the tiers leads are in now', 'in any tier', tiers)] : []),
          ...(options.route !== undefined && !routes.includes(options.route) ? [absentText(`on route ${JSON.stringify(options.route)}`, 'the routes leads are on now', 'on any route', routes)] : []),
        ];
        console.log(`no lead in a tier matches${absent.length > 0 ? `: ${absent.join('; ')}` : ''}`);
      }
    });

  leads
    .command('show')
    .argument('<id>', 'the user id, account (group) id or anonymous id')
    .description('one lead: tier, score and its history, matched signals, transitions and their reasons, last events, accounts or members, deliveries')
    .option('--type <type>', `${entityTypes.join(', ')}`, entityType, 'user')
    .option('--workspace <name>', 'its workspace', 'default')
    .option('--json', 'the whole view as JSON (what the /leads page shows)')
    .action(async (id: string, options: { type: EntityRef['type']; workspace: string; json?: boolean }) => {
      const ref: EntityRef = { workspace: options.workspace, type: options.type, id };
      const leads = await reader();
      const view = await inspectLead(leads, ref, new Date());
      if (!view) throw new InvalidArgumentError(await unknownLead(leads, ref));
      console.log(options.json ? JSON.stringify(view, null, 2) : viewText(view).join('\n'));
    });

  leads
    .command('feedback')
    .argument('<id>', 'the user id, account (group) id or anonymous id')
    .description("sales feedback: takes the lead out of its tier for the reason's hold, without notifying it again meanwhile")
    .requiredOption('--outcome <outcome>', feedbackOutcomes.join(' or '))
    .option('--reason <code>', "one of the rules' policy.feedback_reasons (e.g. not_a_fit, or \"not a fit\"); without one, the hold is policy.cooldown")
    .option('--type <type>', `${entityTypes.join(', ')}`, entityType, 'user')
    .option('--workspace <name>', 'its workspace', 'default')
    .option('--rules <file>', 'the rules file the deployment evaluates with (its feedback reasons)', defaultRulesFile)
    .action(async (id: string, options: { outcome: string; reason?: string; type: EntityRef['type']; workspace: string; rules: string }) => {
      const { client, tableName } = storage(program);
      const ref: EntityRef = { workspace: options.workspace, type: options.type, id };
      const given = await giveFeedback(new DynamoDbFeedbackStore(client, tableName), ref, options, readRules(options.rules), 'cli', new Date());
      if (!given.ok) throw new InvalidArgumentError(given.neverEvaluated ? await unknownLead(await reader(), ref) : given.error);
      console.log(`feedback kept for ${ref.type} ${ref.id} (${ref.workspace}): ${feedbackConfirmation(given)}`);
    });

  leads
    .command('serve')
    .description('serve the /leads pages on 127.0.0.1 against the configured table (a deployed one with your own AWS credentials)')
    .option('--port <port>', 'port on 127.0.0.1', port('--port'), 3001)
    .option('--rules <file>', "the rules file the deployment evaluates with: the lead page's feedback form offers its reasons", defaultRulesFile)
    .action(async (options: { port: number; rules: string }) => {
      await ensurePortFree(options.port, '127.0.0.1', 'the lead inspector (--port chooses another)', 'pql-radar leads serve');
      const { client, tableName } = storage(program);
      const feedback = { store: new DynamoDbFeedbackStore(client, tableName), ruleset: readRules(options.rules) };
      // Loopback only: the pages show traits (personal data) to whoever holds the credentials that read the table.
      const { url } = await serveHttpApi(undefined, { port: options.port, host: '127.0.0.1', pages: leadPages(await reader(), undefined, feedback) });
      console.log(`lead inspector on ${url}/leads (table ${storage(program).tableName}); Ctrl-C stops it`);
    });
}

/** The reader of the configured table's lead states, on as many shards as the table records. */
export async function leadReader(program: Command): Promise<DynamoDbLeadReader> {
  const { client, tableName } = storage(program);
  return new DynamoDbLeadReader(client, tableName, { shards: (await shardCountOf(client, tableName, undefined)).highest, deliveryLogDays: defaultDeliveryLogDays });
}

const entityType = (value: string): EntityRef['type'] => {
  if (!entityTypes.includes(value as EntityRef['type'])) throw new InvalidArgumentError(`--type ${value}: must be one of ${entityTypes.join(', ')}`);
  return value as EntityRef['type'];
};

/**
 * Why a --tier or --route matched nothing: no lead is in it now. Whether the rules have such a tier or route this
 * command cannot tell (it reads no rules file): one of the rules may have no lead, and a renamed one still some, so it
 * names those leads are in now rather than call the name unknown.
 */
const absentText = (where: string, presentLabel: string, anywhere: string, present: readonly string[]) =>
  `no lead is ${where} now; ${present.length > 0 ? `${presentLabel}: ${present.join(', ')}` : `no lead is ${anywhere} now`}`;

const summaryLine = (row: LeadSummary) => `${row.since ?? '-'}  ${row.tier}  route ${row.route ?? '-'}  score ${row.score}  ${row.type} ${row.id}  (${row.workspace})`;

function viewText(view: LeadView): string[] {
  const { entity, score } = view;
  const related = entity.type === 'account' ? view.members : view.accounts;
  return [
    `${entity.type} ${entity.id} (${entity.workspace})  tier ${view.tier ?? 'none'}  route ${view.route ?? '-'}  since ${view.since ?? '-'}`,
    ...(view.mergedInto !== null ? [`merged into user ${view.mergedInto}: judged as that user since (leads show ${view.mergedInto})`] : []),
    // A non-lead's parts and signal values are not kept (core/lead-view): its total and signal names alone.
    `score ${score.total}${score.engagement === null ? '' : ` (engagement ${score.engagement}, fit ${score.fit})`}  evaluated ${view.evaluatedAt}  last seen ${view.lastSeen ?? '-'}`,
    `score history: ${view.scores.map((point) => `${point.at} ${point.total}`).join(', ') || 'none'}`,
    `signals: ${view.signals.map((signal) => (signal.value === null ? signal.name : `${signal.name}=${String(signal.value)} (${signal.points})`)).join(', ') || 'none'}`,
    'transitions (newest first):',
    ...view.transitions.flatMap((entry) => [`  ${entry.at}  ${entry.previousTier ?? 'none'} -> ${entry.tier ?? 'none'}`, ...entry.reasons.map((reason) => `      ${reason}`)]),
    `${entity.type === 'account' ? 'members' : 'accounts'}: ${related.map((row) => `${row.id} (${row.tier ?? 'no tier'})`).join(', ') || 'none'}`,
    `last events: ${view.lastEvents.map((event) => `${event.at} ${event.name}`).join(', ') || (entity.type === 'account' ? 'an account has none of its own' : 'none')}`,
    `deliveries: ${view.deliveries.map((entry) => `${entry.at} ${entry.destination} ${entry.outcome}`).join(', ') || 'none'}`,
  ];
}
