import { startService } from '@keyward/bootstrap';
import { rotationDefinition } from './rotation.definition';

void startService('rotation', () => rotationDefinition());
