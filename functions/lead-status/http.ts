import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { leadStatus, type LeadStatusDependencies, type LeadStatusResponse } from '../core/lead-status';
import { failureBody } from '../core/request-failure';

export interface LeadStatusObserver {
  /** Called once per request with what may be logged: status, workspace, key id, type; never the id asked about. */
  onResponse(response: LeadStatusResponse, requestId: string): void;
  onError(error: unknown, requestId: string): void;
}

/**
 * The lead status primary adapter: an API Gateway HTTP API (payload v2) GET in, the use case, JSON out. The local
 * runtime serves this very function. `maxAgeSeconds` lets the product's backend keep an answer as long as the function
 * keeps the state it came from; `private`: it is about one user, for that product only.
 */
export function createLeadStatusHandler(dependencies: LeadStatusDependencies, options: { maxAgeSeconds: number }, observer?: LeadStatusObserver) {
  return async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    const requestId = event.requestContext.requestId;
    try {
      const response = await leadStatus({ path: event.rawPath, authorization: event.headers['authorization'] }, dependencies);
      observer?.onResponse(response, requestId);
      return {
        statusCode: response.status,
        headers: { 'content-type': 'application/json', 'cache-control': response.cacheable ? `private, max-age=${options.maxAgeSeconds}` : 'no-store' },
        body: JSON.stringify(response.body),
      };
    } catch (error) {
      observer?.onError(error, requestId);
      const body = failureBody(500, '', `internal error; retry the request (request id ${requestId})`);
      return { statusCode: 500, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body: JSON.stringify(body) };
    }
  };
}
