/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test', '<rootDir>/examples'],
  testMatch: ['**/*.test.ts', '**/*.test.mts', '**/*.test.js'],
  transform: {
    // The NestJS example uses TypeScript decorators as Nest apps are written (legacy decorators, and the
    // design:paramtypes metadata that constructor injection reads). The first pattern that matches a file wins,
    // so only that folder gets this; the rest of the project keeps the plain transform below.
    '^.+[\\\\/]examples[\\\\/]nestjs[\\\\/].+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript', decorators: true }, transform: { legacyDecorator: true, decoratorMetadata: true }, target: 'es2022' },
        module: { type: 'commonjs' },
      },
    ],
    '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  moduleNameMapper: {
    // Examples import the package by name, as users do; in the repo that name means the sources.
    '^isapi-http$': '<rootDir>/src/index.ts',
    '^isapi-http/testing$': '<rootDir>/src/testing.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testTimeout: 60000,
};
