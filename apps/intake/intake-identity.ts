import { serviceIdentity } from '@keyward/contracts';

/** intake's name as producer of its events, consumer of its queue and actor in the audit log. */
export const INTAKE = serviceIdentity('intake');
