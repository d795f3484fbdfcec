import { Stack, Validations, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { leadEventDetailSchema, leadEventSource, leadEventTypes } from '../../functions/core/lead-event';
import { LeadEventSchema, leadEventSchemaName } from '../../lib/lead-event-schema';
import { nagFindings, reportValidationErrors } from './nag-report';
import { testApp } from './synth';

function build(context: Record<string, unknown> = {}, registryName?: string) {
  const app = testApp(context);
  const stack = new Stack(app, 'Schemas');
  const schema = new LeadEventSchema(stack, 'LeadEventSchema', registryName === undefined ? {} : { registryName });
  return { app, stack, schema, template: Template.fromStack(stack) };
}

describe('lead event schema registry', () => {
  const { stack, schema, template } = build();
  const registryId = stack.getLogicalId(schema.registry as CfnElement);
  const [schemaResource] = Object.values(template.findResources('AWS::EventSchemas::Schema')) as { Properties: Record<string, any> }[];
  const content = JSON.parse(schemaResource!.Properties.Content);

  it('is one registry named <stack name>-leads, unless told otherwise', () => {
    template.resourceCountIs('AWS::EventSchemas::Registry', 1);
    template.hasResourceProperties('AWS::EventSchemas::Registry', { RegistryName: 'Schemas-leads' });
    build({}, 'pql-radar-staging').template.hasResourceProperties('AWS::EventSchemas::Registry', { RegistryName: 'pql-radar-staging' });
  });

  it('holds one JSON Schema draft 4 schema named after the source, in that registry', () => {
    template.resourceCountIs('AWS::EventSchemas::Schema', 1);
    expect(schemaResource!.Properties).toMatchObject({
      RegistryName: { 'Fn::GetAtt': [registryId, 'RegistryName'] },
      SchemaName: 'pql-radar@LeadEvent',
      Type: 'JSONSchemaDraft4',
    });
    expect(leadEventSchemaName).toBe('pql-radar@LeadEvent');
    expect(content.$schema).toBe('http://json-schema.org/draft-04/schema#');
  });

  it('describes the whole EventBridge event, with pql-radar\'s source and detail types', () => {
    expect(content.type).toBe('object');
    expect(content.required).toEqual(['version', 'id', 'detail-type', 'source', 'account', 'time', 'region', 'resources', 'detail']);
    expect(content.properties.source).toEqual({ type: 'string', enum: [leadEventSource] });
    expect(content.properties['detail-type']).toEqual({ type: 'string', enum: [...leadEventTypes] });
    expect(content.properties.resources).toEqual({ type: 'array', items: { type: 'string' } });
  });

  it('has as detail exactly the JSON Schema zod generates from leadEventDetailSchema', () => {
    const { $schema, ...generated } = z.toJSONSchema(leadEventDetailSchema, { target: 'draft-04', io: 'input' });
    expect($schema).toBe(content.$schema);
    expect(content.properties.detail).toEqual(generated);
    // Spot checks that the generated schema really is the contract.
    expect(content.properties.detail.required).toEqual(expect.arrayContaining(['workspace', 'entity', 'idempotencyKey', 'route', 'summary']));
    expect(content.properties.detail.properties.tier).toEqual({ type: ['string', 'null'] });
  });

  it('has owner as an optional string or null, described, so events without it stay valid', () => {
    const owner = content.properties.detail.properties.owner;
    expect(owner).toEqual({ type: ['string', 'null'], description: expect.stringMatching(/^Who owns the lead: the value of the trait the tier names as owner/) });
    expect(content.properties.detail.required).not.toContain('owner');
    expect(content.properties.detail.required).toContain('route');
  });

  it('adds Lead Feedback, its feedback and the feedback links as optional fields: events before them stay valid', () => {
    expect(content.properties['detail-type'].enum).toEqual(['Lead Qualified', 'Lead Tier Changed', 'Lead Disqualified', 'Lead Converted', 'Lead Feedback']);
    const { feedback, feedbackLinks } = content.properties.detail.properties;
    expect(feedback.properties.outcome).toEqual({ type: 'string', enum: ['done', 'disqualified'] });
    expect(feedback.required).toEqual(['outcome', 'reason', 'givenAt', 'via', 'heldUntil']);
    expect(feedbackLinks.items.required).toEqual(['outcome', 'reason', 'url']);
    expect(content.properties.detail.required).not.toContain('feedback');
    expect(content.properties.detail.required).not.toContain('feedbackLinks');
  });

  it('lets a later version add detail fields without breaking validators built from it', () => {
    expect(JSON.stringify(content)).not.toContain('additionalProperties');
  });
});

it('passes the AwsSolutions checks with no acknowledgement', () => {
  const { app } = build(reportValidationErrors);
  expect(nagFindings(app)).toEqual([]);
  const acknowledged = app.node.findAll().flatMap((construct) => construct.node.metadata.filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY));
  expect(acknowledged).toEqual([]);
});
