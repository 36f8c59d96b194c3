import { serviceIdentity } from '@keyward/contracts';

/** gateway's name as producer of its events, consumer of its queue and actor in the audit log. */
export const GATEWAY = serviceIdentity('gateway');
