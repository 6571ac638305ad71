// Types for app.js, so that TypeScript (app.test.ts, or your own code) sees the Express app it exports.
import type { Express } from 'express';

declare const app: Express;
export default app;
