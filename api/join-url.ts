/**
 * Validates a claim's `joinUrl` with the runtime's invite codec (pure TypeScript, no XMTP): it must be a
 * well-formed, correctly signed, unexpired Convos invite for this pool's XMTP environment.
 */
import type { XmtpEnv } from '../config/env';
import { inviteMatchesEnv, isInviteError, parseInviteUrl, verifyInvite } from '../runtime/src/invite/index';
import { ApiError } from './errors';

export function checkJoinUrl(joinUrl: string, xmtpEnv: XmtpEnv): void {
  if (xmtpEnv === 'off') {
    throw new ApiError(
      400,
      'JOIN_UNAVAILABLE',
      'this pool runs without XMTP (XMTP_ENV=off): it cannot join conversations',
    );
  }
  try {
    const invite = parseInviteUrl(joinUrl);
    if (!inviteMatchesEnv(invite.env, xmtpEnv)) {
      throw new ApiError(
        400,
        'WRONG_ENVIRONMENT',
        `this is a ${invite.env} invite; this pool runs on XMTP ${xmtpEnv}`,
      );
    }
    verifyInvite(invite);
  } catch (err) {
    if (isInviteError(err))
      throw new ApiError(400, 'BAD_INVITE', `joinUrl is not a valid Convos invite: ${err.message}`);
    throw err;
  }
}
