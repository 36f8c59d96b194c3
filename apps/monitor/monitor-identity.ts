import { serviceIdentity } from '@keyward/contracts';

/** monitor's name as producer of its events, consumer of its queue and actor in the audit log. */
export const MONITOR = serviceIdentity('monitor');
