/** The Express 5 hello-world with finish stamps: the app module ThreadPoolHandler's workers load (bench/compare.ts). */
import { createExpressApp, timed } from './apps.js';

export default timed(createExpressApp());
