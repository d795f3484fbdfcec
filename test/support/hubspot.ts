import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { defaultCompanyIdProperty } from '../../functions/core/crm-properties';

/**
 * A local HubSpot's parts, for the tests (test/unit/hubspot.test.ts) and bench:delivery: the recorded exchanges of
 * test/fixtures/hubspot, and FakeCompanies, which keeps companies as a batch read and a batch upsert see them.
 */

/** One recorded exchange with HubSpot (see test/fixtures/hubspot/README.md). */
export interface Fixture {
  description: string;
  request: { method: string; path: string; body: unknown };
  response: { status: number; headers: Record<string, string>; body: unknown };
}

/** A request as a stand-in for api.hubapi.com received it, its body parsed (null: none). */
export interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

/** What the stand-in answers one request with; undefined: no answer at all (a hung connection). */
export type Answer = Fixture['response'] | undefined;

export const fixture = (name: string): Fixture => JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/hubspot', `${name}.json`), 'utf8')) as Fixture;

/**
 * A HubSpot account's companies, as far as a batch read and a batch upsert of one input by a unique property go: the
 * record a transition leaves is there for the next one, and for a person to edit in between.
 */
export class FakeCompanies {
  /** By the value of the unique property. */
  readonly records = new Map<string, { id: string; properties: Record<string, string> }>();
  /** False: the token lacks crm.objects.companies.read, so HubSpot refuses every read (403 MISSING_SCOPES). */
  readScope = true;
  #nextId = 20391844502;

  /** A company as someone made it in HubSpot. */
  add(accountId: string, properties: Record<string, string>): void {
    this.records.set(accountId, { id: String(this.#nextId++), properties: { [defaultCompanyIdProperty]: accountId, ...properties } });
  }

  readonly respond = (request: Received): Answer => {
    const body = request.body as { idProperty?: string; inputs: { id: string; idProperty?: string; properties?: Record<string, string> }[]; properties?: string[] };
    const input = body.inputs[0]!;
    const headers = { 'content-type': 'application/json;charset=utf-8' };
    if (request.path === '/crm/v3/objects/companies/batch/read' && !this.readScope) return fixture('company-read-missing-scope').response;
    if (request.path === '/crm/v3/objects/companies/batch/read' && body.idProperty === defaultCompanyIdProperty) {
      const record = this.records.get(input.id);
      if (record === undefined) {
        const error = { status: 'error', category: 'OBJECT_NOT_FOUND', message: 'Could not get some COMPANY objects, they may be deleted or not exist. Check that ids are valid.', context: { ids: [input.id] } };
        return { status: 207, headers, body: { status: 'COMPLETE', results: [], numErrors: 1, errors: [error] } };
      }
      const properties = Object.fromEntries((body.properties ?? []).map((name) => [name, record.properties[name] ?? null]));
      return { status: 200, headers, body: { status: 'COMPLETE', results: [{ id: record.id, properties: { hs_object_id: record.id, ...properties } }] } };
    }
    if (request.path === '/crm/v3/objects/companies/batch/upsert' && input.idProperty === defaultCompanyIdProperty) {
      const created = !this.records.has(input.id);
      if (created) this.add(input.id, {});
      const record = this.records.get(input.id)!;
      Object.assign(record.properties, input.properties);
      return { status: 200, headers, body: { status: 'COMPLETE', results: [{ id: record.id, properties: { hs_object_id: record.id, ...input.properties }, new: created }] } };
    }
    return { status: 400, headers, body: { status: 'error', category: 'VALIDATION_ERROR', message: `the fake does not take ${request.method} ${request.path}` } };
  };
}
