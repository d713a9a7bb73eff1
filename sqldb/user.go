package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/argon2id"
)

// findUserByEmail returns the user with the (normalized) email, or nil and
// no error when there is none. No authorization check.
func findUserByEmail(ctx context.Context, tx *Tx, email string) (*latchkey.User, error) {
	u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = ?`, latchkey.NormalizeEmail(email)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("find user by email: %w", err)
	}
	return u, nil
}

// createHumanUser inserts a human user with an optional password hash ("" for
// none) and default tenant. The email must already be normalized and valid.
func createHumanUser(ctx context.Context, tx *Tx, email, passwordHash, defaultTenantID, createdByUserID string) (*latchkey.User, error) {
	id, err := tx.db.newID()
	if err != nil {
		return nil, err
	}
	u := &latchkey.User{ID: id, Kind: latchkey.UserKindHuman, Email: email, DefaultTenantID: defaultTenantID, CreatedAt: tx.Now()}
	if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, kind, email, name, password_hash, tenant_id, default_tenant_id, created_by_user_id, created_at)
		VALUES (?, ?, ?, '', ?, NULL, ?, ?, ?)`,
		u.ID, string(u.Kind), u.Email, nullString(passwordHash), nullString(defaultTenantID), nullString(createdByUserID), Time(u.CreatedAt)); err != nil {
		return nil, fmt.Errorf("create user: %w", formatError(err, "A user with that email already exists."))
	}
	return u, nil
}

var _ latchkey.UserService = (*UserService)(nil)

// PasswordResetTTL is how long a password reset secret stays valid.
const PasswordResetTTL = 72 * time.Hour

// UserService reads users and manages human users' passwords.
type UserService struct {
	db *DB

	// PasswordParams are the Argon2id parameters for new password hashes;
	// the zero value means argon2id.DefaultParams(). Stored hashes carry
	// their own parameters, so raising these never breaks a sign-in.
	PasswordParams argon2id.Params

	dummyOnce sync.Once
	dummyHash string
}

// NewUserService returns a UserService on db.
func NewUserService(db *DB) *UserService {
	return &UserService{db: db}
}

// FindUserByID returns the caller itself or a member (human or service
// account) of the caller's acting tenant. RUNNER tokens see only
// themselves. Returns ENOTFOUND otherwise.
func (s *UserService) FindUserByID(ctx context.Context, id string) (*latchkey.User, error) {
	a, tx, err := s.db.beginAs(ctx, requireAuth, false)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	users, _, err := findUsers(ctx, tx, a, latchkey.UserFilter{ID: &id, Limit: 1})
	if err != nil {
		return nil, err
	} else if len(users) == 0 {
		return nil, latchkey.Errorf(latchkey.ENOTFOUND, "User not found.")
	}
	return users[0], nil
}

// FindUsers returns the users the caller can see (itself and the members
// of its acting tenant; RUNNER tokens only themselves) that match filter,
// and their count before Offset and Limit. A TenantID other than the
// acting tenant matches nothing.
func (s *UserService) FindUsers(ctx context.Context, filter latchkey.UserFilter) ([]*latchkey.User, int, error) {
	a, tx, err := s.db.beginAs(ctx, requireAuth, false)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	return findUsers(ctx, tx, a, filter)
}

// findUsers returns the users a can see that match filter, and their count.
func findUsers(ctx context.Context, tx *Tx, a *latchkey.Auth, filter latchkey.UserFilter) ([]*latchkey.User, int, error) {
	var where []string
	var args []any
	if a.IsRunner() {
		where, args = append(where, `users.id = ?`), append(args, a.User.ID)
	} else {
		where = append(where, `(users.id = ? OR users.id IN (SELECT user_id FROM memberships WHERE tenant_id = ?))`)
		args = append(args, a.User.ID, a.TenantID)
	}
	if v := filter.ID; v != nil {
		where, args = append(where, `users.id = ?`), append(args, *v)
	}
	if v := filter.Email; v != nil {
		where, args = append(where, `users.email = ?`), append(args, latchkey.NormalizeEmail(*v))
	}
	if v := filter.TenantID; v != nil {
		if *v != a.TenantID {
			return []*latchkey.User{}, 0, nil
		}
		where = append(where, `users.id IN (SELECT user_id FROM memberships WHERE tenant_id = ?)`)
		args = append(args, *v)
	}
	cond := strings.Join(where, " AND ")

	query := `SELECT ` + userColumns + ` FROM users WHERE ` + cond +
		` ORDER BY users.created_at, users.id` + formatLimitOffset(filter.Limit, filter.Offset)
	return findPage(ctx, tx, "users", "users", cond, args, query, func(rows *sql.Rows) (*latchkey.User, error) {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("scan user: %w", err)
		}
		return u, nil
	})
}

