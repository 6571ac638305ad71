// Types for app.js, so that TypeScript (app.test.ts, or your own code) sees the Fastify instance it exports.
import type { FastifyInstance } from 'fastify5';

export function createApp(): FastifyInstance;
declare const app: FastifyInstance;
export default app;
