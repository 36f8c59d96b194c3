import { serviceIdentity } from '@keyward/contracts';

/** validator's name as producer of its events, consumer of its queue and actor in the audit log. */
export const VALIDATOR = serviceIdentity('validator');
