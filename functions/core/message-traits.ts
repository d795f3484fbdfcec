/**
 * What the evaluator reads of a stored message beside its validation: importing these from here keeps the Segment
 * message schema out of the evaluator's bundle.
 */

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * An identify call's traits: at the top (Segment), else in context.traits (RudderStack's identify carries them only
 * there). Ingest keeps these on the profile, and conversion detection reads the same ones.
 */
export function identifyTraits(message: { traits?: unknown; context?: unknown }): unknown {
  return message.traits ?? (isPlainObject(message.context) ? message.context['traits'] : undefined);
}
