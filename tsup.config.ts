import { defineConfig } from 'tsup';

// One build, two formats: ESM (.js) and CJS (.cjs), each with its own .d.ts/.d.cts so that
// `exports` resolves types correctly under both `import` and `require` (checked by publint).
export default defineConfig({
  // `worker` and `watchdog` are worker-thread entries (src/handlers/worker-path.ts): files of their own next to the chunks.
  // `cli` is the `isapi-http` command (package.json "bin" → dist/cli.js, run as ESM). Splitting makes it share the
  // library's chunks with dist/index.js, so an extension module importing 'isapi-http' runs on the same module instances.
  entry: {
    index: 'src/index.ts',
    testing: 'src/testing.ts',
    worker: 'src/handlers/worker-entry.ts',
    watchdog: 'src/handlers/watchdog-entry.ts',
    cli: 'src/cli/main.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  splitting: true,
  shims: true,
  external: ['koffi'],
});
