import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    // filters/ owns the types a request carries; the listeners in proxy/ depend on it, never the reverse (DESIGN.md).
    files: ['src/filters/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/proxy', '**/proxy/**'], message: 'src/filters must not import src/proxy: proxy/ depends on filters/, never the reverse' }] }],
    },
  },
);
