/**
 * The company binding, the one rule validator and rotation both apply: a tenant's connection is
 * bound to the company of the first key activated for it; a later key must belong to that same
 * company, until an uninstall releases the binding (a reinstall may bring another company).
 */
export interface BindingConnection {
  status: string;
  companyId: string | null;
}

/** The company a new key must belong to; null when none is bound (never activated, or uninstalled). */
export function boundCompany(connection: BindingConnection | null | undefined): string | null {
  if (!connection || connection.status === 'uninstalled') return null;
  return connection.companyId;
}

/** Whether a key of `companyId` may serve a tenant bound to `bound`. */
export function fitsBinding(bound: string | null, companyId: string): boolean {
  return bound === null || bound === companyId;
}
