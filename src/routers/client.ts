/** What the audit log and the throttle know of the client of a request. */
import type { FastifyRequest } from 'fastify';
import type { ClientInfo } from '../services/audit/index.js';
import type { Actor } from '../services/users.js';
import { principalOf } from './deps.js';

/** The client's address (after MYAPI_TRUST_PROXY) and its User-Agent. */
export function clientOf(request: FastifyRequest): ClientInfo {
  const agent = request.headers['user-agent'];
  return { address: request.ip, ...(agent === undefined ? {} : { userAgent: agent }) };
}

/** The authenticated user making a change, and from where: the audit log's actor. */
export function actorOf(request: FastifyRequest): Actor {
  return { actorId: principalOf(request).userId, client: clientOf(request) };
}
