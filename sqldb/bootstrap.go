package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/argon2id"
)

var _ latchkey.BootstrapService = (*BootstrapService)(nil)

// BootstrapKeyName is the name of the API key Bootstrap creates.
const BootstrapKeyName = "bootstrap admin key"

// BootstrapService creates the first tenant, its admin and the admin's key.
// It needs no caller.
type BootstrapService struct {
	db *DB

	// PasswordParams are the Argon2id parameters for the admin's password;
	// the zero value means argon2id.DefaultParams().
	PasswordParams argon2id.Params
}

// NewBootstrapService returns a BootstrapService on db.
func NewBootstrapService(db *DB) *BootstrapService {
	return &BootstrapService{db: db}
}

// NeedsBootstrap reports whether the database has no users yet.
func (s *BootstrapService) NeedsBootstrap(ctx context.Context) (bool, error) {
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var id string
	err = tx.QueryRowContext(ctx, `SELECT id FROM users LIMIT 1`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	} else if err != nil {
		return false, fmt.Errorf("needs bootstrap: %w", err)
	}
	return false, nil
}

// Bootstrap creates a tenant, a human TENANT_ADMIN (reusing an existing human
// with that email) and a personal API key for them, in one transaction. A
// password, if given, is set on the (new or existing) user. Returns
// ECONFLICT if the slug is taken, EINVALID for bad input.
func (s *BootstrapService) Bootstrap(ctx context.Context, in latchkey.BootstrapInput) (*latchkey.BootstrapResult, error) {
	email := latchkey.NormalizeEmail(in.Email)
	if err := latchkey.ValidateEmail(email); err != nil {
		return nil, err
	}
	var passwordHash string
	if in.Password != "" {
		if err := latchkey.ValidatePassword(in.Password); err != nil {
			return nil, err
		}
		// Hash before the transaction so the write lock is not held for it.
		var err error
		if passwordHash, err = hashPassword(s.db.Rand, in.Password, s.PasswordParams); err != nil {
			return nil, err
		}
	}
	tenant := &latchkey.Tenant{Name: in.TenantName, Slug: in.TenantSlug}
	if tenant.Slug == "" {
		tenant.Slug = latchkey.Slugify(tenant.Name)
	}
	if err := tenant.Validate(); err != nil {
		return nil, err
	}

	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	res, err := bootstrap(ctx, tx, tenant, email, passwordHash)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("bootstrap: commit: %w", err)
	}
	return res, nil
}

func bootstrap(ctx context.Context, tx *Tx, tenant *latchkey.Tenant, email, passwordHash string) (*latchkey.BootstrapResult, error) {
	if err := createTenant(ctx, tx, tenant); err != nil {
		return nil, err
	}
	user, err := findUserByEmail(ctx, tx, email)
	if err != nil {
		return nil, err
	}
	if user == nil {
		if user, err = createHumanUser(ctx, tx, email, passwordHash, tenant.ID, ""); err != nil {
			return nil, err
		}
	} else {
		if user.IsServiceAccount() {
			// Unreachable: service accounts have no email.
			return nil, latchkey.Errorf(latchkey.EINVALID, "That email belongs to a service account.")
		}
		if passwordHash != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, passwordHash, user.ID); err != nil {
				return nil, fmt.Errorf("set password: %w", err)
			}
		}
		if user.DefaultTenantID == "" {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET default_tenant_id = ? WHERE id = ?`, tenant.ID, user.ID); err != nil {
				return nil, fmt.Errorf("set default tenant: %w", err)
			}
			user.DefaultTenantID = tenant.ID
		}
		// Caches hold the user with its default tenant.
		if err := tx.publish(ctx, latchkey.Event{Type: latchkey.EventMembershipChanged, UserID: user.ID, TenantID: tenant.ID}); err != nil {
			return nil, err
		}
	}
	m, err := insertMembership(ctx, tx, tenant.ID, user.ID, latchkey.RoleTenantAdmin)
	if err != nil {
		return nil, err
	}
	m.User = user

	secret, err := latchkey.NewSecret(tx.db.Rand, latchkey.PrefixUserKey)
	if err != nil {
		return nil, err
	}
	keyID, err := tx.db.newID()
	if err != nil {
		return nil, err
	}
	key := &latchkey.APIKey{
		ID:              keyID,
		Name:            BootstrapKeyName,
		UserID:          user.ID,
		CreatedByUserID: user.ID,
		DefaultTenantID: tenant.ID,
		CreatedAt:       tx.Now(),
		Identifier:      latchkey.SecretIdentifier(secret),
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, user_id, name, identifier, key_hash, created_by_user_id, default_tenant_id, created_at, expires_at, last_used_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)`,
		key.ID, key.UserID, key.Name, key.Identifier, latchkey.HashSecret(secret), key.CreatedByUserID, key.DefaultTenantID, Time(key.CreatedAt)); err != nil {
		return nil, fmt.Errorf("create api key: %w", err)
	}
	// An operator acted (`latchkey admin init`, a server's first start):
	// the events carry no actor, and the client the caller put in ctx.
	for _, r := range []auditRecord{
		tenantAudit(tenant, user),
		{tenantID: tenant.ID, action: latchkey.AuditMembershipCreate, targetType: latchkey.AuditTargetMembership, targetID: m.ID, details: membershipDetails(m)},
		apiKeyAudit(latchkey.AuditAPIKeyCreate, key),
	} {
		if err := recordAuditAs(ctx, tx, auditActor{}, r); err != nil {
			return nil, err
		}
	}
	return &latchkey.BootstrapResult{Tenant: tenant, User: user, APIKey: key, Secret: secret}, nil
}
