import type { IncomingMessage, ServerResponse } from 'node:http';
import { Inject, Injectable } from '@nestjs/common';
import type { Dispatcher } from 'undici';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { Refusal } from '@keyward/contracts';
import { ApiKey } from '@keyward/key-material';
import { correlationIdFrom, KeywardLogger, registerSecret } from '@keyward/observability';
import { SecretReader, SecretStoreError } from '@keyward/secrets';
import { bearerToken, installSessionTokenHash, ServiceTokens } from '@keyward/service-auth';
import { AuthFailureReporter } from './auth-failures/auth-failure-reporter';
import { InstallSessionTokensRepository } from './callers/install-session-tokens.repository';
import { ConnectionStateRepository } from './connections/connection-state.repository';
import { forwardingDecision, statusOfRevocation } from './connections/forwarding-decision';
import { headersForCaller, headersForPleo } from './forwarding/forwarded-headers';
import { PleoForwarder } from './forwarding/pleo-forwarder';
import { endpointTemplate, GatewayTarget } from './forwarding/pleo-path';
import { GatewayMetrics } from './gateway-metrics';
import { BudgetAnswer, CredentialBudget } from './rate-limits/credential-budget';

const METHODS = new Set<Dispatcher.HttpMethod>(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

interface CallContext {
  correlationId: string;
  startedAt: bigint;
  method: string;
  tenantId?: string;
  endpoint?: string;
  caller?: string;
  forwarded: boolean;
  upstreamStatus?: number;
}

/** The key as Pleo expects it: HTTP Basic, key as user name, empty password. */
function basicAuthorization(key: ApiKey): string {
  return `Basic ${Buffer.from(`${key.reveal()}:`, 'utf8').toString('base64')}`;
}

/**
 * One call of the integration to Pleo: who is calling, whether the tenant's connection may be
 * used, its current key (revocation first), the credential's shared budget, then Pleo's answer
 * streamed back; a 401/403 also becomes `auth.failed`. Every refusal is keyward's own answer and
 * no call is made.
 */
@Injectable()
export class GatewayService {
  private readonly maxBodyBytes: number;

  constructor(
    @Inject(KEYWARD_CONFIG) config: KeywardConfig,
    @Inject(ServiceTokens) private readonly serviceTokens: ServiceTokens,
    @Inject(InstallSessionTokensRepository) private readonly installSessions: InstallSessionTokensRepository,
    @Inject(ConnectionStateRepository) private readonly connections: ConnectionStateRepository,
    @Inject(SecretReader) private readonly secrets: SecretReader,
    @Inject(CredentialBudget) private readonly budget: CredentialBudget,
    @Inject(PleoForwarder) private readonly pleo: PleoForwarder,
    @Inject(AuthFailureReporter) private readonly authFailures: AuthFailureReporter,
    @Inject(GatewayMetrics) private readonly metrics: GatewayMetrics,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
  ) {
    this.maxBodyBytes = config.gateway.maxBodyBytes;
  }

  async handle(req: IncomingMessage, res: ServerResponse, target: Exclude<GatewayTarget, { kind: 'not-gateway' }>): Promise<void> {
    const call: CallContext = {
      correlationId: correlationIdFrom(req.headers['x-correlation-id']),
      startedAt: process.hrtime.bigint(),
      method: METHODS.has(req.method as Dispatcher.HttpMethod) ? (req.method as string) : 'other',
      forwarded: false,
    };
    res.setHeader('X-Correlation-Id', call.correlationId);
    res.once('close', () => this.observe(call, res.statusCode));
    try {
      const refusal = await this.serve(req, res, target, call);
      if (refusal) this.refuse(req, res, refusal);
    } catch (error) {
      this.logger.error('Gateway call failed unexpectedly', { correlationId: call.correlationId, tenantId: call.tenantId, err: error });
      if (!res.headersSent) this.refuse(req, res, new Refusal('internal_error'));
      else res.destroy();
    }
  }

  private async serve(req: IncomingMessage, res: ServerResponse, target: Exclude<GatewayTarget, { kind: 'not-gateway' }>, call: CallContext): Promise<Refusal | undefined> {
    const caller = await this.authenticate(req);
    if (caller instanceof Refusal) return caller;
    call.caller = caller;
    if (target.kind === 'refused') return new Refusal(target.code);
    if (call.method === 'other') return new Refusal('method_not_allowed', { headers: { Allow: [...METHODS].join(', ') } });
    call.tenantId = target.tenantId;
    call.endpoint = endpointTemplate(target.path);

    const length = contentLength(req);
    if (length === 'invalid') return new Refusal('invalid_request');
    if (length !== undefined && length > this.maxBodyBytes) return new Refusal('pleo_request_too_large');

    const decision = forwardingDecision(await this.connections.state(target.tenantId));
    if (!decision.forward) {
      if (decision.code === 'tenant_not_found') return new Refusal('tenant_not_found');
      return new Refusal('connection_not_active', { detail: `status: ${decision.status}`, extra: { status: decision.status } });
    }

    // The revocation check and the budget run together; neither may be skipped.
    const [key, budget] = await Promise.allSettled([this.secrets.readForUse(target.tenantId, decision.credentialId), this.budget.take(decision.credentialId)]);
    if (key.status === 'rejected') return this.keyRefusal(target.tenantId, key.reason);
    if (budget.status === 'rejected') {
      this.logger.warn('Could not lease call tokens; the call was not made', { correlationId: call.correlationId, tenantId: target.tenantId, err: budget.reason });
      return new Refusal('gateway_unavailable', { headers: { 'Retry-After': '1' } });
    }
    const allowance: BudgetAnswer = budget.value;
    if (!allowance.allowed) return new Refusal('rate_limited', { headers: { 'Retry-After': String(allowance.retryAfterSeconds) } });

    const body = await this.requestBody(req, length);
    if (body instanceof Refusal) return body;

    call.forwarded = true;
    const { tenantId } = target;
    const endpoint = call.endpoint;
    const outcome = await this.pleo.forward(
      { method: call.method as Dispatcher.HttpMethod, path: target.path, query: target.query, headers: headersForPleo(req.headers, basicAuthorization(key.value)), body },
      res,
      (answer) => {
        call.upstreamStatus = answer.status;
        if (answer.status === 401 || answer.status === 403) {
          this.connections.forget(tenantId);
          this.authFailures.report({ tenantId, credentialId: decision.credentialId, status: answer.status, endpoint, correlationId: call.correlationId, observedAt: new Date() });
        }
        return headersForCaller(answer.headers);
      },
    );
    switch (outcome.outcome) {
      case 'failed':
        this.metrics.upstreamError(outcome.kind);
        return outcome.kind === 'timeout' ? new Refusal('pleo_timeout') : new Refusal('pleo_bad_gateway');
      case 'broken':
        this.metrics.upstreamError('aborted');
        this.logger.warn("Pleo's answer broke off while streaming it to the caller", { correlationId: call.correlationId, tenantId, code: outcome.code });
        return undefined;
      default:
        return undefined;
    }
  }

  /** Service tokens only: none or an unknown token is 401, an install session's token 403. */
  private async authenticate(req: IncomingMessage): Promise<string | Refusal> {
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) return new Refusal('unauthenticated', { headers: { 'WWW-Authenticate': 'Bearer' } });
    const name = this.serviceTokens.identify(token);
    // Registered only once authenticated: an unknown token is not keyward's secret to redact.
    // Service tokens are held as hashes, so this is the first moment keyward can know one; on
    // later calls it is a lookup in the registry.
    if (name !== undefined) {
      registerSecret(token);
      return `token:${name}`;
    }
    if (await this.installSessions.exists(installSessionTokenHash(token))) return new Refusal('forbidden');
    return new Refusal('unauthenticated', { headers: { 'WWW-Authenticate': 'Bearer' } });
  }

  private keyRefusal(tenantId: string, error: unknown): Refusal {
    this.connections.forget(tenantId);
    if (error instanceof SecretStoreError) {
      const notActive = (status: string) => new Refusal('connection_not_active', { detail: `status: ${status}`, extra: { status } });
      if (error.code === 'revoked') return notActive(statusOfRevocation(/\((\w+)\)$/.exec(error.message)?.[1]));
      if (error.code === 'disabled') return notActive('disabled');
      if (error.code === 'scheduled_for_deletion') return notActive('uninstalled');
    }
    this.logger.warn("Could not read the tenant's key; the call was not made", { tenantId, code: (error as { code?: string })?.code });
    return new Refusal('gateway_unavailable', { headers: { 'Retry-After': '1' } });
  }

  /**
   * A body with a Content-Length streams through (Node stops at that length, already checked
   * against the limit); a chunked body is read up to the limit first. None for a bodiless call.
   */
  private async requestBody(req: IncomingMessage, length: number | undefined): Promise<IncomingMessage | Buffer | null | Refusal> {
    if (length !== undefined) return length === 0 ? null : req;
    if (req.headers['transfer-encoding'] === undefined) return null;
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of req) {
      total += (chunk as Buffer).length;
      if (total > this.maxBodyBytes) return new Refusal('pleo_request_too_large');
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  private refuse(req: IncomingMessage, res: ServerResponse, refusal: Refusal): void {
    this.metrics.refusal(refusal.code);
    const body = JSON.stringify(refusal.body());
    res.writeHead(refusal.status, {
      ...refusal.headers,
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
    });
    res.end(body);
    // An unread request body must not hold the connection; a large one closes it instead.
    if (!req.readableEnded) req.resume();
  }

  private observe(call: CallContext, status: number): void {
    const seconds = Number(process.hrtime.bigint() - call.startedAt) / 1e9;
    this.metrics.answered(call.method, status, seconds, call.forwarded);
    this.logger.info('Gateway call', {
      correlationId: call.correlationId,
      method: call.method,
      tenantId: call.tenantId,
      endpoint: call.endpoint,
      caller: call.caller,
      status,
      pleoStatus: call.upstreamStatus,
      durationMs: Math.round(seconds * 1000),
    });
  }
}

function contentLength(req: IncomingMessage): number | undefined | 'invalid' {
  const header = req.headers['content-length'];
  if (header === undefined) return undefined;
  if (!/^\d{1,15}$/.test(header)) return 'invalid';
  return Number(header);
}
