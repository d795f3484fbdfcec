import type { LeadEvent } from './lead-event';

/**
 * What a lead event writes to HubSpot: one batch upsert of the lead's contact (by e-mail) or company (by a unique
 * property holding the account id), creating the record when it is missing. HubSpot is kept as a state sync for
 * pql-radar's own properties (pql_*): every transition sets those that describe the lead now, so the record ends in the
 * latest state whatever it held. A property people keep in HubSpot as well (the company's name) is only filled in: it
 * is written where the record has no value for it, never over one someone set or corrected there.
 */

/** The company property pql-radar matches companies by, unless the destination names another. */
export const defaultCompanyIdProperty = 'pql_radar_account_id';

/** HubSpot's limit for a string property value, in characters. */
export const maxHubspotStringLength = 65_536;

/** A property to create in HubSpot before the first sync, with the type and field type HubSpot's properties API asks for. */
export interface HubspotPropertyDefinition {
  name: string;
  /** HubSpot's `type`: string, number or datetime (datetime values are ISO 8601 in UTC). */
  type: 'string' | 'number' | 'datetime';
  /** HubSpot's `fieldType` for that type (a datetime property uses the `date` field type). */
  fieldType: 'text' | 'textarea' | 'number' | 'date';
  label: string;
  description: string;
  /** The objects it is created on. */
  objects: readonly ('contacts' | 'companies')[];
  /** Create it with "Require unique values" (hasUniqueValue): HubSpot upserts only by a unique property. */
  hasUniqueValue?: true;
}

const both = ['contacts', 'companies'] as const;

/** The properties to create in HubSpot, for the README and the CLI to print. */
export const hubspotProperties: readonly HubspotPropertyDefinition[] = [
  { name: 'pql_tier', type: 'string', fieldType: 'text', label: 'PQL tier', description: 'The current pql-radar tier; empty when not a lead', objects: both },
  { name: 'pql_score', type: 'number', fieldType: 'number', label: 'PQL score', description: 'Total score at the last evaluation', objects: both },
  { name: 'pql_engagement', type: 'number', fieldType: 'number', label: 'PQL engagement score', description: 'Engagement part of the score', objects: both },
  { name: 'pql_fit', type: 'number', fieldType: 'number', label: 'PQL fit score', description: 'Fit part of the score', objects: both },
  { name: 'pql_signals', type: 'string', fieldType: 'textarea', label: 'PQL signals', description: 'The last transition, score and matched signals in one line', objects: both },
  { name: 'pql_route', type: 'string', fieldType: 'text', label: 'PQL route', description: "The current tier's route (e.g. sales); empty when not a lead", objects: both },
  {
    name: 'pql_owner',
    type: 'string',
    fieldType: 'text',
    label: 'PQL owner',
    description: "The lead's owner as the rules' owner trait names it, when that is not a HubSpot owner id (e.g. an e-mail)",
    objects: both,
  },
  { name: 'pql_evaluated_at', type: 'datetime', fieldType: 'date', label: 'PQL evaluated at', description: 'When the last transition was evaluated', objects: both },
  { name: 'pql_qualified_at', type: 'datetime', fieldType: 'date', label: 'PQL qualified at', description: 'When the lead last qualified', objects: both },
  { name: 'pql_disqualified_at', type: 'datetime', fieldType: 'date', label: 'PQL disqualified at', description: 'When the lead was last disqualified', objects: both },
  { name: 'pql_converted_at', type: 'datetime', fieldType: 'date', label: 'PQL converted at', description: 'When the lead converted', objects: both },
  {
    name: defaultCompanyIdProperty,
    type: 'string',
    fieldType: 'text',
    label: 'pql-radar account ID',
    description: 'The account id in pql-radar (or the companyIdProperty the destination names)',
    objects: ['companies'],
    hasUniqueValue: true,
  },
];

/** One input of a batch upsert: the record whose `idProperty` equals `id`, created when there is none. */
export interface HubspotUpsertInput {
  idProperty: string;
  id: string;
  /** HubSpot's API types every property value as a string, numbers and dates included. */
  properties: Record<string, string>;
}

/** The lead's HubSpot record and what a transition writes to it. */
export interface HubspotSync {
  object: 'contacts' | 'companies';
  /** The record is the one whose `idProperty` (a unique property: HubSpot upserts and reads by one) equals `id`. */
  idProperty: string;
  id: string;
  /** Written at every transition: pql-radar's own. */
  properties: Record<string, string>;
  /**
   * Written only where the record has no value for them (a record created now, or one whose property is empty), since
   * people may have set or corrected them in HubSpot: the company's name. Empty when the event has none, and then
   * nothing needs reading before the upsert.
   */
  ifEmpty: Record<string, string>;
}

/**
 * What a transition writes to the lead's HubSpot record, or why there is nothing to write: test events (checked
 * elsewhere, never written), visitors (no record to match) and users without an e-mail. Users are contacts matched by
 * e-mail (trimmed and lowercased: HubSpot matches exactly); accounts are companies matched by `companyIdProperty` =
 * the account id, named after the company trait where HubSpot has no name for them.
 */
