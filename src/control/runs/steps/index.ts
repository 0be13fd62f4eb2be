/** The run itinerary, in order. */
import type { Step } from '../itinerary.js';
import { prepare } from './prepare.js';
import { record } from './record.js';
import { snapshot } from './snapshot.js';
import { writeImageStep } from './write-image.js';

export const ITINERARY: readonly Step[] = [prepare, snapshot, writeImageStep, record];
