/** Shared by the admin API tests: time units and the injected clock's starting point. */
export const HOUR = 3_600_000;
export const DAY = 86_400_000;
export const T0 = Date.UTC(2026, 5, 10, 12, 0, 0);
