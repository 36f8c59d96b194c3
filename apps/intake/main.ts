import { startService } from '@keyward/bootstrap';
import { intakeService } from './intake.definition';
import { INTAKE } from './intake-identity';

void startService(INTAKE.name, (config) => intakeService(config));
