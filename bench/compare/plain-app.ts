/** The plain listener with finish stamps: the app module ThreadPoolHandler's workers load (bench/compare.ts). */
import { plainListener, timed } from './apps.js';

export default timed(plainListener);
