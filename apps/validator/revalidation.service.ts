import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { boundCompany, causedBy, createEvent, EventEnvelope } from '@keyward/contracts';
import { Inbox, PermanentEventError } from '@keyward/messaging';
import { KeywardLogger, Metrics } from '@keyward/observability';
import { PleoClient } from '@keyward/pleo';
import { SecretReader, SecretStoreError } from '@keyward/secrets';
import { ValidationRepository } from './validation.repository';
import { VALIDATOR } from './validator-identity';
import { judgeRevalidation } from './verdict';

export type RevalidationResult = 'duplicate' | 'not_active' | 'revoked' | 'published';

/**
 * Checks a tenant's ACTIVE key again (after auth failures, on the probe schedule, on request) and
 * publishes `key.revalidated`. Pleo being unreachable is an outcome here, not a retry: monitor
 * decides what it means.
 */
@Injectable()
export class RevalidationService {
  private readonly logger: KeywardLogger;
  private readonly outcomes;

  constructor(
    @Inject(KEYWARD_CONFIG) private readonly config: KeywardConfig,
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(ValidationRepository) private readonly repository: ValidationRepository,
    @Inject(SecretReader) private readonly secrets: SecretReader,
    @Inject(PleoClient) private readonly pleo: PleoClient,
    @Inject(KeywardLogger) logger: KeywardLogger,
    @Inject(Metrics) metrics: Metrics,
  ) {
    this.logger = logger.child({ component: 'revalidation' });
    this.outcomes = metrics.counter('keyward_revalidations_total', 'Active keys checked again, by outcome', ['outcome']);
  }

  async revalidate(event: EventEnvelope<'key.revalidate'>): Promise<RevalidationResult> {
    const { tenantId } = event;
    const { credentialId, reason, checkId } = event.data;
    const facts = { tenantId, credentialId, reason, eventId: event.id, ...(checkId ? { checkId } : {}) };
    const dataSource = this.dataSource;

    if (await Inbox.seen(dataSource, VALIDATOR.consumer, event.id)) return this.count('duplicate');

    const connection = await this.repository.connection(this.dataSource.manager, tenantId);
    if (!connection || connection.activeCredentialId !== credentialId) {
      this.logger.info("Credential to revalidate is not the tenant's active one; nothing to check", facts);
      return this.count('not_active');
    }
    // A revoked credential is refused by the reader itself (it checks revocations first).
    let key;
    try {
      key = await this.secrets.readForUse(tenantId, credentialId);
    } catch (error) {
      if (!(error instanceof SecretStoreError)) throw error;
      if (error.code === 'revoked') {
        this.logger.info('Credential to revalidate is revoked; not calling Pleo', facts);
        return this.count('revoked');
      }
      if (error.transient) throw error;
      this.logger.error('The active key cannot be read from the secret store; event parked for an operator', { ...facts, code: error.code });
      throw new PermanentEventError(`Active key of credential ${credentialId} unreadable (${error.code})`, `secret_${error.code}`);
    }

    const introspection = await this.pleo.introspect(key);
    const last4 = key.last4;
    const result = await Inbox.runOnce(dataSource, VALIDATOR.consumer, event, async (tx, effects) => {
      const current = await this.repository.connection(tx, tenantId);
      if (!current || current.activeCredentialId !== credentialId) return undefined;
      const verdict = judgeRevalidation(introspection, {
        requiredScopes: this.config.pleo.requiredScopes,
        boundCompanyId: boundCompany(current),
      });
      const revalidated = createEvent('key.revalidated', causedBy(event, VALIDATOR.producer), {
        credentialId,
        ...(checkId ? { checkId } : {}),
        outcome: verdict.outcome,
        scopes: verdict.scopes.slice(0, 200),
        ...(verdict.missingScopes ? { missingScopes: verdict.missingScopes } : {}),
      });
      await this.repository.recordVerdict(tx, revalidated);
      effects.publish(revalidated);
      effects.audit({
        tenantId,
        actor: VALIDATOR.actor,
        action: 'credential.revalidated',
        credentialId,
        last4,
        correlationId: event.correlationId,
        // checkId lets intake answer the connection check that asked for this (by audit entry).
        details: { reason, outcome: verdict.outcome, missingScopes: verdict.missingScopes ?? [], pleo: introspection.outcome, ...(checkId ? { checkId } : {}) },
      });
      return verdict;
    });
    if (result.duplicate) return this.count('duplicate');
    if (!result.result) {
      this.logger.info('Active credential changed while Pleo answered; result dropped', facts);
      return this.count('not_active');
    }
    const level = result.result.outcome === 'valid' ? 'info' : 'warn';
    this.logger[level]('Active key revalidated', { ...facts, last4, outcome: result.result.outcome, missingScopes: result.result.missingScopes, pleo: introspection.outcome });
    this.outcomes.inc({ outcome: result.result.outcome });
    return 'published';
  }

  private count<T extends RevalidationResult>(outcome: T): T {
    this.outcomes.inc({ outcome });
    return outcome;
  }
}
