import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { DataSource } from 'typeorm';
import { Refusal, TENANT_ID_PATTERN } from '@keyward/contracts';
import { KeywardLogger, registerSecret } from '@keyward/observability';
import { AuditLog } from '@keyward/persistence';
import { bearerToken, ServiceTokens } from '@keyward/service-auth';
import { correlationOf } from '../http/correlation';
import { routeTemplate } from '../http/request-log';
import { InstallSessionsService } from '../install-sessions/install-sessions.service';
import { AccessRefusalsRepository, REFUSAL_WINDOW_SECONDS } from './access-refusals.repository';
import { ALLOWED_CALLERS } from './allowed-callers.decorator';
import { attachCaller, Caller, CallerKind } from './caller';

/**
 * Authenticates the bearer token (401), checks the tenant id of the path (400, before any query
 * uses it), then authorises: a service token may act for every tenant; an install session only
 * submits and reads status for its own tenant (403 otherwise, logged and audited when it aims
 * at another tenant).
 */
@Injectable()
export class CallerGuard implements CanActivate {
  constructor(
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(ServiceTokens) private readonly serviceTokens: ServiceTokens,
    @Inject(InstallSessionsService) private readonly installSessions: InstallSessionsService,
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(AccessRefusalsRepository) private readonly refusals: AccessRefusalsRepository,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request>();
    const caller = await this.authenticate(req);
    const param: unknown = req.params?.tenantId;
    const tenantId = typeof param === 'string' ? param : undefined;
    if (tenantId !== undefined && !TENANT_ID_PATTERN.test(tenantId)) throw new Refusal('invalid_tenant_id');
    const allowed = this.reflector.getAllAndOverride<CallerKind[] | undefined>(ALLOWED_CALLERS, [context.getHandler(), context.getClass()]) ?? ['service'];

    if (caller.kind === 'install-session' && tenantId !== undefined && tenantId !== caller.tenantId) {
      await this.refuseOtherTenant(req, caller, tenantId);
      throw new Refusal('forbidden');
    }
    if (!allowed.includes(caller.kind)) {
      this.logger.warn('Refused a caller on a route it may not use', { route: routeTemplate(req), callerKind: caller.kind, actor: caller.actor });
      throw new Refusal('forbidden');
    }
    attachCaller(req, caller);
    if (tenantId !== undefined) correlationOf(req).tenantId = tenantId;
    return true;
  }

  private async authenticate(req: Request): Promise<Caller> {
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) throw unauthenticated('unauthenticated');
    // Registered only once authenticated: an unknown token is not keyward's secret (and the
    // Authorization header is redacted by name anyway).
    const serviceName = this.serviceTokens.identify(token);
    if (serviceName) {
      registerSecret(token);
      return { kind: 'service', name: serviceName, actor: `token:${serviceName}`, rateKey: `token:${serviceName}` };
    }
    const session = await this.installSessions.lookup(token);
    if (session.state === 'expired') throw unauthenticated('install_session_expired');
    if (session.state === 'unknown') throw unauthenticated('unauthenticated');
    registerSecret(token);
    return {
      kind: 'install-session',
      tenantId: session.tenantId,
      expiresAt: session.expiresAt,
      actor: 'install-session',
      rateKey: `install-session:${session.tokenHash.slice(0, 16)}`,
      tokenHash: session.tokenHash,
      used: session.used,
    };
  }

  /**
   * Counted for the targeted tenant; the first refusal of each hour per refusing tenant is also
   * logged at warn and audited in the targeted tenant's log, the rest only counted (and logged at
   * debug), so a flood cannot grow that append-only log. The token itself is never written.
   */
  private async refuseOtherTenant(req: Request, caller: Extract<Caller, { kind: 'install-session' }>, targetTenantId: string): Promise<void> {
    const route = routeTemplate(req);
    const { correlationId } = correlationOf(req);
    const counted = await this.dataSource.transaction(async (tx) => {
      const refusal = await this.refusals.record(tx, { targetTenantId, sessionTenantId: caller.tenantId, route });
      if (refusal.firstInWindow) {
        await AuditLog.append(tx, {
          tenantId: targetTenantId,
          actor: caller.actor,
          action: 'access.refused',
          correlationId,
          details: { reason: 'other_tenant', route, method: req.method, sessionTenantId: caller.tenantId, countedPerSeconds: REFUSAL_WINDOW_SECONDS },
        });
      }
      return refusal;
    });
    const facts = { route, sessionTenantId: caller.tenantId, targetTenantId, refusalsThisWindow: counted.refusals };
    if (counted.firstInWindow) this.logger.warn('Refused an install session acting for another tenant', facts);
    else this.logger.debug('Refused an install session acting for another tenant', facts);
  }
}

function unauthenticated(code: 'unauthenticated' | 'install_session_expired'): Refusal {
  return new Refusal(code, { headers: { 'WWW-Authenticate': 'Bearer' } });
}
