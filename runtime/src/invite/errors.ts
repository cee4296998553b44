/**
 * The one error type the invite module throws. `code` lets callers (the pool's API validating a
 * joinUrl, the channel deciding whether to deny a join request) branch without parsing messages;
 * `message` is meant to be shown to a person as-is.
 */
export type InviteErrorCode =
  | 'empty'
  | 'unsupported_url'
  | 'bad_encoding'
  | 'bad_compression'
  | 'bad_protobuf'
  | 'missing_field'
  | 'bad_signature'
  | 'bad_token'
  | 'expired'
  | 'wrong_signer'
  | 'bad_argument';

export class InviteError extends Error {
  readonly code: InviteErrorCode;

  constructor(code: InviteErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InviteError';
    this.code = code;
  }
}

export function isInviteError(err: unknown): err is InviteError {
  return err instanceof InviteError;
}
