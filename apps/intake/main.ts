import { startService } from '@keyward/bootstrap';
import { intakeService } from './intake.definition';

void startService('intake', (config) => intakeService(config));
