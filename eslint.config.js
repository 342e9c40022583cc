// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Domain folders: capabilities, the shared core, and the views across capabilities. */
const CAPABILITIES = ['limits', 'load', 'quotas', 'auth', 'audit'];
/** Read across capabilities (the job registry, the operators' dashboard): may import them. */
const ACROSS = ['jobs', 'dashboard'];
const DOMAIN = ['core', ...ACROSS, ...CAPABILITIES];

/**
 * What a domain folder may not import: pg, grpc-js, the edge, the store, the wiring and the
 * generated protocol code (grpc → domain ← store); and a capability may not import another
 * capability (what they share lives in src/core/), nor core any capability.
 */
function domainImports(folder) {
  const others = ACROSS.includes(folder)
    ? []
    : CAPABILITIES.filter((c) => c !== folder).map((c) => `**/${c}/*`);
  return {
    paths: [
      { name: 'pg', message: 'Only src/store/ may import pg.' },
      { name: '@grpc/grpc-js', message: 'Only src/grpc/ may import grpc-js.' },
    ],
    patterns: [
      {
        group: ['**/grpc/*', '**/store/*', '**/app/*'],
        message:
          'Domain code defines ports; src/grpc/, src/store/ and src/app/ depend on it, not the reverse.',
      },
      {
        group: ['**/clients/typescript/**', '@quota-authority/client', '@bufbuild/protobuf*'],
        message: 'Proto messages end in src/grpc/: the domain takes domain types.',
      },
      ...(others.length > 0
        ? [{ group: others, message: 'Capabilities share code through src/core/ only.' }]
        : []),
    ],
  };
}

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'node_modules/',
      '.data/',
      'clients/typescript/src/gen/',
      'clients/typescript/dist/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  // Plain JavaScript (the examples, build scripts) runs on Node.
  { files: ['**/*.mjs', '**/*.cjs'], languageOptions: { globals: globals.node } },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  // DESIGN.md: only src/store/ talks to PostgreSQL and only src/grpc/ to grpc-js; src/app/
  // wires. The domain folders define ports and see neither the edge, the store nor the
  // generated protocol code: grpc → domain ← store.
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
  ...DOMAIN.map((folder) => ({
    files: [`src/${folder}/**/*.ts`],
    rules: { 'no-restricted-imports': ['error', domainImports(folder)] },
  })),
);
