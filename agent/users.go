package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/edgepos/edgepos/sync/wire"
)

// Roles.
const (
	RoleCashier = "cashier"
	RoleManager = "manager"
)

// User is a cashier or manager of the store.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

func checkPIN(pin string) error {
	if len(pin) < 4 || len(pin) > 12 {
		return ErrPINFormat
	}
	for _, r := range pin {
		if r < '0' || r > '9' {
			return ErrPINFormat
		}
	}
	return nil
}

// AddUser creates or replaces a user with a bcrypt-hashed PIN.
func (l *Ledger) AddUser(ctx context.Context, id, name, role, pin string) error {
	if id == "" || name == "" {
		return errors.New("add user: id and name are required")
	}
	if role != RoleCashier && role != RoleManager {
		return fmt.Errorf("add user %s: role %q is not cashier or manager", id, role)
	}
	if err := checkPIN(pin); err != nil {
		return fmt.Errorf("add user %s: %w", id, err)
	}
	cost := l.cfg.BcryptCost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pin), cost)
	if err != nil {
		return fmt.Errorf("add user %s: %w", id, err)
	}
	return l.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO users(id, name, role, pin_hash) VALUES(?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET name = excluded.name, role = excluded.role, pin_hash = excluded.pin_hash, failed = 0, locked_until = NULL, active = 1`,
			id, name, role, string(hash))
		return err
	})
}

// Authenticate checks a user's PIN. After MaxPINFailures wrong PINs in a
// row the user is locked out for LockoutFor (ErrLockedOut), even with the
// right PIN.
func (l *Ledger) Authenticate(ctx context.Context, id, pin string) (User, error) {
	var u User
	var hash string
	var failed int
	var locked sql.NullTime
	err := l.db.Read.QueryRowContext(ctx, "SELECT id, name, role, pin_hash, failed, locked_until FROM users WHERE id = ? AND active = 1", id).
		Scan(&u.ID, &u.Name, &u.Role, &hash, &failed, &locked)
	if errors.Is(err, sql.ErrNoRows) {
		// Spend the same time as a real check, so ids cannot be probed.
		bcrypt.CompareHashAndPassword([]byte("$2a$10$0000000000000000000000000000000000000000000000000000."), []byte(pin))
		return User{}, ErrBadPIN
	}
	if err != nil {
		return User{}, err
	}
	now := l.now()
	if locked.Valid && now.Before(locked.Time) {
		return User{}, fmt.Errorf("%w until %s", ErrLockedOut, locked.Time.In(l.cfg.Location).Format("15:04"))
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(pin)) != nil {
		failed++
		var until any
		if failed >= l.cfg.MaxPINFailures {
			until, failed = now.Add(l.cfg.LockoutFor), 0
		}
		if err := l.db.WriteTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "UPDATE users SET failed = ?, locked_until = ? WHERE id = ?", failed, until, id)
			return err
		}); err != nil {
			return User{}, err
		}
		if until != nil {
			l.log.Warn("user locked out after wrong PINs", "user", id)
			return User{}, ErrLockedOut
		}
		return User{}, ErrBadPIN
	}
	if failed > 0 || locked.Valid {
		if err := l.db.WriteTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "UPDATE users SET failed = 0, locked_until = NULL WHERE id = ?", id)
			return err
		}); err != nil {
			return User{}, err
		}
	}
	return u, nil
}

// AuthenticateManager finds the manager whose PIN this is, for an approval
// inside a cashier's sale. Wrong PINs count towards a terminal-wide lockout.
func (l *Ledger) AuthenticateManager(ctx context.Context, pin string) (User, error) {
	l.mu.Lock()
	if l.now().Before(l.mgrLocked) {
		l.mu.Unlock()
		return User{}, ErrLockedOut
	}
	l.mu.Unlock()
	rows, err := l.db.Read.QueryContext(ctx, "SELECT id, name, role, pin_hash FROM users WHERE role = 'manager' AND active = 1")
	if err != nil {
		return User{}, err
	}
	type cand struct {
		u    User
		hash string
	}
	var cands []cand
	for rows.Next() {
		var c cand
		if err := rows.Scan(&c.u.ID, &c.u.Name, &c.u.Role, &c.hash); err != nil {
			rows.Close()
			return User{}, err
		}
		cands = append(cands, c)
	}
	rows.Close()
	for _, c := range cands {
		if bcrypt.CompareHashAndPassword([]byte(c.hash), []byte(pin)) == nil {
			l.mu.Lock()
			l.mgrFails = 0
			l.mu.Unlock()
			return c.u, nil
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mgrFails++
	if l.mgrFails >= l.cfg.MaxPINFailures {
		l.mgrLocked, l.mgrFails = l.now().Add(l.cfg.LockoutFor), 0
		return User{}, ErrLockedOut
	}
	return User{}, ErrBadPIN
}

// Users lists the active users.
func (l *Ledger) Users(ctx context.Context) ([]User, error) {
	rows, err := l.db.Read.QueryContext(ctx, "SELECT id, name, role FROM users WHERE active = 1 ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		if err := rows.Scan(&u.ID, &u.Name, &u.Role); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// Audit records a manager override in the audit table and the outbox.
func (l *Ledger) Audit(ctx context.Context, action, user, manager, saleID, detail string) error {
	return l.write(ctx, func(tx *sql.Tx) error { return l.auditTx(ctx, tx, action, user, manager, saleID, detail) })
}

func (l *Ledger) auditTx(ctx context.Context, tx *sql.Tx, action, user, manager, saleID, detail string) error {
	now := l.now()
	if _, err := tx.ExecContext(ctx, "INSERT INTO audit(id, action, user_id, manager, sale_id, detail, at) VALUES(?, ?, ?, ?, ?, ?, ?)",
		uuid.Must(uuid.NewV7()).String(), action, user, manager, nullStr(saleID), detail, now); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	_, err := l.db.AppendEvent(ctx, tx, wire.EventAuditOverride, wire.AuditOverride{Action: action, User: user, Manager: manager,
		SaleID: saleID, Detail: detail, At: now}, now)
	return err
}

// AuditEntry is one audited override.
type AuditEntry struct {
	Action  string    `json:"action"`
	User    string    `json:"user"`
	Manager string    `json:"manager"`
	SaleID  string    `json:"sale_id,omitempty"`
	Detail  string    `json:"detail"`
	At      time.Time `json:"at"`
}

// AuditLog returns the newest overrides first.
func (l *Ledger) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	rows, err := l.db.Read.QueryContext(ctx, "SELECT action, user_id, manager, COALESCE(sale_id, ''), detail, at FROM audit ORDER BY at DESC LIMIT ?", limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var a AuditEntry
		if err := rows.Scan(&a.Action, &a.User, &a.Manager, &a.SaleID, &a.Detail, &a.At); err != nil {
			return nil, err
		}
		a.At = a.At.UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}
