import { OAuthError, UnauthorizedError } from '../exc.js';
import type { Principal, Token, TokenRequest } from '../schemas/auth.js';
import { AppService, type ServiceContext } from './base.js';
import type { PasswordHasher } from './passwords.js';
import type { TokenCodec } from './tokens.js';
import { publicUser, type UserService } from './users.js';

const BEARER = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)[ ]*$/i;
const INVALID_GRANT = 'Incorrect username or password';

/** Logins (the OAuth2 password grant) and the bearer check every protected route runs. */
export class AuthService extends AppService {
  constructor(
    context: ServiceContext,
    private readonly users: UserService,
    private readonly hasher: PasswordHasher,
    private readonly tokens: TokenCodec,
  ) {
    super(context);
  }

  async login(request: TokenRequest): Promise<Token> {
    if (request.grant_type !== undefined && request.grant_type !== 'password') {
      throw new OAuthError(
        400,
        'unsupported_grant_type',
        `grant_type '${request.grant_type}' is not supported; use 'password'`,
      );
    }
    if (request.username.trim() === '' || request.password === '') {
      throw new OAuthError(400, 'invalid_request', 'username and password are required');
    }
    const user = await this.users.findForLogin(request.username);
    if (user === undefined) {
      await this.hasher.verifyNothing(request.password);
      throw new OAuthError(401, 'invalid_grant', INVALID_GRANT);
    }
    const { ok, needsRehash } = await this.hasher.verify(user.hashed_password, request.password);
    if (!ok) throw new OAuthError(401, 'invalid_grant', INVALID_GRANT);
    if (needsRehash) {
      await this.users.replacePasswordHash(user.user_id, await this.hasher.hash(request.password));
    }
    const { token, expiresIn } = this.tokens.issue(publicUser(user));
    return { access_token: token, token_type: 'bearer', expires_in: expiresIn };
  }

  /** The principal of an `Authorization: Bearer` header; UnauthorizedError otherwise. */
  authenticate(authorization: string | undefined): Principal {
    if (authorization === undefined || authorization === '') {
      throw new UnauthorizedError('Not authenticated', false);
    }
    const match = BEARER.exec(authorization);
    if (match?.[1] === undefined) {
      throw new UnauthorizedError('Could not validate credentials', true);
    }
    return this.tokens.verify(match[1]);
  }
}
