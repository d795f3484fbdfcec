import { z } from 'zod';

/**
 * zod schemas for the Segment HTTP Tracking API (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/).
 * Unknown fields are kept (Segment allows them and SDKs add their own), so a message is stored as it was sent.
 * Optional fields an SDK sends as null or "" for "not given" are dropped before these schemas see the message
 * (core/messages' withoutAbsentFields), so here optional means absent only.
 */

export const messageTypes = ['track', 'identify', 'group', 'page', 'screen', 'alias'] as const;
export type MessageType = (typeof messageTypes)[number];

/** Identifiers become DynamoDB key parts: bounded, non-empty, well-formed unicode. Event names are held to it too. */
export const maxIdentifierLength = 200;

/** A userId, groupId, ...: what a message carries, and what a lead status request names (core/lead-status). */
export const identifier = z
  .union([z.string(), z.number().finite()], { error: 'must be a string or a number' })
  .transform((value) => String(value))
  .pipe(
    z
      .string()
      .min(1, 'must not be empty')
      .max(maxIdentifierLength, `must be at most ${maxIdentifierLength} characters`)
      .refine((value) => value.isWellFormed(), 'must be well-formed unicode (no lone surrogates)'),
  );

/**
 * ISO-8601's basic offset (`+0000`, `-0530`), as Java's SimpleDateFormat "Z" writes it, in the extended form zod takes
 * (`+00:00`), so the stored time reads the same everywhere. A time without an offset stays refused: whose local time
 * it is cannot be known.
 */
const withOffsetColon = (value: unknown) => (typeof value === 'string' ? value.replace(/(T[\d:.]+[+-]\d\d)(\d\d)$/, '$1:$2') : value);

const isoTimestamp = z.preprocess(withOffsetColon, z.iso.datetime({ offset: true, message: 'must be an ISO-8601 date-time, e.g. 2024-05-01T12:00:00Z' }));

const jsonObject = z.record(z.string(), z.unknown(), { message: 'must be a JSON object' });

const context = z.looseObject(
  {
    groupId: identifier.optional(),
    traits: jsonObject.optional(),
  },
  { message: 'must be a JSON object' },
);

const common = {
  messageId: identifier.optional(),
  userId: identifier.optional(),
  anonymousId: identifier.optional(),
  timestamp: isoTimestamp.optional(),
  originalTimestamp: isoTimestamp.optional(),
  sentAt: isoTimestamp.optional(),
  context: context.optional(),
  integrations: jsonObject.optional(),
};

const eventName = z
  .string({ message: 'must be a string' })
  .min(1, 'must not be empty')
  .max(maxIdentifierLength, `must be at most ${maxIdentifierLength} characters`)
  .refine((value) => value.isWellFormed(), 'must be well-formed unicode (no lone surrogates)');

const needsAnIdentity = <T extends { userId?: string | undefined; anonymousId?: string | undefined }>(message: T, ctx: z.RefinementCtx) => {
  if (!message.userId && !message.anonymousId) {
    ctx.addIssue({ code: 'custom', path: ['userId'], message: 'userId or anonymousId is required' });
  }
};

const track = z
  .looseObject({ ...common, type: z.literal('track'), event: eventName, properties: jsonObject.optional() })
  .superRefine(needsAnIdentity);
const identify = z
  .looseObject({ ...common, type: z.literal('identify'), traits: jsonObject.optional() })
  .superRefine(needsAnIdentity);
const group = z
  .looseObject({ ...common, type: z.literal('group'), groupId: identifier, traits: jsonObject.optional() })
  .superRefine(needsAnIdentity);
const page = z
  .looseObject({ ...common, type: z.literal('page'), name: eventName.optional(), category: z.string().optional(), properties: jsonObject.optional() })
  .superRefine(needsAnIdentity);
const screen = z
  // analytics-python sends a screen's category as a page's (null when not given).
  .looseObject({ ...common, type: z.literal('screen'), name: eventName.optional(), category: z.string().optional(), properties: jsonObject.optional() })
  .superRefine(needsAnIdentity);
const alias = z.looseObject({ ...common, type: z.literal('alias'), userId: identifier, previousId: identifier });

export const segmentMessageSchema = z.discriminatedUnion('type', [track, identify, group, page, screen, alias], {
  // zod's default for an unknown discriminator is terse; say what is allowed.
  error: (issue) =>
    issue.code === 'invalid_union' ? `must be one of ${messageTypes.join(', ')}` : undefined,
});

export type SegmentMessage = z.output<typeof segmentMessageSchema>;

/** The envelope of /v1/batch and /v1/import. Items are validated one by one so one bad item costs only itself. */
export const batchEnvelopeSchema = z.looseObject({
  batch: z.array(z.unknown(), { message: 'must be an array of messages' }),
  // Some SDKs send null for an absent envelope field; null means absent, as it does for userId.
  context: jsonObject.nullish(),
  sentAt: isoTimestamp.nullish(),
  writeKey: z.string().optional(),
});

export type BatchEnvelope = z.output<typeof batchEnvelopeSchema>;

const optionalKeys = (shape: Record<string, z.ZodType>): ReadonlySet<string> =>
  new Set(Object.entries(shape).filter(([, field]) => field.def.type === 'optional').map(([key]) => key));

/**
 * Each type's optional fields, and context's, read from the schemas above: the fields a null may stand in for
 * (core/messages' withoutAbsentFields). A required one (a track's event, an alias's userId) is not among them.
 */
export const optionalFields: ReadonlyMap<string, ReadonlySet<string>> = new Map(
  segmentMessageSchema.options.map((option) => [option.shape.type.value, optionalKeys(option.shape)]),
);
export const optionalContextFields = optionalKeys(context.shape);
