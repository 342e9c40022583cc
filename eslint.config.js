// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.data/', 'clients/typescript/src/gen/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  // DESIGN.md: only src/store/ talks to PostgreSQL and only src/grpc/ to grpc-js; app.ts wires.
  {
    files: ['src/**/*.ts'],
    ignores: ['src/store/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'pg', message: 'Only src/store/ may import pg.' }] },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/grpc/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { paths: [{ name: '@grpc/grpc-js', message: 'Only src/grpc/ may import grpc-js.' }] },
      ],
    },
  },
);
