import { EventHistory, replay, type EventHistoryOptions } from '../../functions/analysis/replay';
import type { LeadEvent } from '../../functions/core/lead-event';
import { validateMessage } from '../../functions/core/messages';
import type { Ruleset } from '../../functions/core/rules/load';

/**
 * What the evaluator and the backtest are compared by: transitions as `at type id: from -> to` lines, sorted. The
 * backtest's side is the replay of the messages, a step a day from `from` to `to`.
 */
export function replayedTransitions(ruleset: Ruleset, messages: readonly unknown[], from: string, to: string, options: EventHistoryOptions = {}) {
  const history = new EventHistory(ruleset, options);
  messages.forEach((message, index) => {
    const accepted = validateMessage(message, index, 'test', new Date(0), { receivedAtKnown: false });
    if ('reason' in accepted) throw new Error(accepted.reason);
    history.add(accepted);
  });
  const replayed = replay(history, { from, to, stepDays: 1 });
  const lines = replayed.entities
    .flatMap((entity) => entity.transitions.map((transition) => `${transition.at} ${entity.type} ${entity.id}: ${transition.from ?? 'none'} -> ${transition.to ?? 'none'}`))
    .sort();
  return { history, replayed, lines };
}

/** The evaluator's side: the lead events it published, as the same lines. */
export const publishedTransitions = (events: readonly LeadEvent[]): string[] =>
  events.map((event) => `${event.detail.evaluatedAt} ${event.detail.entity.type} ${event.detail.entity.id}: ${event.detail.previousTier ?? 'none'} -> ${event.detail.tier ?? 'none'}`).sort();
