import { SubjectType } from './pleo-results';

export interface PleoSubject {
  type: SubjectType;
  id: string;
}

const SUBJECT_URN = /^urn:pleo:(company|organization):([A-Za-z0-9-]{1,64})$/;

/** `urn:pleo:company:<uuid>` or `urn:pleo:organization:<uuid>`; undefined for anything else. */
export function parseSubjectUrn(urn: unknown): PleoSubject | undefined {
  if (typeof urn !== 'string') return undefined;
  const match = SUBJECT_URN.exec(urn.trim());
  return match ? { type: match[1] as SubjectType, id: match[2].toLowerCase() } : undefined;
}
