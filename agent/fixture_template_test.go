package agent

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/edgepos/edgepos/localdb"
)

// fixtureTemplate is a database migrated and seeded with the demo catalog
// and users once per test binary; each fixture starts from a copy of it.
// Opening a new database runs every migration (a fsync each), about 12 ms,
// 270 ms under the race detector, and the package makes hundreds.
var fixtureTemplate struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureTemplate.dir != "" {
		os.RemoveAll(fixtureTemplate.dir)
	}
	os.Exit(code)
}

// templateDB returns the template's path, making it on first use.
func templateDB(tb testing.TB) string {
	tb.Helper()
	t := &fixtureTemplate
	t.once.Do(func() {
		ctx := context.Background()
		if t.dir, t.err = os.MkdirTemp("", "edgepos-agent-fixture-"); t.err != nil {
			return
		}
		src := filepath.Join(t.dir, "seed.db")
		db, err := localdb.Open(ctx, src, localdb.Options{})
		if err != nil {
			t.err = err
			return
		}
		defer db.Close(ctx)
		l, err := NewLedger(db, LedgerConfig{Store: "S001", Terminal: "T1", Currency: "CNY", TaxInclusive: true, BcryptCost: bcrypt.MinCost})
		if err != nil {
			t.err = err
			return
		}
		defer l.Close()
		if t.err = SeedDemoCatalog(ctx, l); t.err != nil {
			return
		}
		if t.err = SeedDemoUsers(ctx, l); t.err != nil {
			return
		}
		t.path = filepath.Join(t.dir, "template.db")
		t.err = db.Backup(ctx, t.path) // VACUUM INTO: one file, WAL folded in
	})
	require.NoError(tb, t.err, "fixture template")
	return t.path
}

// copyTemplate copies the template to path with a database id of its own.
func copyTemplate(tb testing.TB, path string) {
	tb.Helper()
	b, err := os.ReadFile(templateDB(tb))
	require.NoError(tb, err)
	require.NoError(tb, os.WriteFile(path, b, 0o600))
	raw, err := sql.Open("sqlite", "file:"+path)
	require.NoError(tb, err)
	defer raw.Close()
	_, err = raw.Exec("UPDATE meta SET value = ? WHERE key = 'db_id'", uuid.Must(uuid.NewV7()).String())
	require.NoError(tb, err)
}