export function hubspotSync(event: LeadEvent, companyIdProperty: string): HubspotSync | { skip: string } {
  const { detail } = event;
  if (detail.test) return { skip: 'a test event is not written to HubSpot' };
  const properties = leadProperties(event);
  switch (detail.entity.type) {
    case 'visitor':
      return { skip: 'a visitor is anonymous: there is no HubSpot record to match it by' };
    case 'user': {
      const email = detail.context.traits.email?.trim().toLowerCase();
      if (!email) return { skip: 'the user has no email trait to match a HubSpot contact by' };
      return { object: 'contacts', idProperty: 'email', id: email, properties, ifEmpty: {} };
    }
    case 'account': {
      const name = detail.context.traits.company?.trim();
      return { object: 'companies', idProperty: companyIdProperty, id: detail.entity.id, properties, ifEmpty: name ? { name } : {} };
    }
  }
}

/** The batch read (POST /crm/v3/objects/{object}/batch/read) of `properties` of the record whose `idProperty` is `id`. */
export function hubspotReadBody(idProperty: string, id: string, properties: string[]): { idProperty: string; inputs: [{ id: string }]; properties: string[] } {
  return { idProperty, inputs: [{ id }], properties };
}

/**
 * The batch upsert (POST /crm/v3/objects/{object}/batch/upsert) of `sync`, given the values the record holds for
 * `sync.ifEmpty` (none for a record that does not exist): each of those is written only when `held` has no value for it
 * (HubSpot reads an empty property as null, or "").
 */
export function hubspotUpsertBody(sync: HubspotSync, held: Readonly<Record<string, string | null | undefined>>): { inputs: [HubspotUpsertInput] } {
  const properties = { ...sync.properties };
  for (const [name, value] of Object.entries(sync.ifEmpty)) if (!held[name]) properties[name] = value;
  return { inputs: [{ idProperty: sync.idProperty, id: sync.id, properties }] };
}

/** The pql_* properties a transition sets. Timestamps already set and not named here are kept, as the lead's history. */
function leadProperties({ detailType, detail }: LeadEvent): Record<string, string> {
  const properties: Record<string, string> = {
    pql_score: String(detail.score.total),
    pql_engagement: String(detail.score.engagement),
    pql_fit: String(detail.score.fit),
    pql_signals: truncate(detail.summary, maxHubspotStringLength),
    pql_evaluated_at: detail.evaluatedAt,
  };
  const owner = ownerProperties(detail.owner);
  switch (detailType) {
    case 'Lead Qualified':
      return { ...properties, pql_tier: detail.tier ?? '', pql_route: detail.route ?? '', ...owner, pql_qualified_at: detail.evaluatedAt };
    case 'Lead Tier Changed':
      return { ...properties, pql_tier: detail.tier ?? '', pql_route: detail.route ?? '', ...owner };
    case 'Lead Disqualified':
      // No tier, so no route either: "" clears a HubSpot property (null is not a property value). The summary in
      // pql_signals still says which tier the lead left.
      return { ...properties, pql_tier: '', pql_route: '', pql_disqualified_at: detail.evaluatedAt };
    case 'Lead Feedback':
      // Sales took the lead out of the tiers (done or disqualified, in detail.feedback): the record says so like a
      // disqualification, and only a disqualification stamps pql_disqualified_at.
      return { ...properties, pql_tier: '', pql_route: '', ...(detail.feedback?.outcome === 'disqualified' ? { pql_disqualified_at: detail.evaluatedAt } : {}) };
    case 'Lead Converted': {
      const converted = { ...properties, pql_converted_at: detail.conversion?.convertedAt ?? detail.evaluatedAt };
      // A customer may leave the tiers (tier null): the record then keeps the tier and route it converted from.
      return detail.tier === null ? converted : { ...converted, pql_tier: detail.tier, pql_route: detail.route ?? '', ...owner };
    }
  }
}

/**
 * The owner a lead in a tier gets in HubSpot. A HubSpot owner id (digits: the `id` of GET /crm/v3/owners) becomes the
 * record's owner, hubspot_owner_id; anything else (an e-mail, a Slack member id) goes to the text property pql_owner,
 * since HubSpot refuses the whole upsert over an owner id it does not know. Without an owner nothing is written: an
 * owner assigned in HubSpot is never cleared, and a disqualified lead keeps its owner. An owner id is written over the
 * record's owner, not only filled in as the company's name is: the rules' owner trait is how a lead entering a tier
 * is handed to someone.
 */
function ownerProperties(owner: string | null | undefined): Record<string, string> {
  if (owner === undefined || owner === null) return {};
  return /^\d+$/.test(owner) ? { hubspot_owner_id: owner } : { pql_owner: owner };
}

/** At most `max` UTF-16 units, without leaving half of a surrogate pair at the end. */
function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut;
}
