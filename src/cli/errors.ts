/**
 * The CLI's own failure: one line for stderr and an exit code (1 for a failed operation such as
 * an unknown key, invalid input or an HTTP error; 2 for a usage error).
 */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usageError = (message: string) => new CliError(message, EXIT_USAGE);
