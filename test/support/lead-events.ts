import type { LeadPublisher } from '../../functions/core/ports';
import { leadEventDetailSchema, leadEventType, type LeadEvent, type LeadEventDetail, type LeadEventType } from '../../functions/core/lead-event';

export type LeadEventOverrides = Partial<Omit<LeadEventDetail, 'context'>> & {
  context?: Partial<LeadEventDetail['context']>;
  /** @default derived from previousTier and tier with leadEventType */
  detailType?: LeadEventType;
};

/**
 * A realistic lead event, validated with leadEventDetailSchema: by default user u-42 of workspace acme newly
 * qualified as PQL-A. Overrides replace top-level detail fields (context is merged one level deep). The detail
 * type follows previousTier/tier unless given; route is the (previous) tier's route, sales; the idempotency key
 * defaults to one derived from workspace, entity, transition and evaluatedAt, so distinct events get distinct keys.
 */
export function sampleLeadEvent(overrides: LeadEventOverrides = {}): LeadEvent {
  const { detailType, context, ...fields } = overrides;
  const workspace = fields.workspace ?? 'acme';
  const entity = fields.entity ?? { type: 'user' as const, id: 'u-42' };
  const tier = fields.tier === undefined ? 'PQL-A' : fields.tier;
  const previousTier = fields.previousTier === undefined ? null : fields.previousTier;
  const evaluatedAt = fields.evaluatedAt ?? '2024-05-01T12:00:00.000Z';
  const detail = leadEventDetailSchema.parse({
    workspace,
    entity,
    tier,
    previousTier,
    score: { total: 85, engagement: 70, fit: 15 },
    signals: [
      { name: 'activated', value: 1, points: 40 },
      { name: 'invited_teammates', value: 3, points: 30 },
      { name: 'company_size', value: '51-200', points: 15 },
    ],
    route: 'sales',
    rulesetVersion: 'rules@3f9c2a1',
    evaluatedAt,
    idempotencyKey: `${workspace}:${entity.type}:${entity.id}:${previousTier ?? 'none'}->${tier ?? 'none'}:${evaluatedAt}`,
    reasons: ['activated within 7 days of signup', 'invited 3 teammates', 'company size 51-200 fits the ICP'],
    summary: `${entity.type} ${entity.id}: ${previousTier ?? 'none'} -> ${tier ?? 'none'}, score 85; activated=1, invited_teammates=3, company_size=51-200`,
    ...fields,
    context: {
      traits: { name: 'Ada Lovelace', email: 'ada@acme.example', company: 'Acme Analytics', plan: 'trial' },
      firstSeen: '2024-04-20T09:15:00.000Z',
      lastSeen: '2024-05-01T11:58:12.000Z',
      topEvents: [
        { name: 'Report Created', count: 14 },
        { name: 'Teammate Invited', count: 3 },
        { name: 'Dashboard Shared', count: 2 },
      ],
      ...(entity.type === 'account' ? { members: [{ id: 'u-42', tier: 'PQL-A' }, { id: 'u-43', tier: null }] } : {}),
      ...context,
    },
  });
  return { detailType: detailType ?? leadEventType(detail.previousTier, detail.tier), detail };
}

/** A publisher that keeps what it is given, and can fail once like a crash between saving state and publishing. */
export class RecordingPublisher implements LeadPublisher {
  readonly published: LeadEvent[] = [];
  crashNext = false;

  async publish(events: readonly LeadEvent[]) {
    if (this.crashNext) {
      this.crashNext = false;
      throw new Error('simulated crash after the state was saved');
    }
    this.published.push(...events);
    return { failed: [] };
  }
}
