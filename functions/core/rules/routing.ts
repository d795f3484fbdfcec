import type { TierRoute } from './schema';
import { accountTraitPrefix } from './trait-reference';

/**
 * Routing to owners: the route a tier gives a lead, literal or chosen from a trait, and the lead's owner, read from
 * the traits the engine already has. Pure, like the engine that calls it.
 */

/** What routing reads of an entity's facts (engine.ts EntityFacts), spelt out so that the engine can import this. */
interface TraitFacts {
  type: 'user' | 'account';
  traits: Record<string, unknown>;
  /** Users: the traits of each of their accounts, by account id. */
  accountTraits: Record<string, unknown>[];
}

/** Every route a tier can give a lead: the routes the rules name, which the deployment must give destinations. */
export function routesOf(route: TierRoute): string[] {
  return typeof route === 'string' ? [route] : [...new Set([...Object.values(route.map), route.default])];
}

/** The route as a reader of a report sees it: `sales`, or `by region (emea: sales-emea, us: sales-us; else sales)`. */
export function describeRoute(route: TierRoute): string {
  if (typeof route === 'string') return route;
  const entries = Object.entries(route.map).map(([value, to]) => `${value}: ${to}`);
  return `by ${route.by} (${entries.join(', ')}; else ${route.default})`;
}

/**
 * The route a tier gives this entity: a literal route, or the map's route for the trait's value (trimmed, case
 * ignored: `EMEA` and `emea` are one region as people type them), else the default.
 */
export function chooseRoute(route: TierRoute, facts: TraitFacts): string {
  if (typeof route === 'string') return route;
  const value = traitValue(route.by, facts);
  if (value === undefined) return route.default;
  // Own keys only (Object.entries): a trait value such as "constructor" must not find Object.prototype's members.
  return Object.entries(route.map).find(([key]) => sameMapKey(key, value))?.[1] ?? route.default;
}

/** Whether a trait value is a key of a route map: trimmed, case ignored (rules check refuses keys equal this way). */
export function sameMapKey(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

/** The owner the `owner` trait names (at most 200 characters, as other traits in lead events), null when it is not set. */
export function ownerOf(owner: string | undefined, facts: TraitFacts): string | null {
  if (owner === undefined) return null;
  return traitValue(owner, facts)?.slice(0, 200) ?? null;
}

/**
 * A trait's value as text, trimmed; undefined when it is not set (absent, empty, or not a string, number or boolean).
 * `account.<trait>` reads a user's accounts in account id order (core/evaluate-leads and the backtest's replay give
 * them so) and takes the first that has the trait set, so a user in several accounts always gets the same answer; an
 * account reads its own trait.
 */
function traitValue(reference: string, facts: TraitFacts): string | undefined {
  const ofAccounts = reference.startsWith(accountTraitPrefix);
  const trait = ofAccounts ? reference.slice(accountTraitPrefix.length) : reference;
  const sources = ofAccounts && facts.type === 'user' ? facts.accountTraits : [facts.traits];
  for (const traits of sources) {
    const value = Object.hasOwn(traits, trait) ? traits[trait] : undefined;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') continue;
    const text = String(value).trim();
    if (text !== '') return text;
  }
  return undefined;
}
