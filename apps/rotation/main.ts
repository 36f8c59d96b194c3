import { startService } from '@keyward/bootstrap';
import { ROTATION } from './rotation-identity';
import { rotationDefinition } from './rotation.definition';

void startService(ROTATION.name, () => rotationDefinition());
