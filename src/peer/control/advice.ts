import { CoterieError } from '../../protocol/errors.js';

/**
 * Turns the tracker's terse errors into advice that names the next step,
 * keeping the code. `owner` is looked up by the caller when it helps.
 */
export function advise(
  err: unknown,
  at: { groupId?: string; userId?: string; fileName?: string; owner?: string; action?: string },
): unknown {
  if (!(err instanceof CoterieError)) return err;
  const g = at.groupId === undefined ? undefined : `'${at.groupId}'`;
  const rewrite = (message: string) =>
    new CoterieError(err.code, message, { cause: err, details: err.details });
  switch (err.code) {
    case 'NOT_A_MEMBER':
      if (g === undefined) return err;
      return rewrite(
        at.owner === undefined
          ? `not a member of group ${g}: send 'join_group ${at.groupId}' and ask its owner to accept it`
          : `not a member of group ${g}: ask its owner '${at.owner}' to accept your join_group request`,
      );
    case 'NOT_OWNER':
      if (g === undefined) return err;
      return rewrite(
        `only the owner of group ${g}${at.owner === undefined ? '' : ` ('${at.owner}')`} can ${at.action ?? 'do this'}`,
      );
    case 'GROUP_NOT_FOUND':
      if (g === undefined) return err;
      return rewrite(
        `no group ${g}: 'list_groups' shows the groups, 'create_group ${at.groupId}' creates it`,
      );
    case 'GROUP_EXISTS':
      if (g === undefined) return err;
      return rewrite(`group ${g} exists already: pick another name, or 'join_group ${at.groupId}'`);
    case 'ALREADY_MEMBER':
      if (g === undefined) return err;
      return rewrite(
        at.userId === undefined
          ? `you are already a member of group ${g}`
          : `'${at.userId}' is already a member of group ${g}`,
      );
    case 'REQUEST_NOT_FOUND':
      return rewrite(
        `no pending join request from '${at.userId ?? '?'}' in group ${g ?? '?'}: 'list_requests ${at.groupId ?? '<group_id>'}' shows them`,
      );
    case 'USER_EXISTS':
      return rewrite(
        `user '${at.userId ?? '?'}' exists already: pick another user id, or 'login ${at.userId ?? ''}'`,
      );
    case 'BAD_CREDENTIALS':
      return rewrite(
        `wrong user id or password for '${at.userId ?? '?'}' (or no such user: 'create_user' makes one)`,
      );
    case 'FILE_NOT_FOUND':
      if (g === undefined) return err;
      return rewrite(
        `no file '${at.fileName ?? '?'}' in group ${g}: 'list_files ${at.groupId}' shows what is shared there`,
      );
    case 'FILE_NAME_TAKEN':
      return rewrite(
        `group ${g ?? '?'} already has a different file named '${at.fileName ?? '?'}': rename your copy and upload it again, or 'update_file ${at.groupId ?? '<group_id>'} ${at.fileName ?? '<name>'} <path>' makes it the next version`,
      );
    case 'NOT_SHARING':
      return rewrite(`you do not share '${at.fileName ?? '?'}'${g === undefined ? '' : ` in group ${g}`}`);
    case 'UNAUTHENTICATED':
      return new CoterieError('NOT_LOGGED_IN', "your session ended: run 'login <user_id> <password>' again", {
        cause: err,
      });
    default:
      return err;
  }
}