// errBadLogin is the one answer to a wrong email or password.
func errBadLogin() error {
	return latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Invalid email or password.")
}

// dummy returns a hash to compare against when there is no user, so an
// unknown email costs as much as a wrong password.
func (s *UserService) dummy() string {
	s.dummyOnce.Do(func() {
		h, err := hashPassword(s.db.Rand, "latchkey dummy password", s.PasswordParams)
		if err != nil {
			s.db.Logger.Error("hash dummy password", "error", err)
		}
		s.dummyHash = h
	})
	return s.dummyHash
}

// AuthenticatePassword checks a human's email and password. Returns
// EUNAUTHENTICATED "Invalid email or password." after the same work
// whether the email is unknown, the user has no password or it is wrong.
func (s *UserService) AuthenticatePassword(ctx context.Context, email, password string) (*latchkey.User, error) {
	dummy := s.dummy() // computed on first use, whether or not the email is known
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return nil, err
	}
	user, hash, err := findUserPasswordByEmail(ctx, tx, email)
	tx.Rollback()
	if err != nil {
		return nil, err
	}
	if user == nil || hash == "" {
		_ = argon2id.Compare(dummy, password)
		return nil, errBadLogin()
	}
	if err := argon2id.Compare(hash, password); errors.Is(err, argon2id.ErrMismatch) {
		return nil, errBadLogin()
	} else if err != nil {
		s.db.Logger.Error("compare password: stored hash unusable", "user_id", user.ID, "error", err)
		return nil, errBadLogin()
	}
	return user, nil
}

// findUserPasswordByEmail returns the human with email and their password
// hash ("" for none), or a nil user when there is no such human.
func findUserPasswordByEmail(ctx context.Context, tx *Tx, email string) (*latchkey.User, string, error) {
	var hash sql.NullString
	var u latchkey.User
	var kind string
	var emailCol, tenantID, defaultTenantID sql.NullString
	var createdAt Time
	err := tx.QueryRowContext(ctx, `SELECT `+userColumns+`, users.password_hash FROM users WHERE users.email = ? AND users.kind = ?`,
		latchkey.NormalizeEmail(email), string(latchkey.UserKindHuman)).
		Scan(&u.ID, &kind, &emailCol, &u.Name, &tenantID, &defaultTenantID, &createdAt, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", nil
	} else if err != nil {
		return nil, "", fmt.Errorf("find user by email: %w", err)
	}
	u.Kind, u.Email, u.TenantID, u.DefaultTenantID, u.CreatedAt = latchkey.UserKind(kind), emailCol.String, tenantID.String, defaultTenantID.String, time.Time(createdAt)
	return &u, hash.String, nil
}

