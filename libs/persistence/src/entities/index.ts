import { AlertDeliveryEntity } from './alert-delivery.entity';
import { AuditEntryEntity } from './audit-entry.entity';
import { AuthFailureEntity } from './auth-failure.entity';
import { ConnectionHealthEntity } from './connection-health.entity';
import { ConnectionEntity } from './connection.entity';
import { CredentialEntity } from './credential.entity';
import { InstallSessionEntity } from './install-session.entity';
import { RevocationEntity } from './revocation.entity';
import { SubmissionEntity } from './submission.entity';
import { UninstallEntity } from './uninstall.entity';
import { ValidationEntity } from './validation.entity';

export * from './alert-delivery.entity';
export * from './audit-entry.entity';
export * from './auth-failure.entity';
export * from './connection-health.entity';
export * from './connection.entity';
export * from './credential.entity';
export * from './install-session.entity';
export * from './revocation.entity';
export * from './submission.entity';
export * from './uninstall.entity';
export * from './validation.entity';

export const ENTITIES = [
  AlertDeliveryEntity,
  AuditEntryEntity,
  AuthFailureEntity,
  ConnectionHealthEntity,
  ConnectionEntity,
  CredentialEntity,
  InstallSessionEntity,
  RevocationEntity,
  SubmissionEntity,
  UninstallEntity,
  ValidationEntity,
];
