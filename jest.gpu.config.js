// Jest on the tests compiled to JavaScript (tsc -p tsconfig.gpu-test.json emits test/*.ts to dist/test),
// for the GPU machine, which carries a minimal node_modules without ts-jest or TypeScript
// (scripts/gpu-pack.sh). Run there: node node_modules/jest/bin/jest.js -c jest.gpu.config.js cuda
/** @type {import('jest').Config} */
module.exports = {
  rootDir: __dirname,
  roots: ['<rootDir>/dist/test'],
  testMatch: ['**/*.test.js'],
  testEnvironment: 'node',
  transform: {},
  testTimeout: 120000,
  maxWorkers: 1,
  cache: false,
};
