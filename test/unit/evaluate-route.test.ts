import { describe, expect, it } from 'vitest';
import type { EvaluatorRunSummary } from '../../functions/core/evaluate-leads';
import { EvaluationTimeTooEarly, evaluatePath, evaluateRoute } from '../../functions/local/evaluate-route';

/**
 * `POST /local/evaluate`'s refusals have the body every error answer of `npm start`'s server has (README, Answers):
 * before, they had `error` and sometimes `path` only.
 */

const now = new Date('2026-11-30T12:00:00Z');
const tooEarly = async (): Promise<EvaluatorRunSummary> => {
  throw new EvaluationTimeTooEarly('the local evaluator has already evaluated leads at a later time');
};
const route = evaluateRoute(tooEarly, () => now);
const post = async (body: string, options: { host?: string; origin?: string } = {}) => {
  const page = await route(new URL(`http://${options.host ?? '127.0.0.1:3000'}${evaluatePath}`), { origin: options.origin, body });
  return { status: page!.status, body: JSON.parse(page!.body) as unknown };
};

describe('POST /local/evaluate refusals', () => {
  it.each([
    ['a body that is not JSON', 'not json', {}, 400, 'invalid_request', '', 'the body must be JSON'],
    ['a time that is not one', '{"at":"yesterday"}', {}, 400, 'invalid_request', 'at', 'must be an ISO time'],
    ['a time in the future', '{"at":"2026-12-01T00:00:00Z"}', {}, 400, 'invalid_request', 'at', 'is in the future'],
    ['a time before one already evaluated at', '{"at":"2026-11-29T00:00:00Z"}', {}, 409, 'conflict', 'at', 'already evaluated leads'],
    ['a host that is not a loopback one', '{"at":"2026-11-29T00:00:00Z"}', { host: 'rebound.example:3000' }, 403, 'forbidden', 'host', 'answers on 127.0.0.1 or localhost only'],
    ["another site's page", '{"at":"2026-11-29T00:00:00Z"}', { origin: 'https://evil.example' }, 403, 'forbidden', 'origin', "is not for other sites' pages"],
  ] as const)('answer %s with success, code, error, message, path and reason', async (_name, body, options, status, code, path, reason) => {
    const answer = await post(body, options);
    expect(answer.status).toBe(status);
    const error = (answer.body as { error: string }).error;
    expect(answer.body).toEqual({ success: false, code, error, message: error, path, reason: expect.stringContaining(reason) });
    expect(error).toBe(path ? `${path}: ${(answer.body as { reason: string }).reason}` : (answer.body as { reason: string }).reason);
  });
});
