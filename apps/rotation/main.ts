import { startService } from '@keyward/bootstrap';
import { RotationModule } from './rotation.module';

void startService('rotation', () => ({ module: RotationModule, consumes: 'rotation' }));
