import { serviceIdentity } from '@keyward/contracts';

/** rotation's name as producer of its events, consumer of its queue and actor in the audit log. */
export const ROTATION = serviceIdentity('rotation');
