import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['scripts/**/*.test.ts'],
    // Unit tests are pure: anything needing a cluster lives in test.sh.
    environment: 'node',
  },
})
