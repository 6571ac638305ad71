/**
 * `node --import ./tools/ts-register.mjs x.ts`: runs TypeScript (benches, worker threads in tests) straight from source, with the
 * @swc/core that jest already uses (a devDependency, so it works after `npm ci`; tsx is not installed). The hooks
 * live in ts-hooks.mjs because module.register() runs them on a separate loader thread.
 */
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
