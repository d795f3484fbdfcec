import { Stack } from 'aws-cdk-lib';
import * as eventschemas from 'aws-cdk-lib/aws-eventschemas';
import { Construct } from 'constructs';
import { z } from 'zod';
import { leadEventDetailSchema, leadEventSource, leadEventTypes } from '../functions/core/lead-event';

export interface LeadEventSchemaProps {
  /**
   * Registry names are unique per account and region: derived from the stack's, so several stacks can share one.
   * @default `${stackName}-leads`
   */
  readonly registryName?: string;
}

/** The name of the lead event's schema in the registry, after EventBridge's own `<source>@<name>` convention. */
export const leadEventSchemaName = `${leadEventSource}@LeadEvent`;

/**
 * A lead event detail's JSON Schema, draft 4, as the registry publishes it: of `leadEventDetailSchema`, or of another
 * detail schema (test/unit/lead-event-contract.test.ts compares derived ones with the published contract).
 */
export function detailJsonSchema(detail: z.ZodType = leadEventDetailSchema): Record<string, unknown> {
  // `io: 'input'` describes what the zod schema accepts rather than what it outputs: parse strips unknown keys,
  // so the output form says `additionalProperties: false`, which would make validators built from the registry
  // reject every event as soon as a later version adds a field to the detail.
  return z.toJSONSchema(detail, { target: 'draft-04', io: 'input' });
}

/**
 * The lead event as subscribers receive it from EventBridge, as a JSON Schema draft 4 document: the envelope
 * EventBridge adds, with `source` and `detail-type` pinned to pql-radar's, and the detail generated from
 * `leadEventDetailSchema`, so the registry can never drift from the zod contract the evaluator publishes with.
 */
function leadEventJsonSchema(): Record<string, unknown> {
  const { $schema, ...detail } = detailJsonSchema();
  return {
    $schema,
    title: 'pql-radar lead event',
    description: 'A lead transition published by pql-radar on its event bus; deduplicate on detail.idempotencyKey.',
    type: 'object',
    properties: {
      version: { type: 'string' },
      id: { type: 'string' },
      'detail-type': { type: 'string', enum: [...leadEventTypes] },
      source: { type: 'string', enum: [leadEventSource] },
      account: { type: 'string' },
      time: { type: 'string', format: 'date-time' },
      region: { type: 'string' },
      resources: { type: 'array', items: { type: 'string' } },
      detail,
    },
    required: ['version', 'id', 'detail-type', 'source', 'account', 'time', 'region', 'resources', 'detail'],
  };
}

/**
 * An EventBridge schema registry holding the lead event's JSON Schema, so subscribers can browse it in the
 * console and download code bindings (`aws schemas get-code-binding-source`) instead of guessing the shape.
 * TypeScript subscribers can import `leadEventDetailSchema` itself (functions/core/lead-event.ts) and validate
 * with zod.
 */
export class LeadEventSchema extends Construct {
  public readonly registry: eventschemas.CfnRegistry;
  public readonly schema: eventschemas.CfnSchema;

  constructor(scope: Construct, id: string, props: LeadEventSchemaProps = {}) {
    super(scope, id);

    this.registry = new eventschemas.CfnRegistry(this, 'Registry', {
      registryName: props.registryName ?? `${Stack.of(this).stackName}-leads`,
      description: 'pql-radar: the lead events published on its event bus',
    });
    this.schema = new eventschemas.CfnSchema(this, 'Schema', {
      // The attribute, not the name: CloudFormation then creates the registry first.
      registryName: this.registry.attrRegistryName,
      schemaName: leadEventSchemaName,
      type: 'JSONSchemaDraft4',
      description: `${leadEventTypes.join(', ')} events from source ${leadEventSource}`,
      content: JSON.stringify(leadEventJsonSchema()),
    });
  }
}
