/** Shared by the configuration tests: the upstream key and proxy key they configure. */
export const UPSTREAM = 'sk-config-test-upstream-key-123456';
export const KEY = 'pgpt-config-test-key-0123456789';