// findPasswordHash returns the password hash of user id, "" for none.
func findPasswordHash(ctx context.Context, tx *Tx, id string) (string, error) {
	var hash sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT password_hash FROM users WHERE id = ?`, id).Scan(&hash); errors.Is(err, sql.ErrNoRows) {
		return "", latchkey.Errorf(latchkey.ENOTFOUND, "User not found.")
	} else if err != nil {
		return "", fmt.Errorf("find password hash: %w", err)
	}
	return hash.String, nil
}

// SetPassword changes the calling human's password after checking the
// current one, and signs out their other web sessions. Service accounts and
// TENANT or RUNNER tokens get EFORBIDDEN; a wrong current password
// EUNAUTHENTICATED; an unacceptable new one EINVALID.
func (s *UserService) SetPassword(ctx context.Context, current, password string) error {
	a, err := requireAuth(ctx)
	if err != nil {
		return err
	}
	if err := requireHuman(a); err != nil {
		return err
	} else if err := requireNotScopedToken(a); err != nil {
		return err
	}
	if err := latchkey.ValidatePassword(password); err != nil {
		return err
	}

	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return err
	}
	old, err := findPasswordHash(ctx, tx, a.User.ID)
	tx.Rollback()
	if err != nil {
		return err
	}
	wrong := latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Current password is wrong.")
	if old == "" {
		_ = argon2id.Compare(s.dummy(), current)
		return wrong
	} else if err := argon2id.Compare(old, current); err != nil {
		return wrong
	}
	hash, err := hashPassword(s.db.Rand, password, s.PasswordParams)
	if err != nil {
		return err
	}

	if tx, err = s.db.BeginTx(ctx, true); err != nil {
		return err
	}
	defer tx.Rollback()
	// Only if nobody changed it meanwhile.
	res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?`, hash, a.User.ID, old)
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	} else if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("set password: %w", err)
	} else if n != 1 {
		return wrong
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND id <> ?`, a.User.ID, a.SessionID); err != nil {
		return fmt.Errorf("set password: end sessions: %w", err)
	}
	if err := tx.publish(ctx, latchkey.Event{Type: latchkey.EventSessionsDeleted, UserID: a.User.ID}); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("set password: commit: %w", err)
	}
	return nil
}

// CreatePasswordReset returns a one-time secret (prefix lkp_, valid for
// PasswordResetTTL) with which user userID can set a password. The caller
// must be a human TENANT_ADMIN of its acting tenant, not using a TENANT or
// RUNNER token (EFORBIDDEN), and the target a human member of that tenant
// (ENOTFOUND otherwise). Because a reset takes over the account in every
// tenant, the caller must also be a TENANT_ADMIN of every other tenant the
// user belongs to (EFORBIDDEN otherwise). Earlier unused secrets for the
// user stop working.
func (s *UserService) CreatePasswordReset(ctx context.Context, userID string) (string, time.Time, error) {
	a, err := requireAuth(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	if err := requireHuman(a); err != nil {
		return "", time.Time{}, err
	} else if err := requireNotScopedToken(a); err != nil {
		return "", time.Time{}, err
	} else if err := requireAdmin(a); err != nil {
		return "", time.Time{}, err
	}

	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return "", time.Time{}, err
	}
	defer tx.Rollback()
	secret, expiresAt, err := createPasswordReset(ctx, tx, a, userID)
	if err != nil {
		return "", time.Time{}, err
	}
	if err := recordPasswordReset(ctx, tx, actorOf(a), userID, expiresAt); err != nil {
		return "", time.Time{}, err
	}
	if err := tx.Commit(); err != nil {
		return "", time.Time{}, fmt.Errorf("create password reset: commit: %w", err)
	}
	return secret, expiresAt, nil
}

// recordPasswordReset records a new set-password link for userID in every
// tenant the user belongs to: the link takes the account over everywhere.
func recordPasswordReset(ctx context.Context, tx *Tx, act auditActor, userID string, expiresAt time.Time) error {
	u, err := findUserByID(ctx, tx, userID)
	if err != nil {
		return err
	}
	return recordAuditInUserTenants(ctx, tx, act, userID, auditRecord{
		action: latchkey.AuditPasswordResetCreate, targetType: latchkey.AuditTargetUser, targetID: userID,
		details: map[string]string{"email": u.Email, "expires_at": formatAuditTime(&expiresAt)},
	})
}

func createPasswordReset(ctx context.Context, tx *Tx, a *latchkey.Auth, userID string) (string, time.Time, error) {
	notFound := latchkey.Errorf(latchkey.ENOTFOUND, "User not found.")
	role, err := findMembershipRole(ctx, tx, userID, a.TenantID)
	if err != nil {
		return "", time.Time{}, err
	} else if role == "" {
		return "", time.Time{}, notFound
	}
	u, err := findUserByID(ctx, tx, userID)
	if err != nil {
		return "", time.Time{}, err
	} else if u.IsServiceAccount() {
		return "", time.Time{}, latchkey.Errorf(latchkey.EINVALID, "Service accounts have no password.")
	}
	// A reset takes over the account everywhere, so the caller must be an
	// admin of every tenant the user belongs to: an admin of one tenant
	// must not gain another tenant through a shared member.
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM memberships target
		WHERE target.user_id = ? AND NOT EXISTS (
			SELECT 1 FROM memberships mine WHERE mine.user_id = ? AND mine.tenant_id = target.tenant_id AND mine.role = ?)`,
		userID, a.User.ID, string(latchkey.RoleTenantAdmin)).Scan(&n); err != nil {
		return "", time.Time{}, fmt.Errorf("create password reset: %w", err)
	} else if n > 0 {
		return "", time.Time{}, latchkey.Errorf(latchkey.EFORBIDDEN, "That user also belongs to tenants you do not administer; ask an admin of all of them.")
	}

	secret, err := latchkey.NewSecret(tx.db.Rand, latchkey.PrefixPasswordReset)
	if err != nil {
		return "", time.Time{}, err
	}
	id, err := tx.db.newID()
	if err != nil {
		return "", time.Time{}, err
	}
	expiresAt := tx.Now().Add(PasswordResetTTL)
	if _, err := tx.ExecContext(ctx, `DELETE FROM password_resets WHERE user_id = ? AND used_at IS NULL`, userID); err != nil {
		return "", time.Time{}, fmt.Errorf("create password reset: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO password_resets (id, token_hash, user_id, created_by_user_id, created_at, expires_at, used_at)
		VALUES (?, ?, ?, ?, ?, ?, NULL)`,
		id, latchkey.HashSecret(secret), userID, a.User.ID, Time(tx.Now()), Time(expiresAt)); err != nil {
		return "", time.Time{}, fmt.Errorf("create password reset: %w", err)
	}
	return secret, expiresAt, nil
}

// ResetPassword consumes a secret from CreatePasswordReset, sets the
// password and signs the user out of every web session. Needs no caller.
// Returns EUNAUTHENTICATED for a malformed, unknown, used or expired
// secret and EINVALID for an unacceptable password (the secret is then not
// consumed).
func (s *UserService) ResetPassword(ctx context.Context, secret, password string) (*latchkey.User, error) {
	bad := latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Invalid or expired password reset link.")
	if prefix, err := latchkey.ParseSecret(secret); err != nil || prefix != latchkey.PrefixPasswordReset {
		return nil, bad
	}
	if err := latchkey.ValidatePassword(password); err != nil {
		return nil, err
	}
	hash, err := hashPassword(s.db.Rand, password, s.PasswordParams)
	if err != nil {
		return nil, err
	}

	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var id, userID string
	var expiresAt, usedAt Time
	err = tx.QueryRowContext(ctx, `SELECT id, user_id, expires_at, used_at FROM password_resets WHERE token_hash = ?`,
		latchkey.HashSecret(secret)).Scan(&id, &userID, &expiresAt, &usedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, bad
	} else if err != nil {
		return nil, fmt.Errorf("reset password: %w", err)
	}
	if usedAt.Ptr() != nil || !tx.Now().Before(time.Time(expiresAt)) {
		return nil, bad
	}
	res, err := tx.ExecContext(ctx, `UPDATE password_resets SET used_at = ? WHERE id = ? AND used_at IS NULL`, Time(tx.Now()), id)
	if err != nil {
		return nil, fmt.Errorf("reset password: %w", err)
	} else if n, err := res.RowsAffected(); err != nil {
		return nil, fmt.Errorf("reset password: %w", err)
	} else if n != 1 {
		return nil, bad
	}
	if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ? AND kind = ?`, hash, userID, string(latchkey.UserKindHuman)); err != nil {
		return nil, fmt.Errorf("reset password: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID); err != nil {
		return nil, fmt.Errorf("reset password: end sessions: %w", err)
	}
	if err := tx.publish(ctx, latchkey.Event{Type: latchkey.EventSessionsDeleted, UserID: userID}); err != nil {
		return nil, fmt.Errorf("reset password: %w", err)
	}
	u, err := findUserByID(ctx, tx, userID)
	if err != nil {
		return nil, err
	}
	// The user acted, proving it with the link (the reset row is the
	// credential), in every tenant they belong to.
	if err := recordAuditInUserTenants(ctx, tx, auditActor{userID: u.ID, kind: latchkey.CredentialPasswordLink, credentialID: id}, u.ID, auditRecord{
		action: latchkey.AuditPasswordReset, targetType: latchkey.AuditTargetUser, targetID: u.ID,
		details: map[string]string{"email": u.Email},
	}); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("reset password: commit: %w", err)
	}
	return u, nil
}
